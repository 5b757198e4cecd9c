"""Victron GX: the registers Sunbox polls, and the site channels they give.

On a GX, unit 100 answers for com.victronenergy.system and .settings; the VE.Bus inverter/
charger has its own unit (227 on current GX firmware, 246 on older). Values are
modbus = round(dbus x scale); decoding divides by the scale from the official list.
"""

from __future__ import annotations

from appliance.devices.codec import decode
from appliance.devices.registers import VICTRON_SYSTEM_UNIT, VictronPoint, victron_points
from appliance.state import Alarm, Channel, Severity

# Registers polled each cycle, per service: (first, last) inclusive ranges, chosen so that each
# range is one read of at most 125 registers.
SYSTEM_RANGE = (800, 860)  # serial, relays, PV on output, consumption, battery, DC PV, DC system
SETTINGS_RANGE = (2901, 2901)  # ESS minimum SoC (the reserve the GX itself keeps)
VEBUS_RANGE = (31, 64)  # state, error, mode, alarms

_ALARM_REGISTERS = tuple(range(34, 56))  # vebus /Alarms/*: 0 ok, 1 warning, 2 alarm


def points_in(first: int, last: int) -> list[VictronPoint]:
    pts = victron_points()
    return [pts[r] for r in range(first, last + 1) if r in pts]


def decode_registers(start: int, words: list[int]) -> dict[int, float | str | None]:
    """Scaled dbus values of the listed registers inside a block read at ``start``."""
    out: dict[int, float | str | None] = {}
    for p in points_in(start, start + len(words) - 1):
        seg = words[p.register - start : p.register - start + p.size]
        if len(seg) < p.size:
            continue
        raw = decode(seg, p.type, p.size)
        out[p.register] = raw if raw is None or isinstance(raw, str) else float(raw) / p.scale
    return out


def channels(values: dict[int, float | str | None], vebus_values: dict[int, float | str | None]
             ) -> tuple[dict[str, float], list[Alarm]]:
    out: dict[str, float] = {}
    alarms: list[Alarm] = []

    def num(reg: int, src: dict[int, float | str | None] = values) -> float | None:
        v = src.get(reg)
        return float(v) if isinstance(v, int | float) else None

    simple = {
        843: Channel.SOC_PCT, 840: Channel.BATTERY_VOLTAGE_V, 841: Channel.BATTERY_CURRENT_A,
        842: Channel.BATTERY_POWER_W, 2901: Channel.BATTERY_RESERVE_PCT,
    }
    for reg, channel in simple.items():
        if (v := num(reg)) is not None:
            out[channel.value] = v
    dc_pv = num(850)
    ac_pv = [v for r in (808, 809, 810) if (v := num(r)) is not None]
    if dc_pv is not None or ac_pv:
        out[Channel.PV_POWER_W.value] = (dc_pv or 0.0) + sum(ac_pv)
    load = [v for r in (817, 818, 819) if (v := num(r)) is not None]
    if load:
        out[Channel.AC_LOAD_POWER_W.value] = sum(load)
        out[Channel.INVERTER_POWER_W.value] = sum(load)
    if (state := num(31, vebus_values)) is not None:
        out[Channel.INVERTER_STATE.value] = state
        if state == 2:
            alarms.append(Alarm("victron.vebus", "FAULT", "VE.Bus state Fault"))
    if (err := num(32, vebus_values)) not in (None, 0.0):
        alarms.append(Alarm("victron.vebus", f"VEBUS_ERROR_{int(err or 0)}", f"VE.Bus error {int(err or 0)}"))
    pts = victron_points()
    for reg in _ALARM_REGISTERS:
        level = num(reg, vebus_values)
        if level in (1.0, 2.0):
            name = pts[reg].path.removeprefix("/Alarms/").replace("/", "_") if reg in pts else str(reg)
            sev = Severity.ALARM if level == 2.0 else Severity.WARNING
            alarms.append(Alarm("victron.vebus", name, f"VE.Bus {name} {'alarm' if level == 2 else 'warning'}", sev))
    return out, alarms


def writable_point(register: int) -> VictronPoint:
    pts = victron_points()
    if register not in pts:
        raise KeyError(f"Victron register {register} is not in the GX list")
    p = pts[register]
    if not p.writable:
        raise PermissionError(f"Victron register {register} ({p.service}{p.path}) is read-only")
    return p


def unit_for(point: VictronPoint, vebus_unit_id: int) -> int:
    """Which unit id answers for a register's service."""
    if point.service in ("system", "settings"):
        return VICTRON_SYSTEM_UNIT
    if point.service == "vebus":
        return vebus_unit_id
    raise KeyError(f"Sunbox does not address the Victron service {point.service!r}")
