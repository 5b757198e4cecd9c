"""The simulated world the box lives in: physics, and the devices that report on it.

Not part of the box: ``sunbox demo`` and the tests run it beside the daemon, which only ever
sees it through real Modbus (TCP on loopback, or RTU over a serial line).

outdoor / sky / battery / plant: deterministic physics (PV from pvlib, a LiFePO4 pack, loads,
    a room heated by the compute node), stepped explicitly; replay uses ``Plant`` directly.
image, image_sunspec, image_victron, image_generic: register images built from the official
    maps, refreshed from the plant, validating writes.
faults: what can go wrong, and its codes on the service unit.
world / units / server: pymodbus servers (its SimData/SimDevice API) over one shared plant.
"""

from appliance.sim.faults import FAULT_NAMES, FaultKind
from appliance.sim.image import SimBuildError
from appliance.sim.plant import EnergyCounters, Plant, PlantSnapshot
from appliance.sim.server import SimulatorSet, build_simulators, standalone_config

__all__ = [
    "FAULT_NAMES",
    "EnergyCounters",
    "FaultKind",
    "Plant",
    "PlantSnapshot",
    "SimBuildError",
    "SimulatorSet",
    "build_simulators",
    "standalone_config",
]
