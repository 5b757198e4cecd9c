"""Integration: a real process job submitted through the CLI runs on the demo box, is suspended
(SIGSTOP) when the simulated battery reaches the reserve, resumes when the sun has refilled it,
and its energy is accounted — all over real Modbus against the simulator."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pymodbus.client import ModbusTcpClient

from appliance.config import dump_config
from appliance.store import Store
from tests.conftest import REPO, free_port, make_config

SERVICE_UNIT = 247
NO_OVERRIDE = 0xFFFF
BURN = "import time\nwhile time.process_time() < 20: pass"  # 20 s of CPU, however often stopped


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _wait(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_job_is_suspended_at_the_reserve_and_resumes_with_the_sun(tmp_path: Path) -> None:
    port = free_port()
    cfg = make_config(port, battery={"initial_soc_pct": 31.5},
                      control={"min_dwell_s": 60.0, "period_s": 2.0})
    cfg_path = tmp_path / "sunbox.toml"
    cfg_path.write_text(dump_config(cfg))
    data = tmp_path / "data"
    demo = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "demo", "--config", str(cfg_path), "--data-dir", str(data),
         "--speed", "60", "--start", "2026-03-20T11:00:00+03:00", "--no-api", "--duration", "150"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    modbus = ModbusTcpClient("127.0.0.1", port=port, timeout=2)
    try:
        assert demo.stdout is not None
        _wait(lambda: "stop with Ctrl-C" in (demo.stdout.readline() or ""), 60, "demo start")
        store = Store.open_dir(data)
        _wait(lambda: store.get_kv("box") is not None and store.get_kv("box")[0]["mode"] == "normal", 60,
              "normal mode")
        sub = _cli("jobs", "submit", "--config", str(cfg_path), "--data-dir", str(data), "--name", "burn",
                   "--cmd", f"{sys.executable} -c '{BURN}'", "--duration", "1800", "--power-w", "150",
                   "--deadline", "+10h", "--json")
        assert sub.returncode == 0, sub.stderr
        decision = json.loads(sub.stdout)
        job_id = decision["job"]["id"] if "job" in decision else decision["id"]
        assert "admitted" in json.dumps(decision)
        assert "no live data" not in json.dumps(decision)  # decided on the daemon's (fast) clock

        def state() -> str:
            job = store.jobs.get(job_id)
            return "" if job is None else job.state.value

        _wait(lambda: state() == "running", 60, "job running")
        # the village plugs in a welder: more than the sun gives, the battery falls to the reserve
        assert modbus.connect()
        assert not modbus.write_register(1, 4500, device_id=SERVICE_UNIT).isError()
        _wait(lambda: state() == "suspended", 60, "job suspended at the reserve")
        shed = [e.message for e in store.events.list(kinds=["mode"], limit=50) if "-> shed" in e.message]
        assert shed and "reserve" in shed[0], shed  # at the reserve, or minutes before it (lookahead)
        assert not modbus.write_register(1, NO_OVERRIDE, device_id=SERVICE_UNIT).isError()
        _wait(lambda: state() in ("running", "done"), 90, "job resumed with the sun")
        _wait(lambda: state() == "done", 90, "job done")
        job = store.jobs.get(job_id)
        assert job is not None and job.exit_code == 0 and job.energy_used_wh > 0.0 and job.cpu_s >= 5.0
        messages = [e.message for e in store.events.list(kinds=["job"], limit=200)]
        assert any(": suspended: " in m and "reserve" in m for m in messages), messages
        assert any(": resumed: " in m for m in messages), messages
    finally:
        modbus.close()
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=60)
    assert demo.returncode == 0
