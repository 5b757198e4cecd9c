"""``sunbox fleet status|update|env`` as a technician runs them, against a fake supervisor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.fleet.update_lock import UpdateLockFile
from tests.conftest import REPO
from tests.fleet_fake_supervisor import FakeSupervisor


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[FakeSupervisor]:
    fake = FakeSupervisor(tmp_path / "balena" / "updates.lock", commit="9" * 32).start()
    yield fake
    fake.stop()


def sunbox(
    args: list[str], tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "sunbox.toml"
    if not config.exists():
        lock = tmp_path / "balena" / "updates.lock"
        config.write_text(f'[fleet]\nlock_path = "{lock}"\n', encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args, "--config", str(config),
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


def test_fleet_cli_outside_balena(tmp_path: Path) -> None:
    out = sunbox(["fleet", "status"], tmp_path, {})
    assert out.returncode == 0, out.stderr
    assert "update lock" in out.stdout and ": free" in out.stdout
    assert "not running under balena" in out.stdout
    refused = sunbox(["fleet", "update"], tmp_path, {})
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == "sunbox: not running under balena: no supervisor to ask for an update"
    )


def run_in_process(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    from appliance.cli import main

    code = main(
        [*args, "--config", str(tmp_path / "sunbox.toml"), "--data-dir", str(tmp_path / "d")]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_fleet_cli_status_and_forced_update(
    tmp_path: Path,
    supervisor: FakeSupervisor,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "sunbox.toml").write_text(f'[fleet]\nlock_path = "{supervisor.lock_path}"\n')
    for key in [k for k in os.environ if k.startswith("SUNBOX_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("BALENA_SUPERVISOR_ADDRESS", supervisor.address)
    monkeypatch.setenv("BALENA_SUPERVISOR_API_KEY", supervisor.api_key)
    UpdateLockFile(supervisor.lock_path).acquire("night heating")
    supervisor.tags = {"mode": "normal"}
    supervisor.new_release("8" * 32)

    code, out, err = run_in_process(["fleet", "status", "--json"], tmp_path, capsys)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["lock"] == "held by sunbox" and payload["balena"] is True
    assert payload["commit"] == "9" * 32 and payload["update_pending"] is True
    assert payload["tags"] == {"mode": "normal"}

    code, out, _ = run_in_process(["fleet", "update"], tmp_path, capsys)
    assert code == 0 and "lands when the update lock is free" in out
    assert supervisor.commit == "9" * 32 and supervisor.lock_path.exists()

    code, out, _ = run_in_process(["fleet", "update", "--force"], tmp_path, capsys)
    assert code == 0 and "overridden" in out
    assert supervisor.update_calls == [False, True]
    assert supervisor.commit == "8" * 32 and supervisor.forced_overrides == 1

    supervisor.down = True
    code, out, _ = run_in_process(["fleet", "status"], tmp_path, capsys)
    assert code == 1 and "HTTP 503" in out
