"""SunSpec: discovery of the model chain, decoding of model blocks, and the site channels.

Discovery (SunSpec Device Information Model Specification): look for the "SunS" marker at
40000, then 0, then 50000; after it, models follow as (ID, L, L registers) until ID 0xFFFF.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from appliance.devices.codec import DecodeError, apply_scale, decode
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


def decode_model(model: ModelDef, words: list[int]) -> Decoded:
    """Scaled values of one model block (words start at its ID register).

    Repeating groups appear as ``group[i].Point``. A value whose scale factor is missing or
    implausible (|sf| > 10) is None: a wrong decimal point is worse than no value.
    """
    raw: dict[str, int | float | str | None] = {}
    sfs: dict[str, int | None] = {}

    def read_point(p: PointDef, base: int) -> int | float | str | None:
        seg = words[base + p.offset : base + p.offset + p.size]
        if len(seg) < p.size:
            return None
        return decode(seg, p.type, p.size)

    for p in model.points:
        value = read_point(p, 0)
        raw[p.name] = value
        if p.type == "sunssf":
            sfs[p.name] = value if isinstance(value, int) and -10 <= value <= 10 else None
    out: Decoded = {}

    def scaled(p: PointDef, value: int | float | str | None) -> float | int | str | None:
        if p.type in ("sunssf", "pad"):
            return value
        if isinstance(p.sf, str):
            return apply_scale(value, sfs.get(p.sf)) if sfs.get(p.sf) is not None else None
        if isinstance(p.sf, int):
            return apply_scale(value, p.sf)
        return value

    for p in model.points:
        out[p.name] = scaled(p, raw[p.name])
    if model.group is not None:
        length = len(words) - 2
        repeats = model.repeats_for_length(length)
        for i in range(repeats):
            base = model.fixed_size + i * model.group.size
            for p in model.group.points:
                out[f"{model.group.name}[{i}].{p.name}"] = scaled(p, read_point(p, base))
    return out


# --------------------------------------------------------------------------- channels

_INVERTER_MODELS = (101, 102, 103, 111, 112, 113)
_INVERTER_FAULT_STATE = 7
_INVERTER_ALARM_BITS = {"GROUND_FAULT", "DC_OVER_VOLT", "OVER_TEMP", "AC_OVER_VOLT", "BLOWN_STRING_FUSE",
                        "HW_TEST_FAILURE"}
_BATTERY_FAULT_STATE = 99


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
            out[channel.value] = float(value) * factor

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
            out[Channel.PV_POWER_W.value] = sum(valid)
        put(Channel.PV_VOLTAGE_V, m.get("module[0].DCV"))
        energies = [m.get(f"module[{i}].DCWH") for i in range(n)]
        if energies and all(isinstance(e, int | float) for e in energies):
            out[Channel.PV_ENERGY_WH.value] = float(sum(float(e) for e in energies if e is not None))
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
