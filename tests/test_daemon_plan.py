"""The running daemon's plan loop: best-effort work its plan keeps is promised, on the real
device path (simulators over Modbus on loopback, the store, the job service's lock)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.clock import ManualClock
from appliance.sim import build_simulators
from appliance.state import Job, JobKind, JobState
from appliance.store import Store
from tests.conftest import free_port, make_config
from tests.daemon_helpers import settled_daemon


async def _morning_with_best_effort_work(tmp: Path) -> dict[str, Any]:
    config = make_config(free_port(), sim={"measurement_noise": False, "tick_s": 0.05})
    morning = datetime(2024, 3, 20, 5, 0, tzinfo=UTC)  # 08:00 in Kisumu: a day of sun ahead
    clock = ManualClock(morning)
    sims = build_simulators(config, clock)
    clock.advance(60)
    store = Store.open_dir(tmp)
    small = Job(id="be", name="photos", kind=JobKind.DEFERRABLE, power_w=100.0, energy_wh=100.0,
                deadline=morning + timedelta(hours=10), submitted_at=morning, state=JobState.ADMITTED,
                best_effort=True)
    store.jobs.save(small)
    out: dict[str, Any] = {}
    async with sims:
        daemon = await settled_daemon(config, clock, store, tmp)
        planned = await daemon.plan_once(force="test")
        out["planned"] = planned is not None
        await daemon.gateway.close()
    job = store.jobs.get("be")
    out["best_effort"] = None if job is None else job.best_effort
    out["events"] = [e for e in store.events.list(kinds=["job"], limit=20) if e.data.get("action") == "promote"]
    return out


def test_the_running_daemon_promises_best_effort_work_its_plan_keeps(tmp_path: Path) -> None:
    """A 100 Wh best-effort job due in ten hours, a sunny morning ahead: the daemon's plan
    finishes it (there is no other promise to keep), so the daemon promises it and says so."""
    r = asyncio.run(_morning_with_best_effort_work(tmp_path))
    assert r["planned"] and r["best_effort"] is False
    assert len(r["events"]) == 1 and "promised now: at P10" in r["events"][0].message
