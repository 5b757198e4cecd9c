"""The fleet part wired into the running box: under balena (supervisor variables set) the demo
daemon holds the update lock while its battery is low, reports health tags, and lets an update
in once the sun has filled the battery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from appliance.config import dump_config
from appliance.fleet.health import TAG_MODE, TAG_SOC
from tests.conftest import REPO, free_port, make_config
from tests.fleet_fake_supervisor import FakeSupervisor


def _wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_fleet_balena_lock_follows_the_battery_in_the_running_daemon(tmp_path: Path) -> None:
    lock = tmp_path / "balena" / "updates.lock"
    sup = FakeSupervisor(lock).start()
    cfg = make_config(free_port(), battery={"initial_soc_pct": 40.0},
                      fleet={"lock_path": str(lock), "update_min_soc_pct": 45.0, "update_soc_hysteresis_pct": 2.0,
                             "release_after_s": 60.0, "health_interval_s": 60.0})
    path = tmp_path / "sunbox.toml"
    path.write_text(dump_config(cfg))
    env = dict(os.environ, BALENA_SUPERVISOR_ADDRESS=sup.address, BALENA_SUPERVISOR_API_KEY=sup.api_key)
    demo = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "demo", "--config", str(path), "--data-dir", str(tmp_path / "d"),
         "--no-api", "--speed", "120", "--start", "2026-03-20T09:00:00+03:00", "--duration", "90"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        # 40 % in the morning, below the 45 % the fleet manager asked for: updates must wait
        _wait(lock.exists, 40, "the update lock to be taken")
        sup.new_release("b" * 32)
        assert not sup.try_apply() and sup.update_pending
        _wait(lambda: TAG_SOC in sup.tags and TAG_MODE in sup.tags, 40, "health tags")
        # the sun fills the battery past 47 %: the lock is released and the update lands
        _wait(lambda: not lock.exists(), 70, "the lock to be released in the sun")
        assert sup.try_apply()
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=60)
        sup.stop()
    assert demo.returncode == 0, err[-2000:]
    assert not lock.exists()  # a stopped daemon holds nothing
