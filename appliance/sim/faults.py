"""Faults the simulator can inject, per unit, from the command line, the Python API or over
Modbus (the service unit).

The codes are the values of the service unit's holding register 0, in this order:

====  ==========  ============================================================================
code  kind        what a client sees
====  ==========  ============================================================================
0     none        the device behaves
1     drop        connections closed and new ones refused (TCP endpoint; on RTU: silence)
2     silent      requests accepted, never answered (the client times out)
3     exception   every request answered with exception 4 (server device failure)
4     garbage     random register contents: sentinels, extremes, noise (layout headers kept)
5     frozen      values stop changing while time goes on
6     soc_range   SoC reads 180 %
7     alarm       inverter/BMS alarm bits set and state FAULT
====  ==========  ============================================================================
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from enum import IntEnum

from appliance.clock import Clock


class FaultKind(IntEnum):
    NONE = 0
    DROP = 1
    SILENT = 2
    EXCEPTION = 3
    GARBAGE = 4
    FROZEN = 5
    SOC_RANGE = 6
    ALARM = 7

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> FaultKind:
        """A fault by name ("soc_range") or code ("6")."""
        key = text.strip().lower().replace("-", "_")
        if key.isdigit() and int(key) in cls._value2member_map_:
            return cls(int(key))
        for kind in cls:
            if kind.label == key:
                return kind
        raise ValueError(f"unknown fault {text!r}; one of: {', '.join(FAULT_NAMES)}")


FAULT_NAMES = tuple(k.label for k in FaultKind if k is not FaultKind.NONE)


@dataclass
class _Active:
    kind: FaultKind
    until_s: float | None  # on the clock's monotonic timeline; None = until cleared


class FaultBoard:
    """Which fault each unit has now; timed faults clear themselves on the shared clock.

    Units are keyed by anything hashable (the simulator uses (endpoint, unit id)).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._active: dict[Hashable, _Active] = {}
        self.changes = 0  # bumped on every change, so endpoints know to re-check

    def set(
        self, units: Iterable[Hashable], kind: FaultKind, duration_s: float | None = None
    ) -> None:
        if duration_s is not None and duration_s <= 0:
            raise ValueError("a fault duration must be positive (or None: until cleared)")
        until = None if duration_s is None else self.clock.monotonic() + duration_s
        for unit in units:
            if kind is FaultKind.NONE:
                self._active.pop(unit, None)
            else:
                self._active[unit] = _Active(kind, until)
        self.changes += 1

    def clear(self, units: Iterable[Hashable] | None = None) -> None:
        if units is None:
            self._active.clear()
        else:
            for unit in units:
                self._active.pop(unit, None)
        self.changes += 1

    def get(self, unit: Hashable) -> FaultKind:
        active = self._active.get(unit)
        if active is None:
            return FaultKind.NONE
        if active.until_s is not None and self.clock.monotonic() >= active.until_s:
            del self._active[unit]
            self.changes += 1
            return FaultKind.NONE
        return active.kind

    def remaining_s(self, unit: Hashable) -> float | None:
        active = self._active.get(unit)
        if active is None or active.until_s is None:
            return None
        return max(0.0, active.until_s - self.clock.monotonic())

    def active(self) -> dict[Hashable, FaultKind]:
        """Unit -> fault, after expiring what is due."""
        return {u: k for u in list(self._active) if (k := self.get(u)) is not FaultKind.NONE}
