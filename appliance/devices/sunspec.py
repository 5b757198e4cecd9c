"""SunSpec: discovery of the model chain, decoding of model blocks, and the site channels.

Discovery (SunSpec Device Information Model Specification): look for the "SunS" marker at
40000, then 0, then 50000; after it, models follow as (ID, L, L registers) until ID 0xFFFF.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache

from appliance.devices.codec import DecodeError, decode
from appliance.devices.registers import ModelDef, PointDef, sunspec_model
from appliance.state import Alarm, Channel, Severity

SUNS_MARKER = (0x5375, 0x6E53)  # "SunS"
BASE_ADDRESSES = (40000, 0, 50000)
END_MODEL_ID = 0xFFFF
MAX_READ = 125
MAX_MODELS = 64

Reader = Callable[[int, int], Awaitable[list[int]]]
"""Reads ``count`` holding registers at ``address`` of one unit; raises on failure."""

Decoded = dict[str, float | int | str | None]


@dataclass(frozen=True)
class ModelBlock:
    """Where one model sits on a device."""

    model_id: int
    address: int  # address of its ID register
    length: int  # its L value

    @property
    def end(self) -> int:
        return self.address + 2 + self.length


@dataclass(frozen=True)
class SunSpecLayout:
    base: int
    blocks: tuple[ModelBlock, ...]

    def model_ids(self) -> list[int]:
        return [b.model_id for b in self.blocks]

    def block(self, model_id: int) -> ModelBlock | None:
        return next((b for b in self.blocks if b.model_id == model_id), None)


class NotSunSpec(Exception):
    """No SunSpec marker at any base address."""


async def discover(read: Reader) -> SunSpecLayout:
    """Find the model chain with as few requests as the chain allows (windows of 125)."""
    for base in BASE_ADDRESSES:
        try:
            head = await read(base, 2)
        except Exception:  # noqa: BLE001 - an exception response at one base: try the next
            continue
        if tuple(head) == SUNS_MARKER:
            return SunSpecLayout(base=base, blocks=tuple(await _walk_chain(read, base + 2)))
    raise NotSunSpec("no 'SunS' marker at 40000, 0 or 50000")


async def _window(read: Reader, address: int) -> list[int]:
    """A read of up to 125 registers at ``address``; strict devices refuse reads that run past
    their last register (after the end marker), so fall back to the 2-register header."""
    try:
        return await read(address, MAX_READ)
    except Exception:  # noqa: BLE001 - any refusal: the header read below decides
        return await read(address, 2)


async def _walk_chain(read: Reader, start: int) -> list[ModelBlock]:
    blocks: list[ModelBlock] = []
    window_start, window = start, await _window(read, start)
    addr = start
    for _ in range(MAX_MODELS):
        if not window_start <= addr <= window_start + len(window) - 2:
            window_start, window = addr, await _window(read, addr)
        model_id, length = window[addr - window_start], window[addr - window_start + 1]
        if model_id == END_MODEL_ID:
            return blocks
        blocks.append(ModelBlock(model_id=model_id, address=addr, length=length))
        addr += 2 + length
    raise DecodeError("SunSpec chain does not end within 64 models")


def decode_model(model: ModelDef, words: list[int], only: frozenset[str] | None = None) -> Decoded:
    """Scaled values of one model block (words start at its ID register).

    Repeating groups appear as ``group[i].Point``. A value whose scale factor is missing or
    implausible (|sf| > 10) is None: a wrong decimal point is worse than no value. ``only``
    limits decoding to the named points (group points by bare name): the poll's hot path
    decodes what the channels need and leaves the full table to diagnostics.
    """
    fixed, group, sf_pts = _decode_plan(model.id, only)
    n_words = len(words)
    sfs: dict[str, int | None] = {}
    for name, off in sf_pts:
        w = words[off] if off < n_words else 0x8000
        v = w - 0x10000 if w >= 0x8000 else w
        sfs[name] = v if w != 0x8000 and -10 <= v <= 10 else None
    out: Decoded = {}
    _decode_points(fixed, words, 0, n_words, sfs, out, "")
    if group:
        assert model.group is not None
        for i in range(model.repeats_for_length(n_words - 2)):
            _decode_points(group, words, model.fixed_size + i * model.group.size, n_words, sfs, out,
                           f"{model.group.name}[{i}].")
    return out


# (name, offset, size, type, sentinel of a one-word type or -1, signed, sf name or fixed sf or None)
_Step = tuple[str, int, int, str, int, bool, str | int | None]
_ONE_WORD_SENTINEL = {"int16": 0x8000, "uint16": 0xFFFF, "count": 0xFFFF, "enum16": 0xFFFF,
                      "bitfield16": 0xFFFF, "sunssf": 0x8000, "acc16": -1, "raw16": -1}


def _decode_points(steps: tuple[_Step, ...], words: list[int], base: int, n_words: int,
                   sfs: dict[str, int | None], out: Decoded, prefix: str) -> None:
    """The hot loop: one-word types inline, the rest through the generic codec."""
    for name, off, size, typ, sentinel, signed, sf in steps:
        start = base + off
        if start + size > n_words:
            out[prefix + name] = None
            continue
        value: float | int | str | None
        if sentinel != -2:
            w = words[start]
            if w == sentinel:
                out[prefix + name] = None
                continue
            value = w - 0x10000 if signed and w >= 0x8000 else w
        else:
            value = decode(words[start : start + size], typ, size)
            if value is None or isinstance(value, str) or typ == "pad":
                out[prefix + name] = value
                continue
        if sf is None:
            out[prefix + name] = value
        elif isinstance(sf, int):
            out[prefix + name] = value * 10.0**sf
        else:
            factor = sfs.get(sf)
            out[prefix + name] = None if factor is None else value * 10.0**factor


def _steps(points: tuple[PointDef, ...]) -> tuple[_Step, ...]:
    out = []
    for p in points:
        one_word = p.size == 1 and p.type in _ONE_WORD_SENTINEL
        sentinel = _ONE_WORD_SENTINEL[p.type] if one_word else -2
        sf: str | int | None = None if p.type in ("sunssf", "pad") else p.sf
        out.append((p.name, p.offset, p.size, p.type, sentinel, p.type in ("int16", "sunssf"), sf))
    return tuple(out)


@cache
def _decode_plan(model_id: int, only: frozenset[str] | None
                 ) -> tuple[tuple[_Step, ...], tuple[_Step, ...], tuple[tuple[str, int], ...]]:
    """Which fixed points, group points and scale factors to decode (computed once per model)."""
    model = sunspec_model(model_id)
    fixed = tuple(p for p in model.points if only is None or p.name in only)
    group = tuple(p for p in model.group.points if only is None or p.name in only) if model.group else ()
    wanted_sfs = {p.sf for p in (*fixed, *group) if isinstance(p.sf, str)}
    sf_pts = tuple((p.name, p.offset) for p in model.points
                   if p.type == "sunssf" and (only is None or p.name in wanted_sfs))
    return _steps(fixed), _steps(group), sf_pts


# --------------------------------------------------------------------------- channels

_INVERTER_MODELS = (101, 102, 103, 111, 112, 113)
_INVERTER_FAULT_STATE = 7
_INVERTER_ALARM_BITS = {"GROUND_FAULT", "DC_OVER_VOLT", "OVER_TEMP", "AC_OVER_VOLT", "BLOWN_STRING_FUSE",
                        "HW_TEST_FAILURE"}
_BATTERY_FAULT_STATE = 99

# The points ``channels`` reads, per model: all the poll's hot path decodes.
CHANNEL_POINTS: dict[int, frozenset[str]] = {
    **{mid: frozenset({"W", "TmpCab", "St", "Evt1", "WH"}) for mid in _INVERTER_MODELS},
    160: frozenset({"N", "DCW", "DCV", "DCWH"}),
    124: frozenset({"ChaState", "MinRsvPct", "InBatV"}),
    802: frozenset({"SoC", "W", "A", "V", "SoH", "SoCRsvMin", "WChaRteMax", "WDisChaRteMax", "State", "Evt1"}),
}


def _bits(model_id: int, point: str, value: float | int | str | None) -> list[str]:
    if not isinstance(value, int) or value == 0:
        return []
    symbols = sunspec_model(model_id).point(point).symbols
    return [symbols.get(bit, f"BIT{bit}") for bit in range(32) if value >> bit & 1]


def channels(models: dict[int, Decoded], battery_power_sign: int = 1) -> tuple[dict[str, float], list[Alarm]]:
    """Site channels and alarms from decoded models, by model id."""
    out: dict[str, float] = {}
    alarms: list[Alarm] = []

    def put(channel: Channel, value: float | int | str | None, factor: float = 1.0) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[channel] = float(value) * factor

    for mid in _INVERTER_MODELS:
        m = models.get(mid)
        if m is None:
            continue
        put(Channel.INVERTER_POWER_W, m.get("W"))
        put(Channel.AC_LOAD_POWER_W, m.get("W"))
        put(Channel.INVERTER_TEMP_C, m.get("TmpCab"))
        put(Channel.INVERTER_STATE, m.get("St"))
        put(Channel.AC_ENERGY_WH, m.get("WH"))
        if m.get("St") == _INVERTER_FAULT_STATE:
            alarms.append(Alarm(f"sunspec.{mid}", "FAULT", "inverter reports state FAULT"))
        for name in _bits(mid, "Evt1", m.get("Evt1")):
            sev = Severity.ALARM if name in _INVERTER_ALARM_BITS else Severity.WARNING
            alarms.append(Alarm(f"sunspec.{mid}", name, f"inverter event {name}", sev))
        break
    if (m := models.get(160)) is not None:
        count = m.get("N")
        n = min(count, MAX_MODELS) if isinstance(count, int) and count > 0 else 0
        powers = [m.get(f"module[{i}].DCW") for i in range(n)]
        valid = [float(p) for p in powers if isinstance(p, int | float)]
        if valid:
            out[Channel.PV_POWER_W] = sum(valid)
        put(Channel.PV_VOLTAGE_V, m.get("module[0].DCV"))
        energies = [m.get(f"module[{i}].DCWH") for i in range(n)]
        if energies and all(isinstance(e, int | float) for e in energies):
            out[Channel.PV_ENERGY_WH] = float(sum(float(e) for e in energies if e is not None))
    if (m := models.get(124)) is not None:
        put(Channel.SOC_PCT, m.get("ChaState"))
        put(Channel.BATTERY_RESERVE_PCT, m.get("MinRsvPct"))
        put(Channel.BATTERY_VOLTAGE_V, m.get("InBatV"))
    if (m := models.get(802)) is not None:
        put(Channel.SOC_PCT, m.get("SoC"))
        put(Channel.BATTERY_POWER_W, m.get("W"), battery_power_sign)
        put(Channel.BATTERY_CURRENT_A, m.get("A"), battery_power_sign)
        put(Channel.BATTERY_VOLTAGE_V, m.get("V"))
        put(Channel.BATTERY_SOH_PCT, m.get("SoH"))
        put(Channel.BATTERY_RESERVE_PCT, m.get("SoCRsvMin"))
        put(Channel.BATTERY_CHARGE_MAX_W, m.get("WChaRteMax"))
        put(Channel.BATTERY_DISCHARGE_MAX_W, m.get("WDisChaRteMax"))
        if m.get("State") == _BATTERY_FAULT_STATE:
            alarms.append(Alarm("sunspec.802", "FAULT", "battery reports state FAULT"))
        for name in _bits(802, "Evt1", m.get("Evt1")):
            if name.endswith("_WARNING") or name == "COMMUNICATION_ERROR":
                alarms.append(Alarm("sunspec.802", name, f"battery warning {name}", Severity.WARNING))
            else:
                alarms.append(Alarm("sunspec.802", name, f"battery alarm {name}"))
    return out, alarms


def common_identity(decoded: Decoded) -> dict[str, str]:
    """Manufacturer, model, version and serial from model 1."""
    return {k: str(decoded.get(src) or "") for k, src in
            (("manufacturer", "Mn"), ("model", "Md"), ("version", "Vr"), ("serial", "SN"))}


def writable_point(model_id: int, point: str) -> PointDef:
    """The point definition if the official model marks it RW; KeyError/PermissionError otherwise."""
    p = sunspec_model(model_id).point(point)
    if not p.writable:
        raise PermissionError(f"SunSpec {model_id}.{point} is read-only in the model definition")
    return p
