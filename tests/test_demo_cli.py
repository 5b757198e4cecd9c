"""`sunbox demo`: starts on loopback, records telemetry, stops cleanly with --duration; status reads it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.store import Store
from tests.conftest import free_port, make_config


def _config_file(tmp_path: Path) -> Path:
    from appliance.config import dump_config

    path = tmp_path / "sunbox.toml"
    path.write_text(dump_config(make_config(free_port())))
    return path


def test_demo_runs_fast_clock_and_stops_by_itself(tmp_path: Path) -> None:
    cfg = _config_file(tmp_path)
    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "demo", "--config", str(cfg), "--data-dir", str(data),
         "--duration", "8", "--speed", "120", "--start", "2026-03-20T08:00:00+03:00", "--no-api"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "simulated" in proc.stdout and "sunbox status" in proc.stdout
    assert "Traceback" not in proc.stderr
    store = Store.open_dir(data)
    soc = store.telemetry.series("soc_pct", *_span(store))
    assert len(soc) >= 3
    # about 16 virtual minutes of morning sun on a 3 kWp tracker: the battery charges
    assert soc[-1][1] > soc[0][1]
    kinds = {e.kind for e in store.events.list(limit=200)}
    assert {"system", "mode", "write"} <= {str(k) for k in kinds}
    status = subprocess.run([sys.executable, "-m", "appliance.cli", "status", "--config", str(cfg),
                             "--data-dir", str(data), "--json"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    snap = json.loads(status.stdout)
    assert snap["mode"] in ("normal", "shed") and snap["readings"]["soc_pct"]["value"] > 0
    assert snap["daemon"]["speed"] == 120


def _span(store: Store) -> tuple:  # type: ignore[type-arg]
    from datetime import UTC, datetime, timedelta

    rows = store.query("SELECT min(ts_ms) AS a, max(ts_ms) AS b FROM telemetry")
    a = datetime.fromtimestamp(rows[0]["a"] / 1000, tz=UTC)
    b = datetime.fromtimestamp(rows[0]["b"] / 1000, tz=UTC) + timedelta(seconds=1)
    return a, b


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    cfg = _config_file(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "demo", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
         "--no-api"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "stop with Ctrl-C" in line:
            break
    time.sleep(3)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert "stopped after" in out


def test_demo_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        from appliance.config import dump_config

        cfg = tmp_path / "sunbox.toml"
        cfg.write_text(dump_config(make_config(port)))
        proc = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "demo", "--config", str(cfg), "--data-dir", str(tmp_path / "d"),
             "--duration", "5", "--no-api"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"port(s) [{port}]" in proc.stderr and "Traceback" not in proc.stderr
