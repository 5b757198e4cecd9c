"""`sunbox demo --hub URL`: the demo box syncs its events and telemetry to a real hub process,
and a weather forecast pushed at the hub reaches the box's forecaster."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from appliance.config import dump_config
from appliance.store import Store
from appliance.sync.hub import HubStore
from tests.conftest import REPO, free_port, make_config


def test_demo_syncs_to_hub_and_takes_a_weather_forecast(tmp_path: Path) -> None:
    hub_port = free_port()
    hub_dir = tmp_path / "hub"
    hub = subprocess.Popen([sys.executable, "-m", "appliance.cli", "hub", "--port", str(hub_port), "--data-dir",
                            str(hub_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{hub_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        cfg = make_config(free_port(), sync={"box_id": "kisumu-demo", "telemetry_interval_s": 300,
                                             "interval_s": 5})
        cfg_path = tmp_path / "sunbox.toml"
        cfg_path.write_text(dump_config(cfg))
        weather = tmp_path / "forecast.csv"
        weather.write_text("time,ghi_w_m2,temp_air_c\n" + "".join(
            f"2026-03-21T{h:02d}:00:00+00:00,{max(0, 900 - abs(h - 9) * 150)},{18 + h % 5}\n" for h in range(24)))
        push = subprocess.run([sys.executable, "-m", "appliance.cli", "hub", "push", "--data-dir", str(hub_dir),
                               "--box", "kisumu-demo", "--kind", "weather", str(weather)],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert push.returncode == 0, push.stderr
        data = tmp_path / "box"
        demo = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "demo", "--config", str(cfg_path), "--data-dir", str(data),
             "--hub", url, "--duration", "12", "--speed", "60", "--start", "2026-03-21T06:00:00+03:00", "--no-api"],
            capture_output=True, text=True, timeout=120, cwd=REPO)
        assert demo.returncode == 0, demo.stderr[-2000:]
    finally:
        hub.terminate()
        hub.wait(timeout=20)
    hub_store = HubStore.open_dir(hub_dir)
    counts = hub_store.stream_counts("kisumu-demo")
    assert counts, "nothing reached the hub"
    assert sum(c["items"] for c in counts.values()) >= 2
    box = Store.open_dir(data)
    messages = [e.message for e in box.events.list(limit=500)]
    assert any("weather forecast received" in m for m in messages), messages[:20]
