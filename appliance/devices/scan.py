"""Find Modbus devices on a TCP endpoint or an RS485 bus: SunSpec discovery and Victron GX.

Used by ``sunbox devices scan`` and the technician's TUI (with a progress callback). A scan
uses a short timeout per unit: absent units on a gateway answer "gateway target failed"
quickly; on a bare RS485 bus each absent unit costs one timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from appliance.devices import sunspec, victron
from appliance.devices.codec import decode
from appliance.devices.drivers import STATIC_MODELS
from appliance.devices.link import Endpoint, ModbusIOError, ModbusLink
from appliance.devices.readplan import coalesce, slice_words
from appliance.devices.registers import VICTRON_SYSTEM_UNIT, sunspec_model

Progress = Callable[[int, int, int], None]  # (done, total, unit_id just probed)

VICTRON_VEBUS_CANDIDATES = (227, 246, 242, 228)


@dataclass
class FoundDevice:
    unit_id: int
    kind: str  # sunspec | victron
    model_ids: list[int] = field(default_factory=list)
    identity: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    base_address: int | None = None
    vebus_unit_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "unit_id": self.unit_id, "kind": self.kind, "model_ids": self.model_ids,
            "identity": self.identity, "values": self.values, "base_address": self.base_address,
            "vebus_unit_id": self.vebus_unit_id,
        }


def parse_unit_ids(text: str) -> list[int]:
    """'1-10,100,247' -> [1..10, 100, 247]; raises ValueError with the offending part."""
    units: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"unit ids: {part!r} is not a number or range like 1-247") from None
        if not (0 <= a <= 255 and 0 <= b <= 255 and a <= b):
            raise ValueError(f"unit ids: {part!r} must lie within 0-255, low to high")
        units.update(range(a, b + 1))
    if not units:
        raise ValueError("unit ids: empty")
    return sorted(units)


async def probe_sunspec(link: ModbusLink, unit: int) -> FoundDevice | None:
    async def read(address: int, count: int) -> list[int]:
        return await link.read_holding(unit, address, count)

    try:
        layout = await sunspec.discover(read)
    except (sunspec.NotSunSpec, ModbusIOError):
        return None
    found = FoundDevice(unit_id=unit, kind="sunspec", model_ids=layout.model_ids(), base_address=layout.base)
    ranges = [(b.address, b.length + 2) for b in layout.blocks]
    words: dict[int, list[int]] = {}
    for start, count in coalesce(ranges, max_gap=0):
        words[start] = await link.read_holding(unit, start, count)
    models: dict[int, sunspec.Decoded] = {}
    for b in layout.blocks:
        block = slice_words(words, b.address, b.length + 2)
        try:
            model = sunspec_model(b.model_id)
        except KeyError:
            continue
        if block is not None:
            models[b.model_id] = sunspec.decode_model(model, block)
    if 1 in models:
        found.identity = sunspec.common_identity(models[1])
    dynamic = {k: v for k, v in models.items() if k not in STATIC_MODELS}
    found.values, _ = sunspec.channels(dynamic)
    return found


async def probe_victron(link: ModbusLink, vebus_candidates: Iterable[int]) -> FoundDevice | None:
    first, last = victron.SYSTEM_RANGE
    try:
        system_words = await link.read_holding(VICTRON_SYSTEM_UNIT, first, last - first + 1)
    except ModbusIOError:
        return None
    system = victron.decode_registers(first, system_words)
    try:
        system.update(victron.decode_registers(2901, await link.read_holding(VICTRON_SYSTEM_UNIT, 2901, 1)))
    except ModbusIOError:
        pass
    vebus: dict[int, float | str | None] = {}
    vebus_unit = None
    for unit in vebus_candidates:
        vfirst, vlast = victron.VEBUS_RANGE
        try:
            vebus = victron.decode_registers(vfirst, await link.read_holding(unit, vfirst, vlast - vfirst + 1))
            vebus_unit = unit
            break
        except ModbusIOError:
            continue
    values, _ = victron.channels(system, vebus)
    if "soc_pct" not in values and "battery_voltage_v" not in values:
        return None
    serial = decode(system_words[0:6], "string", 6)
    return FoundDevice(
        unit_id=VICTRON_SYSTEM_UNIT, kind="victron", identity={
            "manufacturer": "Victron Energy", "model": "GX", "serial": str(serial or ""), "version": ""},
        values=values, vebus_unit_id=vebus_unit, model_ids=[],
    )


async def scan(endpoint: Endpoint, unit_ids: list[int], *, timeout_s: float = 0.5,
               progress: Progress | None = None) -> list[FoundDevice]:
    """Probe every unit id for SunSpec; probe the Victron GX map if unit 100 is in range."""
    link = ModbusLink(endpoint, timeout_s)
    found: list[FoundDevice] = []
    try:
        total = len(unit_ids)
        for i, unit in enumerate(unit_ids):
            dev = await probe_sunspec(link, unit)
            if dev is None and unit == VICTRON_SYSTEM_UNIT:
                vebus = [u for u in VICTRON_VEBUS_CANDIDATES if u in unit_ids] or list(VICTRON_VEBUS_CANDIDATES)
                dev = await probe_victron(link, vebus)
            if dev is not None:
                found.append(dev)
            if progress is not None:
                progress(i + 1, total, unit)
    finally:
        link.close()
    return found
