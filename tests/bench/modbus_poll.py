"""Benchmark: Modbus requests per full SunSpec poll, and poll time vs raw pymodbus.

One simulated SunSpec hybrid inverter serving models 1, 101, 160, 124 and 802 on 127.0.0.1.
Measures, in the same run and alternating to share the machine's noise:
- requests per full poll of the map by the box's poller (goal <= 3),
- time per poll (read + decode + channels + staleness) as a ratio to raw pymodbus reading the
  same register blocks with no decoding (goal <= 1.3x).
Prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pymodbus.client import AsyncModbusTcpClient  # noqa: E402

from appliance.clock import ManualClock  # noqa: E402
from appliance.devices.gateway import ModbusGateway  # noqa: E402
from appliance.sim import build_simulators  # noqa: E402
from tests.conftest import free_port, make_config  # noqa: E402
from tests.sim_helpers import KISUMU_NOON  # noqa: E402

POLLS = 400


async def main() -> dict[str, object]:
    port = free_port()
    config = make_config(
        port,
        devices=[{"name": "hybrid", "role": "battery", "host": "127.0.0.1", "port": port, "unit_id": 1,
                  "map": "sunspec", "poll_interval_s": 0.001}],
        heat={"enabled": False, "damper": None, "room_sensor": None},
        sim={"models": {"hybrid": [1, 101, 160, 124, 802]}, "measurement_noise": True, "tick_s": 1.0},
    )
    clock = ManualClock(KISUMU_NOON)
    sims = build_simulators(config, clock, compute_power_w=lambda: 150.0)
    async with sims:
        gw = ModbusGateway(config, clock)
        await gw.poll()  # discovery
        poller = gw.pollers["hybrid"]
        reads = [(r.start, r.count) for r in poller.driver.reads()]
        raw = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
        await raw.connect()
        ours: list[float] = []
        bare: list[float] = []
        requests: list[int] = []
        # The clock moves 10 ms per round (the poller is due every round with its 1 ms poll
        # interval); whoever goes first pays the simulator's physics step, so order alternates.
        for i in range(POLLS):
            clock.advance(0.01)
            for side in ((0, 1) if i % 2 else (1, 0)):
                if side == 0:
                    before = gw.requests()
                    t0 = time.perf_counter()
                    await gw.poll()
                    ours.append(time.perf_counter() - t0)
                    requests.append(gw.requests() - before)
                else:
                    t0 = time.perf_counter()
                    for start, count in reads:
                        rr = await raw.read_holding_registers(start, count=count, device_id=1)
                        assert not rr.isError()
                    bare.append(time.perf_counter() - t0)
        raw.close()
        await gw.close()
    mapped = sum(c for _, c in reads)
    return {
        "models": poller.snapshot.model_ids,
        "registers_per_poll": mapped,
        "requests_per_poll": statistics.median(requests),
        "requests_per_poll_goal": 3,
        "poll_ms_median": round(statistics.median(ours) * 1000, 3),
        "raw_pymodbus_ms_median": round(statistics.median(bare) * 1000, 3),
        "ratio_to_raw": round(statistics.median(ours) / statistics.median(bare), 3),
        "ratio_goal": 1.3,
        "polls": POLLS,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
