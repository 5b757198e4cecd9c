"""The dashboard's API over real HTTP: `sunbox demo` as a subprocess (simulated devices over
Modbus, the daemon, uvicorn in the daemon's loop), driven as the dashboard and the TUI drive it."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from appliance.api.metrics import parse
from tests.api_demo import Box, running_box

START = "2026-06-21T08:00+03:00"  # a Kisumu morning: the sun is up, the battery at 60 %
WINDOW_S = 2.0
STRONG = "correct-horse-battery"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with running_box(
        tmp_path_factory.mktemp("api"), speed=60, start=START, api={"login_window_s": WINDOW_S}
    ) as b:
        yield b


@pytest.fixture(scope="module")
def admin(box: Box) -> Iterator[httpx.Client]:
    c = box.client()
    yield c
    c.close()


@pytest.fixture(scope="module")
def staff(box: Box, admin: httpx.Client) -> dict[str, httpx.Client]:
    """One logged-in client per role (users made through the admin API)."""
    out = {}
    for role in ("viewer", "operator", "technician"):
        r = admin.post(
            "/api/users", json={"name": f"{role}1", "role": role, "password": f"{STRONG}-{role}"}
        )
        assert r.status_code == 201, r.text
        out[role] = box.client(f"{role}1", f"{STRONG}-{role}")
    return out


def box_now(client: httpx.Client) -> datetime:
    return datetime.fromisoformat(client.get("/api/state").json()["at"])


def test_demo_prints_a_generated_admin_password_once(box: Box) -> None:
    assert box.admin is not None
    name, password = box.admin
    assert name == "admin"
    assert len(password) >= 20 and len(set(password)) >= 10
    assert sum(password in line for line in box.lines) == 1
    # only its argon2 hash is stored
    import sqlite3

    with sqlite3.connect(box.data_dir / "sunbox.db") as db:
        (stored,) = db.execute("SELECT pw_hash FROM api_users WHERE name = 'admin'").fetchone()
    assert stored.startswith("$argon2id$") and password not in stored


def test_anonymous_reads_public_only_and_every_mutation_is_401(box: Box) -> None:
    with httpx.Client(base_url=box.url, timeout=10) as anon:
        info = anon.get("/api/info").json()
        assert info == {
            **info,
            "site": "kisumu-demo",
            "setup_needed": False,
            "tz": "Africa/Nairobi",
        }
        assert anon.get("/healthz").json()["status"] == "ok"
        assert "sunbox_soc_pct" in anon.get("/metrics").text
        spec = anon.get("/openapi.json").json()
        assert "/api/jobs" in spec["paths"] and "/api/stream" in spec["paths"]
        for path in (
            "/api/state",
            "/api/jobs",
            "/api/stream",
            "/api/charts/forecast.svg",
            "/api/users",
        ):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert r.json()["code"] == "auth.required"
        for method, path, body in (
            ("POST", "/api/jobs", b"{not json"),
            (
                "POST",
                "/api/jobs",
                json.dumps({"name": "x", "kind": "sponge", "energy_wh": 5}).encode(),
            ),
            ("POST", "/api/safe-mode", b'{"on": true}'),
            ("POST", "/api/setpoints", b'{"device": "damper", "point": "damper_pct", "value": 50}'),
            ("POST", "/api/users", b'{"name": "mallory", "role": "admin", "password": "x"}'),
            ("DELETE", "/api/users/admin", b""),
            ("POST", "/api/jobs/abc/cancel", b""),
            ("POST", "/api/logout", b""),
            ("PUT", "/api/state", b""),
        ):
            r = anon.request(
                method, path, content=body, headers={"content-type": "application/json"}
            )
            assert r.status_code == 401, (method, path, r.text)
        # a login from another site's page is refused before the password is looked at
        r = anon.post(
            "/api/login",
            json={"name": "admin", "password": "x"},
            headers={"Origin": "http://evil.example"},
        )
        assert r.status_code == 403
    r = httpx.get(f"{box.url}/", timeout=10)
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"


def test_session_cookie_is_httponly_strict_and_mutations_need_the_csrf_token(box: Box) -> None:
    name, password = box.admin or ("", "")
    with httpx.Client(base_url=box.url, timeout=10) as c:
        r = c.post("/api/login", json={"name": name, "password": password})
        cookies = r.headers.get_list("set-cookie")
        session = next(h for h in cookies if h.startswith("sunbox_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        csrf = r.json()["csrf_token"]
        assert c.get("/api/me").json()["user"] == "admin"
        body = {"on": False}
        assert c.post("/api/safe-mode", json=body).status_code == 403
        assert (
            c.post("/api/safe-mode", json=body, headers={"X-CSRF-Token": "wrong"}).status_code
            == 403
        )
        assert (
            c.post("/api/safe-mode", json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
        )
        assert c.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert c.get("/api/me").status_code == 401
    # a Bearer token (TUI, scripts) carries no ambient credential: no CSRF header needed
    token = box.token()
    r = httpx.post(
        f"{box.url}/api/safe-mode", json={"on": False}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200


def test_state_is_the_box_now_and_moves_with_the_simulator(admin: httpx.Client) -> None:
    first = admin.get("/api/state").json()
    assert first["ready"] and first["mode"] in ("normal", "safe", "shed")
    bat = first["battery"]
    assert 0 < bat["soc_pct"] <= 100 and bat["reserve_pct"] == 30.0 and bat["capacity_wh"] == 10000
    assert bat["above_reserve_wh"] == pytest.approx((bat["soc_pct"] - 30.0) * 100, abs=10)
    flow = first["flow"]
    assert flow["compute_w"] >= 40 and flow["ac_load_w"] >= flow["compute_w"]
    assert flow["heat_to_room_w"] + flow["heat_vented_w"] == pytest.approx(
        flow["compute_w"], abs=0.2
    )
    assert set(first["devices"]) == {"inverter", "battery", "room", "damper"}
    time.sleep(1.0)
    later = admin.get("/api/state").json()
    assert datetime.fromisoformat(later["at"]) > datetime.fromisoformat(first["at"])


def test_jobs_admitted_rejected_invalid_and_cancelled(
    box: Box, staff: dict[str, httpx.Client]
) -> None:
    op = staff["operator"]
    now = box_now(op)
    small = {
        "name": "render",
        "energy_wh": 100,
        "power_w": 100,
        "deadline": (now + timedelta(hours=20)).isoformat(),
    }
    r = op.post("/api/jobs", json=small)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["admitted"] is True and got["reason"].startswith("admitted: planned")
    job = got["job"]
    assert (
        job["state"] == "admitted"
        and job["owner"] == "operator1"
        and job["reason"] == got["reason"]
        and job["best_effort"] is False  # promised
    )
    # the same words reach the event log (what the CLI prints, what `sunbox jobs list` shows)
    events = op.get("/api/events", params={"kind": "job", "limit": 20}).json()
    assert any(e["message"] == f"job render: {got['reason']}" for e in events)
    listed = {j["id"]: j for j in op.get("/api/jobs").json()}
    assert listed[job["id"]]["waiting"] or listed[job["id"]]["state"] == "running"

    huge = {"name": "train", "energy_wh": 50000, "deadline": (now + timedelta(hours=3)).isoformat()}
    r = op.post("/api/jobs", json=huge)
    assert r.status_code == 201
    rej = r.json()
    assert rej["admitted"] is False and rej["reason"].startswith("rejected:")
    assert "50000 Wh" in rej["reason"] and rej["available_wh"] < 50000

    for body, words in (
        ({"name": "x", "energy_wh": 10}, "deadline"),
        ({"name": "x", "energy_wh": 10, "deadline": "2026-06-22T10:00"}, "UTC offset"),
        ({"name": "", "kind": "sponge", "energy_wh": 10}, "name"),
        ({"name": "x", "kind": "sponge", "energy_wh": -1}, "energy_wh"),
        ({"name": "x", "kind": "sponge", "energy_wh": 10, "colour": "red"}, "colour"),
    ):
        r = op.post("/api/jobs", json=body)
        assert r.status_code == 422, (body, r.text)
        assert words in r.json()["detail"] and "\n" not in r.json()["detail"]
    r = op.post("/api/jobs", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]

    r = op.post(f"/api/jobs/{job['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert "changed my mind (by operator1 (operator))" in r.json()["reason"]
    assert op.post(f"/api/jobs/{job['id']}/cancel").status_code == 409
    assert op.post("/api/jobs/nosuchjob/cancel").status_code == 404
    assert op.get("/api/jobs/nosuchjob").status_code == 404


def test_roles_decide_who_may_do_what(
    box: Box, admin: httpx.Client, staff: dict[str, httpx.Client]
) -> None:
    viewer, op, tech = staff["viewer"], staff["operator"], staff["technician"]
    now = box_now(viewer)
    sponge = {"name": "soak", "kind": "sponge", "energy_wh": 20}
    r = viewer.post("/api/jobs", json=sponge)
    assert r.status_code == 403 and "operator" in r.json()["detail"]
    assert viewer.get("/api/jobs").status_code == 200
    assert viewer.get("/api/users").status_code == 403
    # who logged in from where is for admins only
    assert all(e["kind"] != "auth" for e in viewer.get("/api/events", params={"limit": 500}).json())
    assert viewer.get("/api/events", params={"kind": "auth"}).json() == []
    assert admin.get("/api/events", params={"kind": "auth"}).json()
    assert op.post("/api/safe-mode", json={"on": True}).status_code == 403
    assert (
        op.post("/api/users", json={"name": "x1", "role": "admin", "password": STRONG}).status_code
        == 403
    )
    # a job with a shell command runs code on the box: technician and up by default
    cmd_job = {
        "name": "shell",
        "kind": "deferrable",
        "energy_wh": 5,
        "power_w": 50,
        "cmd": "true",
        "deadline": (now + timedelta(hours=24)).isoformat(),
    }
    r = op.post("/api/jobs", json=cmd_job)
    assert r.status_code == 403 and r.json()["code"] == "job.cmd_role"
    assert tech.post("/api/jobs", json=cmd_job).status_code == 201
    assert (
        tech.get("/api/setpoints").status_code == 200
        and viewer.get("/api/setpoints").status_code == 403
    )

    r = tech.post("/api/safe-mode", json={"on": True})
    assert r.status_code == 200
    st = box.wait_for(tech, "/api/state", lambda s: s["mode"] == "safe")
    assert "manual safe mode set by technician1 (technician)" in st["mode_reason"]
    tech.post("/api/safe-mode", json={"on": False})
    box.wait_for(tech, "/api/state", lambda s: s["mode"] != "safe")


def test_setpoints_go_through_the_bounded_writer(staff: dict[str, httpx.Client]) -> None:
    tech = staff["technician"]
    r = tech.post("/api/setpoints", json={"device": "damper", "point": "damper_pct", "value": 150})
    assert r.status_code == 409
    assert r.json()["written"] is False and "refused" in r.json()["reason"]
    r = tech.post(
        "/api/setpoints",
        json={
            "device": "battery",
            "point": "802.SoCRsvMin",
            "value": 30,
            "reason": "commissioning",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["written"] is True and r.json()["read_back"] == pytest.approx(30, abs=0.5)
    r = tech.post("/api/setpoints", json={"device": "room", "point": "room_temp_c", "value": 20})
    assert r.status_code == 404
    events = tech.get("/api/events", params={"kind": "write", "limit": 50}).json()
    assert any(
        "802.SoCRsvMin = 30" in e["message"] and "technician1" in e["message"] for e in events
    )


def test_users_admin(box: Box, admin: httpx.Client) -> None:
    assert (
        admin.post(
            "/api/users", json={"name": "nia", "role": "operator", "password": "short"}
        ).status_code
        == 422
    )
    r = admin.post(
        "/api/users", json={"name": "nia", "role": "operator", "password": "nia-password-1"}
    )
    assert r.status_code == 422 and "user name" in r.json()["detail"]
    r = admin.post(
        "/api/users", json={"name": "Nia", "role": "operator", "password": "kisumu-evenings"}
    )
    assert r.status_code == 201 and r.json()["name"] == "nia"
    assert (
        admin.post(
            "/api/users", json={"name": "nia", "role": "viewer", "password": STRONG}
        ).status_code
        == 409
    )
    nia = box.client("nia", "kisumu-evenings")
    assert nia.get("/api/me").json()["role"] == "operator"
    r = admin.post("/api/users/nia/role", json={"role": "viewer"})
    assert r.status_code == 200
    assert nia.get("/api/me").json()["role"] == "viewer"  # at once: the API dropped its cache
    assert (
        nia.post("/api/jobs", json={"name": "x", "kind": "sponge", "energy_wh": 5}).status_code
        == 403
    )
    # a new password ends the user's sessions, and with them any live stream they hold open
    reset_at = None
    with nia.stream("GET", "/api/stream", timeout=20) as live:
        for line in live.iter_lines():
            if reset_at is None and line.startswith("event: state"):
                new_pw = {"password": "new-kisumu-evenings"}
                assert admin.post("/api/users/nia/password", json=new_pw).status_code == 204
                reset_at = time.monotonic()
    assert reset_at is not None and time.monotonic() - reset_at < 8
    assert nia.get("/api/me").status_code == 401
    assert admin.delete("/api/users/admin").status_code == 409  # the last admin stays
    assert admin.delete("/api/users/nia").status_code == 204
    assert admin.delete("/api/users/nia").status_code == 404


def test_live_stream_pushes_state_and_events(box: Box, staff: dict[str, httpx.Client]) -> None:
    op = staff["operator"]
    seen: dict[str, list[dict[str, object]]] = {"state": [], "event": []}
    with op.stream("GET", "/api/stream", timeout=20) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = None
        submitted = False
        deadline = time.monotonic() + 15
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind:
                seen[kind].append(json.loads(line[6:]))
                if len(seen["state"]) >= 3 and not submitted:
                    op.post(
                        "/api/jobs", json={"name": "streamed", "kind": "sponge", "energy_wh": 10}
                    )
                    submitted = True
                if any(
                    e["kind"] == "job" and "streamed" in str(e["message"]) for e in seen["event"]
                ):
                    break
            if time.monotonic() > deadline:
                break
    times = [datetime.fromisoformat(str(s["at"])) for s in seen["state"]]
    assert len(times) >= 3 and times == sorted(times) and times[-1] > times[0]
    assert any(e["kind"] == "job" and "streamed" in str(e["message"]) for e in seen["event"])


def test_metrics_in_prometheus_format(admin: httpx.Client, box: Box) -> None:
    r = httpx.get(f"{box.url}/metrics", timeout=10)
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = list(parse(r.text))
    names = {n for n, _, _ in samples}
    for name in (
        "sunbox_soc_pct",
        "sunbox_pv_power_w",
        "sunbox_battery_power_w",
        "sunbox_load_power_w",
        "sunbox_compute_power_w",
        "sunbox_mode",
        "sunbox_jobs",
        "sunbox_control_cycle_seconds_count",
        "sunbox_sync_queue_depth",
        "sunbox_heat_delivered_wh",
        "sunbox_heat_erf",
    ):
        assert name in names, name
    assert all(n.startswith("sunbox_") for n in names)
    modes = {lab["mode"]: v for n, lab, v in samples if n == "sunbox_mode"}
    assert sorted(modes.values()) == [0.0, 0.0, 1.0]
    prios = {lab["priority"] for n, lab, _ in samples if n == "sunbox_sync_queue_depth"}
    assert prios == {"alarm", "job_result", "daily_summary", "telemetry", "log"}
    jobs = {lab["state"]: v for n, lab, v in samples if n == "sunbox_jobs"}
    api_jobs = admin.get("/api/jobs", params={"limit": 1000}).json()
    assert jobs["rejected"] == sum(j["state"] == "rejected" for j in api_jobs)
    soc = next(v for n, _, v in samples if n == "sunbox_soc_pct")
    assert 0 < soc <= 100
    buckets = [v for n, _, v in samples if n == "sunbox_control_cycle_seconds_bucket"]
    assert buckets == sorted(buckets) and buckets[-1] > 0


def test_forecast_plan_and_charts(admin: httpx.Client) -> None:
    fc = admin.get("/api/forecast").json()
    assert fc["step_s"] == 900 and len(fc["p50_w"]) == 192  # two local days of 15-min slots
    start = datetime.fromisoformat(fc["start"])
    assert start.astimezone(__import__("zoneinfo").ZoneInfo("Africa/Nairobi")).hour == 0
    triples = [
        (a, b, c)
        for a, b, c in zip(fc["p10_w"], fc["p50_w"], fc["p90_w"], strict=True)
        if b is not None
    ]
    assert len(triples) == 192
    assert all(a <= b + 0.1 and b <= c + 0.1 for a, b, c in triples)
    assert max(c for _, _, c in triples) > 500  # a June day in Kisumu with a 3 kWp tracker
    assert fc["live_from"] is not None and fc["actual"], "measured PV since local midnight"

    svg = ET.fromstring(admin.get("/api/charts/forecast.svg").text)
    ns = "{http://www.w3.org/2000/svg}"
    band = [p for p in svg.iter(f"{ns}polygon") if p.get("data-series") == "p10-p90"]
    assert band and len(band[0].get("points", "").split()) > 20
    assert any(p.get("data-series") == "p50" for p in svg.iter(f"{ns}polyline"))
    assert any(p.get("data-series") == "actual" for p in svg.iter(f"{ns}polyline"))

    plan = admin.get("/api/plan").json()
    assert plan["ready"] and len(plan["soc_pct"]) == len(plan["pv_w"]) >= 96
    soc_svg = ET.fromstring(admin.get("/api/charts/soc.svg").text)
    reserve = next(ln for ln in soc_svg.iter(f"{ns}line") if ln.get("data-series") == "reserve")
    assert float(reserve.get("y1", "0")) == pytest.approx(
        300 - 30 - 0.30 * (300 - 34 - 30), abs=0.2
    )
    for name in ("plan", "heat"):
        r = admin.get(f"/api/charts/{name}.svg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
        ET.fromstring(r.text)
    assert admin.get("/api/charts/nothing.svg").status_code == 422


def test_reads_heat_links_events_devices_history_loop(admin: httpx.Client) -> None:
    heat = admin.get("/api/heat").json()
    assert heat["enabled"] and heat["setpoint_c"] == 20.0 and 10 < heat["room_temp_c"] < 35
    assert set(heat["ledger"]) >= {"heat_delivered_wh", "heat_used_wh", "erf"}
    links = admin.get("/api/links").json()
    assert set(links["queue"]) == {"alarm", "job_result", "daily_summary", "telemetry", "log"}
    devs = {d["name"]: d for d in admin.get("/api/devices").json()}
    assert devs["inverter"]["health"]["connected"] and devs["inverter"]["identity"]["manufacturer"]
    hist = admin.get("/api/history", params={"channel": "soc_pct", "hours": 2}).json()
    assert hist["points"] and all(0 <= v <= 100 for _, v in hist["points"])
    assert admin.get("/api/history", params={"channel": "nope"}).status_code == 404
    assert admin.get("/api/history", params={"channel": "soc_pct", "hours": -1}).status_code == 422
    assert admin.get("/api/events", params={"kind": "bogus"}).status_code == 422
    ev = admin.get("/api/events", params={"limit": 5}).json()
    assert len(ev) == 5 and ev[0]["id"] > ev[-1]["id"]
    loop = admin.get("/api/loop").json()
    deadline = time.monotonic() + 30.0  # run alone, this test may come before 10 cycles have
    while loop["cycles"] <= 10 and time.monotonic() < deadline:
        time.sleep(0.5)
        loop = admin.get("/api/loop").json()
    assert loop["cycles"] > 10 and 0 < loop["max_s"] < loop["period_wall_s"] * 5


def test_login_rate_limit_then_window_passes(box: Box) -> None:
    """Last in this file: it locks 127.0.0.1 out for the (test-sized) window."""
    name, password = box.admin or ("", "")
    with httpx.Client(base_url=box.url, timeout=30) as c:
        for _ in range(5):
            assert (
                c.post("/api/login", json={"name": name, "password": "not-it"}).status_code == 401
            )
        r = c.post("/api/login", json={"name": name, "password": password})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= WINDOW_S
        assert "try again" in r.json()["detail"]
        time.sleep(float(r.headers["retry-after"]) + 0.2)
        assert c.post("/api/login", json={"name": name, "password": password}).status_code == 200
    alerts = httpx.get(
        f"{box.url}/api/events",
        params={"kind": "auth"},
        headers={"Authorization": f"Bearer {box.token()}"},
    ).json()
    assert any("too many failures" in e["message"] for e in alerts)


@pytest.fixture(scope="module", autouse=True)
def _artifacts(box: Box) -> Iterator[None]:
    yield
    out = Path(__file__).resolve().parent.parent / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "api-demo-console.txt").write_text("\n".join(box.lines) + "\n", encoding="utf-8")
