"""Modbus units of the simulator: device units answering from a register image, and the
service unit through which faults and the compute load are switched over the wire.

Both plug into pymodbus's simulator API as a ``SimDevice`` whose async ``action`` runs on
every request: it refreshes the registers pymodbus is about to return from the plant, or
validates a write and applies it to the plant before pymodbus stores it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from appliance.sim.faults import FaultKind
from appliance.sim.image import RegisterImage, WriteRefused
from appliance.sim.plant import PlantSnapshot
from appliance.sim.world import SimWorld

READ_FUNCTIONS = frozenset({1, 2, 3, 4})
NO_OVERRIDE = 0xFFFF
SERVICE_REGISTERS = ("fault_code", "compute_override_w", "fault_duration_s", "fault_target_unit")
SERVICE_FAULT, SERVICE_OVERRIDE, SERVICE_DURATION, SERVICE_TARGET = range(4)


class DeviceUnit:
    """One unit id on an endpoint, answering from one register image."""

    def __init__(
        self,
        world: SimWorld,
        endpoint: str,
        unit_id: int,
        image: RegisterImage,
        devices: tuple[str, ...],
        kind: str,
        models: tuple[int, ...] = (),
    ) -> None:
        self.world = world
        self.endpoint = endpoint
        self.unit_id = unit_id
        self.image = image
        self.devices = devices
        self.kind = kind  # "sunspec", "victron-system", "victron-vebus", "generic"
        self.models = models
        self.key = (endpoint, unit_id)
        self.requests = 0
        self.writes: list[tuple[str, float]] = []  # accepted writes (point, raw first word)
        self._rendered: PlantSnapshot | None = None
        self._frozen: list[int] | None = None
        self._garbage_rng = random.Random(world.config.sim.seed * 7919 + unit_id)
        if world.config.sim.measurement_noise:
            image.noise_rng = random.Random(world.config.sim.seed * 104729 + unit_id)

    def sim_device(self) -> SimDevice:
        blocks = [
            SimData(address=addr, count=1, values=words, datatype=DataType.REGISTERS)
            for addr, words in self.image.runs()
        ]
        return SimDevice(id=self.unit_id, simdata=blocks, action=self.action)

    @property
    def fault(self) -> FaultKind:
        return self.world.faults.get(self.key)

    def refresh(self) -> None:
        """Bring the image up to the plant's latest snapshot (unless frozen)."""
        snap = self.world.advance()
        if self._frozen is None and snap is not self._rendered:
            self.image.render(snap)
            self._rendered = snap

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        fault = self.fault
        if fault in (FaultKind.SILENT, FaultKind.DROP):
            return ExcCodes.DEVICE_BUSY  # never sent: the endpoint swallows this unit's answers
        if fault is FaultKind.EXCEPTION:
            return ExcCodes.DEVICE_FAILURE
        if fault is FaultKind.FROZEN:
            if self._frozen is None:
                self._frozen = list(self.image.words)
        else:
            self._frozen = None
        self.refresh()
        shift = self.image.start - start_address
        if set_values is not None and function_code not in READ_FUNCTIONS:
            if any(isinstance(v, bool) for v in set_values):
                return ExcCodes.ILLEGAL_FUNCTION
            try:
                names = self.image.write(address, [int(v) for v in set_values])
            except WriteRefused as exc:
                return ExcCodes(exc.code)
            self.writes.extend((n, float(set_values[0])) for n in names)
            self._rendered = None
            self.refresh()
            return None
        self.image.copy_out(address, count, registers, shift, self._frozen)
        if fault is FaultKind.GARBAGE:
            self.image.garble(self._garbage_rng, address, count, registers, shift)
        elif fault is FaultKind.SOC_RANGE:
            self.image.overlay_soc(registers, shift)
        elif fault is FaultKind.ALARM:
            self.image.overlay_alarm(registers, shift)
        return None


class ServiceUnit:
    """Holding registers 0..3: fault code, compute override (W), fault duration (s), target unit.

    Writing register 0 applies the fault (codes in ``appliance.sim.faults``) to the target unit
    (0 = every device unit on this endpoint) for the duration (0 = until cleared). A ``drop``
    over the wire needs a duration: it closes this very connection, and nothing could clear it.
    Register 1 overrides what the compute node draws (0xFFFF = no override).
    """

    def __init__(
        self,
        world: SimWorld,
        endpoint: str,
        unit_id: int,
        device_units: Callable[[], list[int]],
        on_change: Callable[[], None],
    ) -> None:
        self.world = world
        self.endpoint = endpoint
        self.unit_id = unit_id
        self._device_units = device_units
        self._on_change = on_change
        self.duration_s = 0
        self.target = 0

    def sim_device(self) -> SimDevice:
        return SimDevice(
            id=self.unit_id,
            simdata=[
                SimData(
                    address=0, count=1, values=[0, NO_OVERRIDE, 0, 0], datatype=DataType.REGISTERS
                )
            ],
            action=self.action,
        )

    def _targets(self, target: int) -> list[int]:
        return self._device_units() if target == 0 else [target]

    def words(self) -> list[int]:
        units = self._targets(self.target)
        code = int(self.world.faults.get((self.endpoint, units[0]))) if units else 0
        override = self.world.compute_override_w
        return [
            code,
            NO_OVERRIDE if override is None else min(int(round(override)), NO_OVERRIDE - 1),
            self.duration_s,
            self.target,
        ]

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None and function_code not in READ_FUNCTIONS:
            if any(isinstance(v, bool) for v in set_values):
                return ExcCodes.ILLEGAL_FUNCTION
            new = self.words()
            for i, v in enumerate(set_values):
                new[address - start_address + i] = int(v)
            error = self._apply(new, written=range(address, address + len(set_values)))
            if error is not None:
                return error
            return None
        registers[0:4] = self.words()
        return None

    def _apply(self, new: list[int], written: range) -> ExcCodes | None:
        code, override, duration, target = new
        if SERVICE_FAULT in written and code not in FaultKind._value2member_map_:
            return ExcCodes.ILLEGAL_VALUE
        if target != 0 and target not in self._device_units():
            return ExcCodes.ILLEGAL_VALUE
        if SERVICE_FAULT in written and FaultKind(code) is FaultKind.DROP and duration == 0:
            return ExcCodes.ILLEGAL_VALUE
        self.duration_s, self.target = duration, target
        if SERVICE_OVERRIDE in written:
            self.world.compute_override_w = None if override == NO_OVERRIDE else float(override)
        if SERVICE_FAULT in written:
            keys = [(self.endpoint, u) for u in self._targets(target)]
            self.world.faults.set(keys, FaultKind(code), float(duration) if duration else None)
            self._on_change()
        return None
