"""schemathesis against the running box's /openapi.json: generated requests (valid and invalid)
to every operation, anonymous and as the admin. The API must never answer 5xx, and no
mutation without a session may succeed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.generation.case import Case

from tests.api_demo import Box, running_box

EXAMPLES = 20
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Requests that would end the fuzzer's own session or lock the admin out; each is covered by the
# anonymous run here and by explicit tests in test_api_http.py.
AUTHED_SKIP = {
    ("GET", "/api/stream"),  # never ends (the stream is tested in test_api_http.py)
    ("POST", "/api/logout"),
    ("POST", "/api/me/password"),
    ("POST", "/api/users/{name}/password"),
    ("POST", "/api/users/{name}/role"),
    ("DELETE", "/api/users/{name}"),
}


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with running_box(
        tmp_path_factory.mktemp("fuzz"), speed=60, start="2026-06-21T10:00+03:00"
    ) as b:
        yield b


@pytest.fixture(scope="module")
def admin_token(box: Box) -> str:
    """Taken before the anonymous run, whose random logins trip the login rate limit."""
    return box.token()


def operations(box: Box) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{box.url}/openapi.json")
    ops = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(ops) >= 25
    return ops


def run(
    op: schemathesis.APIOperation,
    mode: GenerationMode,
    check: Callable[[Case, int], None],
    headers: dict[str, str],
    base_url: str,
) -> int:
    calls = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(op.as_strategy(generation_mode=mode))
    def fuzz(case: Case) -> None:
        nonlocal calls
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        calls += 1
        check(case, response.status_code)

    try:
        fuzz()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
        assert mode is GenerationMode.NEGATIVE
    return calls


def test_no_unauthenticated_mutation_succeeds_and_no_5xx(box: Box, admin_token: str) -> None:
    calls = 0

    def check(case: Case, status: int) -> None:
        label = f"{case.method} {case.formatted_path} -> {status}"
        assert status < 500, label
        if case.method.upper() in MUTATING:
            assert status >= 400, label  # login/setup included: random credentials never succeed
            if case.path not in ("/api/login", "/api/setup"):
                assert status in (401, 403), label
        elif case.path.startswith("/api/") and case.path != "/api/info":
            assert status == 401, label

    for op in operations(box):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            calls += run(op, mode, check, {}, box.url)
    assert calls > 200


def test_authenticated_fuzzing_never_gets_a_5xx(
    box: Box, admin_token: str, artifacts_dir: Path
) -> None:
    headers = {"Authorization": f"Bearer {admin_token}"}
    calls = 0
    statuses: dict[int, int] = {}

    def check(case: Case, status: int) -> None:
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, f"{case.method} {case.formatted_path} body={case.body!r} -> {status}"

    for op in operations(box):
        if (op.method.upper(), op.path) in AUTHED_SKIP:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            calls += run(op, mode, check, headers, box.url)
    assert calls > 200
    assert statuses.get(200, 0) > 50 and statuses.get(422, 0) > 20  # real answers, real refusals
    (artifacts_dir / "api-fuzz-statuses.txt").write_text(
        "\n".join(f"{k} {v}" for k, v in sorted(statuses.items())) + "\n", encoding="utf-8"
    )
