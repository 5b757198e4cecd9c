"""The box's device layer against the simulator over real Modbus TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.devices.drivers import GenericDriver, SunSpecDriver, VictronDriver
from appliance.devices.gateway import ModbusGateway
from appliance.devices.link import Endpoint
from appliance.devices.scan import scan
from appliance.sim import build_simulators
from appliance.sim.context import device_identity
from appliance.state import Channel, WriteRequest
from tests.conftest import free_port, make_config
from tests.sim_helpers import KISUMU_NOON, sim_config


def victron_config(port: int) -> SunboxConfig:
    return make_config(
        port,
        devices=[{"name": "gx", "role": "battery", "host": "127.0.0.1", "port": port, "unit_id": 100,
                  "map": "victron", "limits": {"victron.2901": {"min": 15, "max": 60}}}],
        heat={"enabled": False, "damper": None, "room_sensor": None},
        sim={"measurement_noise": False, "tick_s": 0.05},
    )


async def _gateway_run(config: SunboxConfig, body: Any, box_config: SunboxConfig | None = None) -> None:
    """Simulate ``config``'s devices; the box polls per ``box_config`` (default the same)."""
    clock = ManualClock(KISUMU_NOON)
    sims = build_simulators(config, clock, compute_power_w=lambda: 150.0)
    clock.advance(60)
    async with sims:
        gw = ModbusGateway(box_config or config, clock)
        try:
            await body(sims, gw, clock)
        finally:
            await gw.close()


def test_sunspec_poll_matches_plant_in_three_requests() -> None:
    config = sim_config(free_port())

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        state = await gw.poll()  # discovery + first poll
        before = gw.requests()
        clock.advance(2)
        state = await gw.poll()
        per_poll = gw.requests() - before
        snap = sims.snapshot
        assert per_poll <= 3 + 1 + 1  # inverter map (<=3), battery map (1), room+damper unit (1)
        inverter_reads = len(gw.pollers["inverter"].driver.reads())
        assert inverter_reads <= 3
        assert state.fresh(Channel.SOC_PCT) == pytest.approx(snap.soc_pct, abs=0.1)
        assert state.fresh(Channel.PV_POWER_W) == pytest.approx(snap.pv_power_w, abs=2.0)
        assert state.fresh(Channel.BATTERY_POWER_W) == pytest.approx(snap.battery_power_w, abs=2.0)
        assert state.fresh(Channel.ROOM_TEMP_C) == pytest.approx(snap.room_temp_c, abs=0.1)
        assert state.fresh(Channel.PV_POWER_W) > 1000  # noon on the equator, clear sky, 3 kWp
        inv = gw.pollers["inverter"].snapshot
        assert inv.model_ids == [1, 101, 160, 124, 802][:4]
        assert inv.identity["manufacturer"] == device_identity(config, "inverter", "inverter")["manufacturer"]
        assert not state.alarms

    asyncio.run(_gateway_run(config, body))


def test_victron_poll_matches_plant() -> None:
    config = victron_config(free_port())

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        state = await gw.poll()
        snap = sims.snapshot
        assert isinstance(gw.pollers["gx"].driver, VictronDriver)
        assert state.fresh(Channel.SOC_PCT) == pytest.approx(snap.soc_pct, abs=1.0)  # whole % on a GX
        assert state.fresh(Channel.BATTERY_VOLTAGE_V) == pytest.approx(snap.battery_voltage_v, abs=0.1)
        assert state.fresh(Channel.PV_POWER_W) == pytest.approx(snap.pv_power_w, abs=2.0)
        assert len(gw.pollers["gx"].driver.reads()) == 3
        result = await gw.write(WriteRequest("gx", "victron.2901", 35, "test"))
        assert result.written and result.read_back == pytest.approx(35)
        assert sims.plant.reserve_pct == pytest.approx(35)
        refused = await gw.write(WriteRequest("gx", "victron.2901", 80, "test"))
        assert not refused.written and "outside its limits 15..60" in refused.reason
        assert sims.plant.reserve_pct == pytest.approx(35)
        readonly = await gw.write(WriteRequest("gx", "victron.843", 50, "test"))
        assert not readonly.written and "no limit configured" in readonly.reason

    asyncio.run(_gateway_run(config, body))


