"""The box's gateway over Modbus RTU: a socat virtual serial pair, the simulator on one end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.devices.gateway import ModbusGateway
from appliance.sim import build_simulators
from appliance.state import Channel, WriteRequest
from tests.sim_helpers import KISUMU_NOON, sim_config
from tests.test_sim_rtu import serial_pair  # noqa: F401  (fixture)


def rtu_config(serial_port: str) -> SunboxConfig:
    devices: list[dict[str, Any]] = [
        {"name": "battery", "role": "battery", "map": "sunspec", "transport": "rtu",
         "serial_port": serial_port, "baudrate": 19200, "unit_id": 2,
         "limits": {"802.SoCRsvMin": {"min": 10, "max": 60}}},
        {"name": "inverter", "role": "inverter", "map": "sunspec", "transport": "rtu",
         "serial_port": serial_port, "baudrate": 19200, "unit_id": 1},
    ]
    return sim_config(1502, devices=devices, heat={"enabled": False, "damper": None, "room_sensor": None})


def test_gateway_polls_and_writes_over_rtu(serial_pair: tuple[str, str]) -> None:  # noqa: F811
    sim_end, box_end = serial_pair
    sim_cfg = rtu_config("/dev/ttyUSB0")
    box_cfg = rtu_config(box_end)

    async def scenario() -> None:
        clock = ManualClock(KISUMU_NOON)
        sims = build_simulators(sim_cfg, clock, compute_power_w=lambda: 120.0,
                                serial_ports={"/dev/ttyUSB0": sim_end})
        clock.advance(60)
        async with sims:
            gw = ModbusGateway(box_cfg, clock)
            try:
                assert len(gw.links) == 1  # two units share one RS485 bus
                state = await gw.poll()
                snap = sims.snapshot
                assert state.fresh(Channel.SOC_PCT) == pytest.approx(snap.soc_pct, abs=0.1)
                assert state.fresh(Channel.PV_POWER_W) == pytest.approx(snap.pv_power_w, abs=2)
                result = await gw.write(WriteRequest("battery", "802.SoCRsvMin", 40, "rtu test"))
                assert result.written and sims.plant.reserve_pct == pytest.approx(40)
                refused = await gw.write(WriteRequest("battery", "802.SoCRsvMin", 70, "rtu test"))
                assert not refused.written and sims.plant.reserve_pct == pytest.approx(40)
            finally:
                await gw.close()

    asyncio.run(scenario())


def test_scan_cli_over_serial(serial_pair: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    sim_end, box_end = serial_pair
    sim_cfg = rtu_config("/dev/ttyUSB0")
    import threading

    ready, stop_flag = threading.Event(), {}

    def serve() -> None:
        async def main() -> None:
            clock = ManualClock(KISUMU_NOON)
            sims = build_simulators(sim_cfg, clock, compute_power_w=lambda: 120.0,
                                    serial_ports={"/dev/ttyUSB0": sim_end})
            clock.advance(60)
            async with sims:
                stop_flag["loop"], stop_flag["ev"] = asyncio.get_running_loop(), asyncio.Event()
                ready.set()
                await stop_flag["ev"].wait()

        asyncio.run(main())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert ready.wait(20)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "devices", "scan", "--serial", box_end, "--baud", "19200",
             "--unit-ids", "1-3", "--timeout", "0.3"], capture_output=True, text=True, timeout=120)
    finally:
        stop_flag["loop"].call_soon_threadsafe(stop_flag["ev"].set)
        t.join(10)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("unit")]
    assert len(lines) == 2
    assert "models 1,101,160,124" in lines[0] and "models 1,802" in lines[1]
    assert "soc_pct=" in lines[1]
