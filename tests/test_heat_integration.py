"""Heat in the running box: the damper moves on the simulator's Modbus registers, a stale room
sensor makes routing vent (with an event), and the planner runs more compute on a cold night."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pymodbus.client import AsyncModbusTcpClient

from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.control.heat_value import heat_value_per_kwh
from appliance.energy import plan
from appliance.sim import build_simulators
from appliance.state import Job, JobKind, JobState, PowerForecast
from appliance.store import Store
from tests.conftest import free_port, make_config
from tests.daemon_helpers import settled_daemon

EVENING = datetime(2024, 3, 20, 16, 30, tzinfo=UTC)  # 19:30 in Kisumu: heat wanted from 18:00


def heat_config(port: int) -> SunboxConfig:
    cfg = make_config(port, sim={"measurement_noise": False, "tick_s": 0.05, "initial_room_temp_c": 16.0},
                      heat={"sensor_stale_after_s": 20.0, "min_dwell_s": 0.0})
    data = cfg.model_dump(mode="json", exclude_none=True)
    for dev in data["devices"]:
        dev.update(poll_interval_s=2.0)
        if dev["name"] == "room":
            dev.update(stale_after_s=20.0)
        if dev["name"] == "damper":
            dev.update(unit_id=4)  # its own unit: a dead sensor must not take the damper with it
    return SunboxConfig.model_validate(data)


async def _evening(tmp: Path) -> dict[str, Any]:
    config = heat_config(free_port())
    clock = ManualClock(EVENING)
    sims = build_simulators(config, clock, compute_power_w=lambda: 250.0)
    clock.advance(60)
    store = Store.open_dir(tmp)
    out: dict[str, Any] = {}
    async with sims:
        daemon = await settled_daemon(config, clock, store, tmp)
        client = AsyncModbusTcpClient("127.0.0.1", port=config.devices[0].port, timeout=1, retries=0)
        assert await client.connect()
        damper = config.device("damper").points["damper_pct"]
        rr = await client.read_holding_registers(damper.address, count=1, device_id=config.device("damper").unit_id)
        out["register_warm_room"] = rr.registers[0]
        out["plant_damper"] = sims.plant.damper_pct
        # the room sensor stops answering; its value goes stale: routing falls back to vent
        sims.inject("silent", device="room")
        for _ in range(15):
            clock.advance(2)
            await daemon.control_once()
        sims.clear(device="room")
        rr = await client.read_holding_registers(damper.address, count=1, device_id=config.device("damper").unit_id)
        out["register_stale"] = rr.registers[0]
        client.close()
        await daemon.gateway.close()
    out["heat_events"] = [e.message for e in store.events.list(kinds=["heat"], limit=50)]
    return out


def test_damper_on_modbus_and_stale_sensor_vents(tmp_path: Path) -> None:
    r = asyncio.run(_evening(tmp_path))
    # 16 °C in the evening with heat wanted: the node's heat goes to the room, on the wire
    assert r["register_warm_room"] == 100 and r["plant_damper"] == 100
    # a stale room sensor: vent (safe default) and say why
    assert r["register_stale"] == 0
    assert any("room sensor" in m and "vent" in m for m in r["heat_events"]), r["heat_events"]


def _dark_forecast(start: datetime, hours: int = 48) -> PowerForecast:
    n = hours * 4
    zero = np.zeros(n)
    return PowerForecast(issued_at=start, start=start, step_s=900, p10_w=zero, p50_w=zero, p90_w=zero)


def test_cold_night_with_a_full_battery_runs_more_compute_than_a_warm_one() -> None:
    cfg = make_config(heat={"enabled": True, "damper": None, "room_sensor": None})
    now = datetime(2024, 3, 20, 16, 0, tzinfo=UTC)  # 19:00 local: heat wanted until 07:00
    fc = _dark_forecast(now)
    sponge = Job(id="s", name="batch", kind=JobKind.SPONGE, power_w=250.0, energy_wh=None, deadline=None,
                 submitted_at=now, state=JobState.ADMITTED)
    night = {}
    for label, outdoor in (("cold", 5.0), ("warm", 24.0)):
        value = heat_value_per_kwh(cfg, fc.start, fc.step_s, np.full(len(fc), outdoor), 18.0)
        assert value is not None
        p = plan(now, fc, 95.0, [sponge], cfg, heat_value_per_kwh=value)
        night[label] = float(p.job_power_w["s"][:48].sum() / 4.0)  # Wh over the first 12 h
        # the reserve rule wins: heat never takes the battery below it
        assert float(p.soc_pct.min()) >= cfg.battery.reserve_pct - 1e-6
    assert night["cold"] > 200.0
    assert night["cold"] > 2 * night["warm"]