def test_bounded_writes_sunspec_and_generic() -> None:
    config = sim_config(free_port())

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        await gw.poll()
        ok = await gw.write(WriteRequest("battery", "802.SoCRsvMin", 35, "test"))
        assert ok.written and ok.read_back == pytest.approx(35)
        assert sims.plant.reserve_pct == pytest.approx(35)
        low = await gw.write(WriteRequest("battery", "802.SoCRsvMin", 5, "test"))
        assert not low.written and "outside its limits 10..100" in low.reason
        ro = await gw.write(WriteRequest("battery", "802.SoC", 50, "test"))
        assert not ro.written and "refused" in ro.reason
        damper = await gw.write(WriteRequest("damper", "damper_pct", 40, "test"))
        assert damper.written and sims.plant.damper_pct == pytest.approx(40)
        bad = await gw.write(WriteRequest("damper", "damper_pct", 140, "test"))
        assert not bad.written and sims.plant.damper_pct == pytest.approx(40)
        unknown = await gw.write(WriteRequest("pump", "x", 1, "test"))
        assert not unknown.written and "no device named" in unknown.reason

    asyncio.run(_gateway_run(config, body))


def test_dead_device_backs_off_and_does_not_stall_the_others() -> None:
    port = free_port()
    dead_port = free_port()
    config = sim_config(port)
    data = config.model_dump(mode="json", exclude_none=True)
    data["devices"].append({"name": "ghost", "role": "meter", "host": "127.0.0.1", "port": dead_port,
                            "unit_id": 9, "map": "sunspec"})
    box_config = SunboxConfig.model_validate(data)  # the box expects a meter nobody serves

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        wall = []
        for _ in range(8):
            t0 = time.monotonic()
            state = await gw.poll()
            wall.append(time.monotonic() - t0)
            clock.advance(2)
        ghost = gw.pollers["ghost"].snapshot.health
        assert ghost is not None and not ghost.connected and ghost.consecutive_failures >= 2
        assert ghost.backoff_s > 0
        # the ghost was tried only when its backoff allowed (1, 2, 4 s ...), not every cycle
        assert ghost.consecutive_failures < 8
        assert state.fresh(Channel.SOC_PCT) is not None
        assert max(wall) < 1.0, wall

    asyncio.run(_gateway_run(config, body, box_config))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_register_contents_never_escape_the_drivers(data: st.DataObject) -> None:
    """Any words at the read addresses decode into channels/alarms/points or nothing — never raise."""
    config = sim_config(1502)
    for dev in config.devices:
        if dev.map == "sunspec":
            drv: Any = SunSpecDriver(dev)
            from appliance.devices.sunspec import ModelBlock, SunSpecLayout

            blocks, addr = [], 40002
            for mid, length in ((1, 66), (101, 50), (160, 48), (124, 24), (802, 62)):
                blocks.append(ModelBlock(mid, addr, length))
                addr += length + 2
            drv.layout = SunSpecLayout(40000, tuple(blocks))
        elif dev.map == "victron":
            drv = VictronDriver(dev)
        else:
            drv = GenericDriver(dev)
        words: dict[tuple[str, int], dict[int, list[int]]] = {}
        for r in drv.reads():
            words.setdefault((r.kind, r.unit), {})[r.start] = data.draw(
                st.lists(st.integers(0, 0xFFFF), min_size=r.count, max_size=r.count))
        decoded = drv.decode(words)
        assert all(isinstance(v, float) for v in decoded.channels.values())
    vdrv = VictronDriver(victron_config(1502).devices[0])
    vwords: dict[tuple[str, int], dict[int, list[int]]] = {}
    for r in vdrv.reads():
        vwords.setdefault((r.kind, r.unit), {})[r.start] = data.draw(
            st.lists(st.integers(0, 0xFFFF), min_size=r.count, max_size=r.count))
    vdrv.decode(vwords)


def test_garbage_over_the_wire_never_raises_from_the_poller() -> None:
    config = sim_config(free_port())

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        await gw.poll()
        sims.inject("garbage")
        for _ in range(20):
            clock.advance(2)
            state = await gw.poll()  # must not raise
            soc = state.fresh(Channel.SOC_PCT)
            assert soc is None or 0.0 <= soc <= 100.0

    asyncio.run(_gateway_run(config, body))


