"""The simulator as a Modbus RTU device on one end of a socat virtual serial pair."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient
from pymodbus.framer import FramerType

from appliance.clock import ManualClock
from appliance.devices.registers import sunspec_model
from appliance.devices.sunspec import decode_model
from appliance.sim import build_simulators
from tests.sim_helpers import KISUMU_NOON, sim_config
from tests.system_packages import require


@pytest.fixture
def serial_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    socat = require("socat")
    a, b = tmp_path / "ttySIM", tmp_path / "ttyBOX"
    proc = subprocess.Popen(
        [socat, "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (a.exists() and b.exists()):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("socat did not create the serial pair")
        time.sleep(0.02)
    try:
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_rtu_server_answers_a_serial_client_and_faults_apply(serial_pair: tuple[str, str]) -> None:
    sim_end, box_end = serial_pair
    battery: dict[str, Any] = {
        "name": "battery",
        "role": "battery",
        "map": "sunspec",
        "transport": "rtu",
        "serial_port": "/dev/ttyUSB0",
        "baudrate": 19200,
        "unit_id": 2,
    }
    cfg = sim_config(
        1502, devices=[battery], heat={"enabled": False, "damper": None, "room_sensor": None}
    )

    async def scenario() -> None:
        clock = ManualClock(KISUMU_NOON)
        sims = build_simulators(
            cfg, clock, compute_power_w=lambda: 100.0, serial_ports={"/dev/ttyUSB0": sim_end}
        )
        clock.advance(60)
        async with sims:
            client = AsyncModbusSerialClient(
                box_end, framer=FramerType.RTU, baudrate=19200, timeout=0.5, retries=0
            )
            assert await client.connect()
            try:
                head = await client.read_holding_registers(40000, count=70, device_id=2)
                block = await client.read_holding_registers(40070, count=66, device_id=2)
                assert not head.isError() and not block.isError()
                assert head.registers[:2] == [0x5375, 0x6E53] and block.registers[:2] == [802, 62]
                decoded = decode_model(sunspec_model(802), list(block.registers))
                assert decoded["SoC"] == pytest.approx(sims.snapshot.soc_pct, abs=0.05)
                assert decoded["W"] == pytest.approx(sims.snapshot.battery_power_w, abs=0.5)
                # a unit nobody serves stays silent on a serial line
                with pytest.raises(Exception, match="No response"):
                    await client.read_holding_registers(40000, count=2, device_id=9)
                # writes over RTU reach the plant
                w = await client.write_register(
                    40070 + 10, 450, device_id=2
                )  # 802.SoCRsvMin, SoC_SF -1
                assert not w.isError() and sims.plant.reserve_pct == 45.0
                sims.inject("silent", "battery")
                with pytest.raises(Exception, match="No response"):
                    await client.read_holding_registers(40000, count=2, device_id=2)
                sims.inject("drop", "battery")  # on a serial line: silence too
                with pytest.raises(Exception, match="No response"):
                    await client.read_holding_registers(40000, count=2, device_id=2)
                sims.clear()
                await asyncio.sleep(0.1)  # let the line settle after the unanswered frames
                r = await client.read_holding_registers(40000, count=2, device_id=2)
                assert r.registers == [0x5375, 0x6E53]
            finally:
                client.close()

    asyncio.run(scenario())
