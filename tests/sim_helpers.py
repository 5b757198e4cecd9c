"""Shared helpers of the simulator tests: start simulators, read them like the box does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.devices.registers import sunspec_model
from appliance.devices.sunspec import Decoded, SunSpecLayout, decode_model, discover
from appliance.sim import SimulatorSet, build_simulators
from tests.conftest import free_port, make_config

KISUMU_NOON = datetime(2024, 3, 21, 9, 0, tzinfo=UTC)  # 12:00 local
KISUMU_NIGHT = datetime(2024, 3, 20, 21, 0, tzinfo=UTC)  # 00:00 local


class ModbusError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exception response {code}")
        self.code = code


def sim_config(port: int, **sections: Any) -> SunboxConfig:
    sim = {"measurement_noise": False, "tick_s": 0.05, **sections.pop("sim", {})}
    return make_config(port, sim=sim, **sections)


def reader(client: AsyncModbusTcpClient, unit: int) -> Callable[[int, int], Awaitable[list[int]]]:
    async def read(address: int, count: int) -> list[int]:
        r = await client.read_holding_registers(address, count=count, device_id=unit)
        if r.isError():
            raise ModbusError(int(getattr(r, "exception_code", 0)))
        return list(r.registers)

    return read


async def read_block(
    client: AsyncModbusTcpClient, unit: int, address: int, count: int
) -> list[int]:
    read = reader(client, unit)
    words: list[int] = []
    while count > 0:
        n = min(count, 125)
        words += await read(address, n)
        address += n
        count -= n
    return words


async def read_models(
    client: AsyncModbusTcpClient, unit: int
) -> tuple[SunSpecLayout, dict[int, Decoded]]:
    layout = await discover(reader(client, unit))
    models = {}
    for block in layout.blocks:
        words = await read_block(client, unit, block.address, block.length + 2)
        models[block.model_id] = decode_model(sunspec_model(block.model_id), words)
    return layout, models


async def write(client: AsyncModbusTcpClient, unit: int, address: int, values: list[int]) -> None:
    if len(values) == 1:
        r = await client.write_register(address, values[0], device_id=unit)
    else:
        r = await client.write_registers(address, values, device_id=unit)
    if r.isError():
        raise ModbusError(int(getattr(r, "exception_code", 0)))


async def running(
    config: SunboxConfig,
    body: Callable[[SimulatorSet, AsyncModbusTcpClient, ManualClock], Awaitable[None]],
    start: datetime = KISUMU_NOON,
    compute_w: float = 150.0,
) -> None:
    """Start the simulators of ``config`` on a manual clock, connect a client, run ``body``."""
    clock = ManualClock(start)
    sims = build_simulators(config, clock, compute_power_w=lambda: compute_w)
    clock.advance(60.0)  # so the first request steps the plant over a real interval
    port = config.devices[0].port
    async with sims:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
        assert await client.connect()
        try:
            await body(sims, client, clock)
        finally:
            client.close()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def port() -> int:
    return free_port()
