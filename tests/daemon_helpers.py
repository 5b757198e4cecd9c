"""A daemon for in-process tests of the running box: on the simulators, over real Modbus."""

from __future__ import annotations

from pathlib import Path

from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.daemon import Daemon
from appliance.devices.gateway import ModbusGateway
from appliance.store import Store
from appliance.workloads.simulated import SimulatedExecutor


async def settled_daemon(config: SunboxConfig, clock: ManualClock, store: Store, data_dir: Path,
                         cycles: int = 3) -> Daemon:
    """A daemon on the running simulators over Modbus, after a few control cycles (2 s apart) have
    read every device: fresh state to plan and route on. Close its gateway when done."""
    daemon = Daemon(config, store, clock, ModbusGateway(config, clock), SimulatedExecutor(clock), data_dir)
    for _ in range(cycles):
        clock.advance(2)
        await daemon.control_once()
    return daemon