def _scan_cli(port: int, units: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "devices", "scan", "--host", "127.0.0.1", "--port", str(port),
         "--unit-ids", units, "--json", "--timeout", "0.5"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def _serve_in_thread(config: SunboxConfig) -> tuple[Any, Any]:
    """Run the simulators in a background thread so a CLI subprocess can scan them."""
    import threading

    ready = threading.Event()
    holder: dict[str, Any] = {}

    def main() -> None:
        async def serve() -> None:
            clock = ManualClock(KISUMU_NOON)
            sims = build_simulators(config, clock, compute_power_w=lambda: 150.0)
            clock.advance(60)
            async with sims:
                holder["sims"] = sims
                holder["stop"] = asyncio.Event()
                holder["loop"] = asyncio.get_running_loop()
                ready.set()
                await holder["stop"].wait()

        asyncio.run(serve())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(20)
    return holder, thread


def test_scan_cli_reports_sunspec_models_identity_and_values() -> None:
    port = free_port()
    config = sim_config(port)
    holder, thread = _serve_in_thread(config)
    try:
        out = _scan_cli(port, "1-5")
        snap = holder["sims"].snapshot
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
    devices = {d["unit_id"]: d for d in out["devices"]}
    assert sorted(devices) == [1, 2]  # unit 3 is a plain register device, not SunSpec
    assert devices[1]["model_ids"] == [1, 101, 160, 124]
    assert devices[2]["model_ids"] == [1, 802]
    inv_id = device_identity(config, "inverter", "inverter")
    bat_id = device_identity(config, "battery", "battery")
    assert devices[1]["identity"]["manufacturer"] == inv_id["manufacturer"]
    assert devices[1]["identity"]["model"] == inv_id["model"]
    assert devices[2]["identity"]["serial"] == bat_id["serial"]
    assert devices[2]["values"]["soc_pct"] == pytest.approx(snap.soc_pct, abs=0.2)
    assert devices[1]["values"]["pv_power_w"] == pytest.approx(snap.pv_power_w, rel=0.05, abs=5)


def test_scan_cli_reports_victron_gx() -> None:
    port = free_port()
    config = victron_config(port)
    holder, thread = _serve_in_thread(config)
    try:
        out = _scan_cli(port, "99-101,227")
        snap = holder["sims"].snapshot
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
    assert [d["kind"] for d in out["devices"]] == ["victron"]
    gx = out["devices"][0]
    assert gx["unit_id"] == 100 and gx["vebus_unit_id"] == 227
    assert gx["identity"]["manufacturer"] == "Victron Energy"
    assert gx["values"]["soc_pct"] == pytest.approx(snap.soc_pct, abs=1.0)
    assert gx["values"]["battery_voltage_v"] == pytest.approx(snap.battery_voltage_v, abs=0.1)


def test_scan_cli_bad_unit_range_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "appliance.cli", "devices", "scan", "--host", "127.0.0.1",
                           "--port", "1", "--unit-ids", "5-1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "low to high" in proc.stderr and "Traceback" not in proc.stderr


def test_scan_finds_nothing_on_an_empty_port() -> None:
    found = asyncio.run(scan(Endpoint("tcp", host="127.0.0.1", port=free_port()), [1, 2], timeout_s=0.3))
    assert found == []


def test_sunspec_discovery_at_base_zero_and_strict_tail() -> None:
    config = sim_config(free_port(), sim={"sunspec_base": 0, "sunspec_tail_registers": 0,
                                          "measurement_noise": False, "tick_s": 0.05})

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        state = await gw.poll()
        drv = gw.pollers["battery"].driver
        assert isinstance(drv, SunSpecDriver) and drv.layout is not None and drv.layout.base == 0
        assert state.fresh(Channel.SOC_PCT) is not None

    asyncio.run(_gateway_run(config, body))


def test_stale_values_age_out_with_the_clock() -> None:
    config = sim_config(free_port())

    async def body(sims: Any, gw: ModbusGateway, clock: ManualClock) -> None:
        state = await gw.poll()
        assert state.fresh(Channel.SOC_PCT) is not None
        sims.inject("silent")
        clock.advance(config.device("battery").stale_after_s + 1)
        state = await gw.poll()
        reading = state.reading(Channel.SOC_PCT)
        assert reading is not None and reading.value is not None
        assert state.fresh(Channel.SOC_PCT) is None  # kept for display, not for decisions
        assert reading.age_s(state.at) >= timedelta(seconds=config.device("battery").stale_after_s).seconds

    asyncio.run(_gateway_run(config, body))
