"""A device's register image: words at addresses, and where each point's value comes from.

The layouts (SunSpec, Victron, generic) are built from the official maps in their own modules;
this one holds what they share: encoding values with their scale, refreshing measured values
from a plant snapshot, validating and applying writes, and the fault overlays.

A point is bound to the world in one of four ways: ``static`` (ratings, names, scale factors),
``get`` (a measured value from the snapshot), ``setter`` (a setpoint the plant holds: the write
goes to the plant and the register reads the plant back), or ``held`` (a writable register the
plant does not model: the device keeps what was written, inside its allowed values).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from appliance.devices.codec import DecodeError, Value, decode, encode, word_count
from appliance.sim.plant import PlantSnapshot

Getter = Callable[[PlantSnapshot], Value]
Allowed = tuple[float, float] | frozenset[int]

SOC_OUT_OF_RANGE_PCT = 180.0

# pymodbus exception codes, by number (kept here so images do not depend on the server).
ILLEGAL_ADDRESS = 2
ILLEGAL_VALUE = 3


class SimBuildError(ValueError):
    """The simulator cannot serve what the configuration asks for (a config mistake)."""


class WriteRefused(Exception):
    """A write the device refuses; ``code`` is the Modbus exception code it answers with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Bind:
    """How one point gets its value (see the module docstring)."""

    get: Getter | None = None
    static: Value = None
    setter: Callable[[float], None] | None = None
    held: bool = False
    on_write: Callable[[float], None] | None = None  # side effect of a held write
    allowed: Allowed | None = None
    noise: float = 0.0  # relative standard deviation of the reading
    magnitude: float | None = None  # largest |value| expected (chooses scale factors)
    soc: bool = False  # shows SoC: the soc_range fault makes it absurd
    alarm: int | None = None  # value under the alarm fault


@dataclass
class Slot:
    """One point placed in an image: raw register = value x factor."""

    name: str
    offset: int  # index of its first word in the image
    type: str
    size: int
    factor: float
    writable: bool
    bind: Bind
    held_value: Value = None

    def encode(self, value: Value) -> list[int]:
        if value is None or isinstance(value, str) or self.type in ("string", "pad"):
            return encode(value, self.type, self.size)
        if self.type in ("float32", "float64"):
            return encode(float(value) * self.factor, self.type, self.size)
        raw = round(float(value) * self.factor)
        return encode(_clamp(raw, self.type), self.type, self.size)

    def decode(self, words: list[int]) -> Value:
        raw = decode(words, self.type, self.size)
        if raw is None or isinstance(raw, str):
            return raw
        return float(raw) / self.factor


def _clamp(raw: int, type_name: str) -> int:
    """Saturate into the type's range, never onto its not-implemented sentinel."""
    bits = 16 * word_count(type_name)
    if type_name in ("int16", "int32", "int64", "sunssf"):
        lo, hi = -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
    elif type_name.startswith("acc"):
        lo, hi = 0, (1 << bits) - 1
        return raw % (1 << bits) if raw >= 0 else 0
    else:
        lo, hi = 0, (1 << bits) - 2
    return min(max(raw, lo), hi)


