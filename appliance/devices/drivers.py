"""Map families as drivers: what to read from a device and what it means.

A driver is pure bookkeeping: it says which register ranges to read (per unit id) and turns
the words into site channels, alarms and a raw point table for diagnostics. All I/O is in
the poller. SunSpec drivers learn their layout once by discovery.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from appliance.config import DeviceConfig
from appliance.devices import sunspec, victron
from appliance.devices.codec import DecodeError, decode
from appliance.devices.link import ModbusLink
from appliance.devices.readplan import coalesce, slice_words
from appliance.devices.registers import VICTRON_SYSTEM_UNIT, sunspec_model
from appliance.state import Alarm

# The common model (1) is static: read once at discovery, never polled.
STATIC_MODELS = {1}


RegisterKind = Literal["holding", "input", "coil"]


@dataclass(frozen=True)
class Read:
    kind: RegisterKind
    unit: int
    start: int
    count: int


# Words read in one poll: (kind, unit) -> {start address: words}; coils as 0/1 words.
Words = dict[tuple[str, int], dict[int, list[int]]]


Points = dict[str, float | int | str | None]


@dataclass
class Decoded:
    channels: dict[str, float] = field(default_factory=dict)
    alarms: list[Alarm] = field(default_factory=list)
    # the full point table (scaled), built only when diagnostics ask for it
    points_fn: Callable[[], Points] = field(default=dict)
    fingerprint: tuple[int, ...] = ()  # words of measurements, to detect frozen values


class Driver(ABC):
    """Base: ``prepare`` (discovery, once), ``reads`` (what to read), ``decode`` (what it means)."""

    identity: dict[str, str]

    def __init__(self, dev: DeviceConfig) -> None:
        self.dev = dev
        self.identity = {}
        self.prepared = False

    async def prepare(self, link: ModbusLink) -> None:
        self.prepared = True

    @abstractmethod
    def reads(self) -> list[Read]: ...

    @abstractmethod
    def decode(self, words: Words) -> Decoded: ...

    def model_ids(self) -> list[int]:
        return []


class SunSpecDriver(Driver):
    def __init__(self, dev: DeviceConfig) -> None:
        super().__init__(dev)
        self.layout: sunspec.SunSpecLayout | None = None
        self._blocks: list[sunspec.ModelBlock] = []
        self._reads: list[Read] = []

    async def prepare(self, link: ModbusLink) -> None:
        unit = self.dev.unit_id

        async def read(address: int, count: int) -> list[int]:
            return await link.read_holding(unit, address, count)

        layout = await sunspec.discover(read)
        common = layout.block(1)
        if common is not None:
            words = await link.read_holding(unit, common.address, common.length + 2)
            self.identity = sunspec.common_identity(sunspec.decode_model(sunspec_model(1), words))
        self.layout = layout
        self._blocks = self._polled_blocks()
        ranges = [(b.address, b.length + 2) for b in self._blocks]
        self._reads = [Read("holding", self.dev.unit_id, s, c) for s, c in coalesce(ranges, max_gap=0)]
        self.prepared = True

    def model_ids(self) -> list[int]:
        return self.layout.model_ids() if self.layout else []

    def _polled_blocks(self) -> list[sunspec.ModelBlock]:
        assert self.layout is not None
        out = []
        for b in self.layout.blocks:
            if b.model_id in STATIC_MODELS:
                continue
            try:
                sunspec_model(b.model_id)
            except KeyError:
                continue  # vendor model we have no definition for: not polled
            out.append(b)
        return out

    def reads(self) -> list[Read]:
        return self._reads

    def decode(self, words: Words) -> Decoded:
        unit_words = words.get(("holding", self.dev.unit_id), {})
        models: dict[int, sunspec.Decoded] = {}
        blocks: dict[int, list[int]] = {}
        out = Decoded()
        fp: list[int] = []
        for b in self._blocks:
            block = slice_words(unit_words, b.address, b.length + 2)
            if block is None:
                continue
            blocks[b.model_id] = block
            only = sunspec.CHANNEL_POINTS.get(b.model_id)
            if only is not None:
                try:
                    models[b.model_id] = sunspec.decode_model(sunspec_model(b.model_id), block, only)
                except DecodeError:
                    continue
            fp.extend(block[2:])
        out.channels, out.alarms = sunspec.channels(models, self.dev.battery_power_sign)
        out.fingerprint = tuple(fp)

        def table() -> Points:
            points: Points = {}
            for mid, block in blocks.items():
                try:
                    decoded = sunspec.decode_model(sunspec_model(mid), block)
                except DecodeError:
                    continue
                points.update({f"{mid}.{k}": v for k, v in decoded.items()})
            return points

        out.points_fn = table
        return out


class VictronDriver(Driver):
    async def prepare(self, link: ModbusLink) -> None:
        words = await link.read_holding(VICTRON_SYSTEM_UNIT, 800, 6)
        serial = decode(words, "string", 6)
        self.identity = {"manufacturer": "Victron Energy", "model": "GX", "serial": str(serial or ""), "version": ""}
        self.prepared = True

    def reads(self) -> list[Read]:
        return [
            Read("holding", unit, first, last - first + 1)
            for unit, (first, last) in (
                (VICTRON_SYSTEM_UNIT, victron.SYSTEM_RANGE),
                (VICTRON_SYSTEM_UNIT, victron.SETTINGS_RANGE),
                (self.dev.vebus_unit_id, victron.VEBUS_RANGE),
            )
        ]

    def decode(self, words: Words) -> Decoded:
        system: dict[int, float | str | None] = {}
        for start, w in words.get(("holding", VICTRON_SYSTEM_UNIT), {}).items():
            system.update(victron.decode_registers(start, w))
        vebus: dict[int, float | str | None] = {}
        for start, w in words.get(("holding", self.dev.vebus_unit_id), {}).items():
            vebus.update(victron.decode_registers(start, w))
        out = Decoded()
        out.channels, out.alarms = victron.channels(system, vebus)
        table: Points = {f"victron.{r}": v for r, v in {**system, **vebus}.items()}
        out.points_fn = lambda: table
        fp = []
        for unit in (VICTRON_SYSTEM_UNIT, self.dev.vebus_unit_id):
            blocks = words.get(("holding", unit), {})
            for start in sorted(blocks):
                # skip the static serial/relay part of the system block
                fp.extend(blocks[start][40:] if start == 800 else blocks[start])
        out.fingerprint = tuple(fp)
        return out


class GenericDriver(Driver):
    """Single registers named by channel, from the device config (sensors, dampers, relays)."""

    def reads(self) -> list[Read]:
        out: list[Read] = []
        for kind in ("holding", "input", "coil"):
            ranges = [(p.address, _size(p.type) if kind != "coil" else 1)
                      for p in self.dev.points.values() if p.kind == kind]
            out.extend(Read(kind, self.dev.unit_id, s, c) for s, c in coalesce(ranges))
        return out

    def decode(self, words: Words) -> Decoded:
        out = Decoded()
        table: Points = {}
        out.points_fn = lambda: table
        for name, p in self.dev.points.items():
            size = _size(p.type) if p.kind != "coil" else 1
            seg = slice_words(words.get((p.kind, self.dev.unit_id), {}), p.address, size)
            if seg is None:
                continue
            raw = decode(seg, p.type) if p.kind != "coil" else seg[0]
            value = None if raw is None or isinstance(raw, str) else float(raw) * p.scale
            table[name] = value
            if value is not None:
                out.channels[name] = value
            if not p.writable:
                out.fingerprint += tuple(seg)
        return out


def _size(type_name: str) -> int:
    return 2 if type_name in ("int32", "uint32", "float32") else 1


def driver_for(dev: DeviceConfig) -> Driver:
    if dev.map == "sunspec":
        return SunSpecDriver(dev)
    if dev.map == "victron":
        return VictronDriver(dev)
    return GenericDriver(dev)
