"""The hub's HTTP API and the `sunbox hub` / `sunbox sync` commands."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from appliance.cli import main
from appliance.clock import ManualClock
from appliance.store import Store
from appliance.store.outbox import Priority
from appliance.sync.codec import Series, TelemetryBlock, encode_block
from appliance.sync.hub import HubStore, create_hub_app
from appliance.sync.ledger import SyncLedger
from appliance.sync.wire import Batch, Frame, encode_batch
from tests.conftest import REPO, free_port

AT = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)


def _batch(stream: str, seqs: range, kind: str = "log", payload: bytes = b"\x01\x02hi") -> bytes:
    return encode_batch(Batch(5, tuple(Frame(kind, stream, s, AT, payload) for s in seqs)))


def test_hub_dedups_acks_and_guards_tokens(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub.db")
    client = TestClient(create_hub_app(store, ManualClock(AT), admin_token="admin"))
    auth = {"Authorization": "Bearer s3cret"}
    r = client.post("/v1/boxes/b1/batches", content=_batch("log", range(1, 4)), headers=auth)
    assert r.json() == {"batch": 5, "acked": {"log": 3}, "new": 3, "dup": 0}
    r = client.post("/v1/boxes/b1/batches", content=_batch("log", range(2, 6)), headers=auth)
    assert r.json() == {"batch": 5, "acked": {"log": 5}, "new": 2, "dup": 2}
    assert (
        client.post("/v1/boxes/b1/batches", content=_batch("log", range(6, 7))).status_code == 401
    )
    wrong = {"Authorization": "Bearer other"}
    assert (
        client.post(
            "/v1/boxes/b1/batches", content=_batch("log", range(6, 7)), headers=wrong
        ).status_code
        == 401
    )
    bad = client.post("/v1/boxes/b1/batches", content=b"\x01\x05\x02garbage", headers=auth)
    assert bad.status_code == 400 and "bad batch" in bad.json()["detail"]
    assert store.stream_counts("b1") == {"log": {"items": 5, "last_seq": 5}}

    ts = tuple(int(AT.timestamp() * 1000) + i * 60_000 for i in range(3))
    block = encode_block(TelemetryBlock((Series("pv_power_w", ts, (100.0, 250.0, 400.0)),), 60))
    client.post(
        "/v1/boxes/b1/batches",
        content=_batch("telemetry", range(1, 2), "telemetry", block),
        headers=auth,
    )
    points = client.get("/v1/boxes/b1/telemetry", params={"channel": "pv_power_w"}).json()["points"]
    assert [v for _, v in points] == [100.0, 250.0, 400.0]
    items = client.get("/v1/boxes/b1/items", params={"stream": "telemetry"}).json()
    assert items[0]["content"]["points"] == 3

    # admin: inbound items need the admin token
    assert (
        client.post("/v1/boxes/b1/inbound", params={"kind": "job"}, content=b"{}").status_code
        == 401
    )
    r = client.post(
        "/v1/boxes/b1/inbound",
        params={"kind": "weather", "name": "f.csv"},
        content=b"a,b\n" * 100,
        headers={"Authorization": "Bearer admin"},
    )
    assert r.status_code == 200 and r.json()["id"] == 1
    assert (
        client.post(
            "/v1/boxes/b1/inbound",
            params={"kind": "nope"},
            content=b"x",
            headers={"Authorization": "Bearer admin"},
        ).status_code
        == 422
    )
    tiny = client.get("/v1/boxes/b1/inbound", params={"after": 0, "max_bytes": 16}, headers=auth)
    assert tiny.status_code == 200 and tiny.content == b"\x00"  # nothing fits in 16 bytes
    store.close()


def _status_config(tmp_path: Path) -> Path:
    path = tmp_path / "sunbox.toml"
    path.write_text(
        '[site]\nname = "garissa-1"\ntz = "Africa/Nairobi"\n\n'
        '[[links]]\nname = "cell"\nkind = "cellular"\nurl = "http://127.0.0.1:9"\n'
        "daily_budget_bytes = 2000000\ncost_per_mb = 2.5\n"
    )
    return path


def test_sync_status_reads_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _status_config(tmp_path)
    data = tmp_path / "data"
    store = Store.open_dir(data)
    now = datetime.now(UTC)
    ledger = SyncLedger(store)
    from zoneinfo import ZoneInfo

    today = now.astimezone(ZoneInfo("Africa/Nairobi")).date()
    ledger.add_usage("cell", today, bytes_up=400_000, bytes_down=100_000, requests=7, items=90)
    ledger.record_success("cell", now - timedelta(minutes=5))
    store.outbox.put("alarm", Priority.ALARM, "alarm", b"a", now - timedelta(hours=2), "garissa-1")
    store.outbox.put(
        "telemetry", Priority.TELEMETRY, "telemetry", b"t", now - timedelta(hours=1), "garissa-1"
    )
    store.outbox.put("telemetry", Priority.TELEMETRY, "telemetry", b"t", now, "garissa-1")
    store.close()

    assert main(["sync", "status", "--json", "--config", str(config), "--data-dir", str(data)]) == 0
    status = json.loads(capsys.readouterr().out)
    link = status["links"][0]
    assert link["bytes_used_today"] == 500_000 and link["budget_bytes"] == 2_000_000
    assert link["budget_used_pct"] == 25.0 and link["cost_today"] == 1.25
    assert link["last_success"] is not None
    assert status["queue"] == {
        "alarm": 1,
        "job_result": 0,
        "daily_summary": 0,
        "telemetry": 2,
        "log": 0,
    }
    assert 7100 <= status["oldest_undelivered_age_s"] <= 7300

    assert main(["sync", "status", "--config", str(config), "--data-dir", str(data)]) == 0
    text = capsys.readouterr().out
    assert "link cell (cellular/http): 500,000 of 2,000,000 B today (25 %)" in text
    assert "queue: alarm 1, job_result 0, daily_summary 0, telemetry 2, log 0 (total 3)" in text


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[links]]\nname = "sat"\nkind = "satellite_sbd"\ntransport = "sbd"\n'
        'serial_port = "/dev/ttyUSB0"\nmax_message_bytes = 1000\n'
    )
    assert main(["sync", "status", "--config", str(bad), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert "exceeds the SBD limit of 340" in err and "\n" not in err
    assert main(["hub", "--port", "70000", "--data-dir", str(tmp_path / "h")]) == 1
    assert "--port 70000" in capsys.readouterr().err
    job = tmp_path / "job.json"
    job.write_text("[1, 2]")
    assert (
        main(
            [
                "hub",
                "push",
                "--box",
                "b",
                "--kind",
                "job",
                str(job),
                "--data-dir",
                str(tmp_path / "h"),
            ]
        )
        == 1
    )
    assert "JSON object" in capsys.readouterr().err
    job.write_text('{"name": "render", "energy_wh": 50}')
    assert (
        main(
            [
                "hub",
                "push",
                "--box",
                "b",
                "--kind",
                "job",
                str(job),
                "--data-dir",
                str(tmp_path / "h"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["id"] == 1


def test_sunbox_hub_process_and_sync_run_once(tmp_path: Path) -> None:
    port = free_port()
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "hub",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "hub"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "hub did not start"
                time.sleep(0.1)
        config = _status_config(tmp_path)
        data = tmp_path / "box"
        store = Store.open_dir(data)
        store.outbox.put(
            "alarm", Priority.ALARM, "alarm", b"\x01\x00", datetime.now(UTC), "garissa-1"
        )
        store.close()
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "appliance.cli",
                "sync",
                "run",
                "--once",
                "--hub",
                f"http://127.0.0.1:{port}",
                "--config",
                str(config),
                "--data-dir",
                str(data),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["items_sent"] == 1
        boxes = httpx.get(f"http://127.0.0.1:{port}/v1/boxes").json()
        assert boxes[0]["box"] == "garissa-1" and boxes[0]["items"] == 1
    finally:
        hub.terminate()
        hub.wait(10)