@dataclass
class RegisterImage:
    """Words from ``start``; ``served`` marks addresses the device answers for."""

    label: str
    start: int
    words: list[int]
    served: list[bool]
    slots: list[Slot] = field(default_factory=list)
    structural: set[int] = field(default_factory=set)  # offsets garbage leaves alone
    noise_rng: random.Random | None = None
    _owner: list[int] = field(default_factory=list)
    _dynamic: list[Slot] = field(default_factory=list)

    @classmethod
    def empty(cls, label: str, start: int, end: int) -> RegisterImage:
        """An image of ``start``..``end`` inclusive, nothing served yet."""
        span = end - start + 1
        return cls(label=label, start=start, words=[0] * span, served=[False] * span)

    @property
    def end(self) -> int:
        return self.start + len(self.words) - 1

    def serve(self, address: int, count: int) -> None:
        for a in range(address - self.start, address - self.start + count):
            self.served[a] = True

    def place(self, slot: Slot) -> None:
        """Add a point; its initial words come from its static/held value."""
        if slot.bind.setter is not None and slot.bind.allowed is None:
            raise SimBuildError(f"{self.label}: setpoint {slot.name} needs its allowed range")
        self.slots.append(slot)
        self.serve(self.start + slot.offset, slot.size)
        if slot.bind.held:
            slot.held_value = slot.bind.static
        if slot.bind.get is None:
            self._put(slot, slot.bind.static if not slot.bind.held else slot.held_value)

    def finish(self) -> None:
        """Index the slots (call once after the last ``place``)."""
        self._owner = [-1] * len(self.words)
        for i, slot in enumerate(self.slots):
            for k in range(slot.offset, slot.offset + slot.size):
                if self._owner[k] != -1:
                    raise SimBuildError(
                        f"{self.label}: {slot.name} overlaps {self.slots[self._owner[k]].name}"
                    )
                self._owner[k] = i
        self._dynamic = [s for s in self.slots if s.bind.get is not None]

    def runs(self) -> Iterator[tuple[int, list[int]]]:
        """Contiguous served ranges as (address, words), for the server's register blocks."""
        i, n = 0, len(self.words)
        while i < n:
            if not self.served[i]:
                i += 1
                continue
            j = i
            while j < n and self.served[j]:
                j += 1
            yield self.start + i, self.words[i:j]
            i = j

    # ------------------------------------------------------------------ values

    def _put(self, slot: Slot, value: Value) -> None:
        self.words[slot.offset : slot.offset + slot.size] = slot.encode(value)

    def render(self, snap: PlantSnapshot) -> None:
        """Refresh every measured value and setpoint read-back from ``snap``."""
        rng = self.noise_rng
        for slot in self._dynamic:
            assert slot.bind.get is not None
            value = slot.bind.get(snap)
            if rng is not None and slot.bind.noise and isinstance(value, int | float) and value:
                value = float(value) * (1.0 + rng.gauss(0.0, slot.bind.noise))
            self._put(slot, value)

    def value(self, name: str) -> Value:
        """Decoded value of a point as the image holds it now (tests, status lines)."""
        slot = self.slot(name)
        return slot.decode(self.words[slot.offset : slot.offset + slot.size])

    def slot(self, name: str) -> Slot:
        for s in self.slots:
            if s.name == name:
                return s
        raise KeyError(f"{self.label} has no point {name!r}")

    # ------------------------------------------------------------------ writes

    def write(self, address: int, values: list[int]) -> list[str]:
        """Validate and apply a write of ``values`` at ``address``; all or nothing.

        Returns the names of the points written. Raises WriteRefused with the Modbus exception
        code a careful device would answer: ILLEGAL_ADDRESS for registers that are not points,
        read-only, not implemented or only partly covered; ILLEGAL_VALUE for values outside
        what the point allows.
        """
        first = address - self.start
        last = first + len(values) - 1
        if first < 0 or last >= len(self.words):
            raise WriteRefused(
                ILLEGAL_ADDRESS, f"{self.label}: {address}+{len(values)} outside the map"
            )
        todo: list[tuple[Slot, float]] = []
        k = first
        while k <= last:
            idx = self._owner[k]
            if idx < 0:
                raise WriteRefused(
                    ILLEGAL_ADDRESS, f"{self.label}: register {self.start + k} is not a point"
                )
            slot = self.slots[idx]
            if slot.offset < first or slot.offset + slot.size - 1 > last:
                raise WriteRefused(
                    ILLEGAL_ADDRESS, f"{self.label}: write covers part of {slot.name}"
                )
            if not slot.writable:
                raise WriteRefused(ILLEGAL_ADDRESS, f"{self.label}: {slot.name} is read-only")
            if slot.bind.setter is None and not slot.bind.held:
                raise WriteRefused(ILLEGAL_ADDRESS, f"{self.label}: {slot.name} is not implemented")
            words = values[slot.offset - first : slot.offset - first + slot.size]
            try:
                value = slot.decode(words)
            except DecodeError as exc:
                raise WriteRefused(ILLEGAL_VALUE, f"{self.label}: {slot.name}: {exc}") from None
            if not isinstance(value, float):
                raise WriteRefused(ILLEGAL_VALUE, f"{self.label}: {slot.name}: not a number")
            _check_allowed(self.label, slot, value)
            todo.append((slot, value))
            k = slot.offset + slot.size
        for slot, value in todo:
            if slot.bind.setter is not None:
                try:
                    slot.bind.setter(value)
                except ValueError as exc:  # ranges are checked above; the plant has the last word
                    raise WriteRefused(ILLEGAL_VALUE, f"{self.label}: {slot.name}: {exc}") from None
            else:
                slot.held_value = int(value) if float(value).is_integer() else value
                if slot.bind.on_write is not None:
                    slot.bind.on_write(value)
                self._put(slot, slot.held_value)
        return [slot.name for slot, _ in todo]

    # ------------------------------------------------------------------ output and fault overlays
    # ``out`` is the server's register list; out[k + shift] holds image word k.

    def copy_out(
        self, first: int, count: int, out: list[int], shift: int, words: list[int] | None = None
    ) -> None:
        """Copy addresses first..first+count-1 of ``words`` (default: the live image) to ``out``."""
        src = self.words if words is None else words
        lo = max(first - self.start, 0)
        hi = min(first - self.start + count, len(src))
        out[lo + shift : hi + shift] = src[lo:hi]

    def overlay_soc(self, out: list[int], shift: int) -> None:
        for slot in self.slots:
            if slot.bind.soc:
                out[slot.offset + shift : slot.offset + shift + slot.size] = slot.encode(
                    SOC_OUT_OF_RANGE_PCT
                )

    def overlay_alarm(self, out: list[int], shift: int) -> None:
        for slot in self.slots:
            if slot.bind.alarm is not None:
                out[slot.offset + shift : slot.offset + shift + slot.size] = slot.encode(
                    slot.bind.alarm
                )

    def garble(
        self, rng: random.Random, first: int, count: int, out: list[int], shift: int
    ) -> None:
        """Random words (sentinels, extremes, noise) for addresses first..+count, layout kept."""
        choices = (0x8000, 0xFFFF, 0x7FFF, 0x0000, 0x8001)
        for a in range(first, first + count):
            k = a - self.start
            if k < 0 or k >= len(self.words) or k in self.structural:
                continue
            out[k + shift] = rng.choice(choices) if rng.random() < 0.3 else rng.randrange(0x10000)


def _check_allowed(label: str, slot: Slot, value: float) -> None:
    allowed = slot.bind.allowed
    if allowed is None:
        return
    if isinstance(allowed, frozenset):
        if not (float(value).is_integer() and int(value) in allowed):
            raise WriteRefused(
                ILLEGAL_VALUE, f"{label}: {slot.name} = {value:g} is not one of {sorted(allowed)}"
            )
    elif not allowed[0] <= value <= allowed[1]:
        raise WriteRefused(
            ILLEGAL_VALUE,
            f"{label}: {slot.name} = {value:g} outside {allowed[0]:g}..{allowed[1]:g}",
        )
