"""Victron GX register images built from the official GX register list (attributes.csv).

A GX answers on unit 100 for com.victronenergy.system and .settings, and on its own unit for
the VE.Bus inverter/charger (227 on current firmware). Registers are modbus = round(value x
scale) with the scale from the list. Reserved and internal registers inside a served range
read 0 (as on a real GX, so a client can fetch a whole block in one request).
"""

from __future__ import annotations

import csv
import re
from functools import cache

from appliance.devices.registers import VictronPoint, victron_points
from appliance.paths import field_data_dir
from appliance.sim.context import DeviceContext
from appliance.sim.image import Allowed, Bind, RegisterImage, Slot
from appliance.sim.plant import PlantSnapshot

# Which registers each unit serves (first, last) inclusive; everything inside comes from the list.
SYSTEM_RANGES: tuple[tuple[int, int], ...] = ((800, 860), (2700, 2710), (2900, 2902))
VEBUS_RANGES: tuple[tuple[int, int], ...] = ((3, 70),)
SYSTEM_SERVICES = ("system", "settings", "hub4")

_VEBUS_INVERTING, _VEBUS_OFF, _VEBUS_FAULT = 9, 0, 2
_MODE_ON = 3
_NOT_CONNECTED = 240


@cache
def reserved_registers() -> frozenset[int]:
    """Registers the list marks reserved or internal (readable as 0, not points)."""
    path = field_data_dir() / "modbus" / "victron" / "attributes.csv"
    out: set[int] = set()
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) < 8:
                continue
            m = re.fullmatch(r"(\w+)\[(\d+)\]", row[5])
            if m and m.group(1) != "string":
                out.update(range(int(row[4]), int(row[4]) + int(m.group(2))))
    return frozenset(out)


def allowed_from_unit(point: VictronPoint) -> Allowed | None:
    """Enumerations in the list ("0=Open;1=Closed") and percentages bound what may be written."""
    codes = re.findall(r"(?:^|;)\s*(-?\d+)=", point.unit)
    if codes:
        return frozenset(int(c) for c in codes)
    if point.unit.strip() == "%":
        return (0.0, 100.0)
    return None


def build_system_image(ctx: DeviceContext, unit_label: str) -> RegisterImage:
    """Unit 100: system (battery, PV, consumption) and settings (ESS minimum SoC)."""
    return _build(ctx, unit_label, SYSTEM_RANGES, SYSTEM_SERVICES, _system_bindings(ctx))


def build_vebus_image(ctx: DeviceContext, unit_label: str) -> RegisterImage:
    """The VE.Bus inverter/charger: AC output, DC side, state, mode, alarms."""
    return _build(ctx, unit_label, VEBUS_RANGES, ("vebus",), _vebus_bindings(ctx))


def _build(
    ctx: DeviceContext,
    label: str,
    ranges: tuple[tuple[int, int], ...],
    services: tuple[str, ...],
    binds: dict[int, Bind],
) -> RegisterImage:
    points = victron_points()
    reserved = reserved_registers()
    image = RegisterImage.empty(label, ranges[0][0], ranges[-1][1])
    for first, last in ranges:
        for reg in range(first, last + 1):
            if reg in reserved:
                image.serve(reg, 1)
                continue
            p = points.get(reg)
            if p is None or p.service not in services:
                continue
            bind = binds.get(reg, Bind(static=0 if p.type != "string" else ""))
            if p.writable and bind.setter is None and not bind.held and bind.get is None:
                bind = Bind(static=bind.static, held=True, allowed=allowed_from_unit(p))
            image.place(
                Slot(
                    name=f"victron.{reg}",
                    offset=reg - image.start,
                    type=p.type,
                    size=p.size,
                    factor=p.scale,
                    writable=p.writable,
                    bind=bind,
                )
            )
    image.finish()
    return image


def _system_bindings(ctx: DeviceContext) -> dict[int, Bind]:
    plant = ctx.plant
    nominal_v = plant.pack.nominal_v
    serial = ctx.identity["serial"][-12:].lower()

    def battery_state(s: PlantSnapshot) -> int:
        return 1 if s.battery_power_w > 5.0 else 2 if s.battery_power_w < -5.0 else 0

    def consumed_ah(s: PlantSnapshot) -> float:
        return -max(0.0, plant.pack.e_max_wh - s.energy_wh) / nominal_v

    def time_to_go_s(s: PlantSnapshot) -> float | None:
        if s.battery_power_w >= -1.0:
            return None
        return max(0.0, s.energy_wh - plant.pack.e_min_wh) / -s.battery_power_w * 3600.0

    return {
        800: Bind(static=serial),
        806: Bind(static=0, held=True, allowed=frozenset({0, 1})),
        807: Bind(static=0, held=True, allowed=frozenset({0, 1})),
        817: Bind(get=lambda s: s.load_power_w, noise=0.004),
        826: Bind(static=_NOT_CONNECTED),
        840: Bind(get=lambda s: s.battery_voltage_v, noise=0.001),
        841: Bind(get=lambda s: s.battery_current_a, noise=0.004),
        842: Bind(get=lambda s: s.battery_power_w, noise=0.004),
        843: Bind(get=lambda s: s.soc_pct, soc=True),
        844: Bind(get=battery_state),
        845: Bind(get=consumed_ah),
        846: Bind(get=time_to_go_s),
        850: Bind(get=lambda s: s.pv_power_w, noise=0.004),
        851: Bind(
            get=lambda s: s.pv_power_w / s.battery_voltage_v if s.battery_voltage_v > 0 else 0.0,
            noise=0.004,
        ),
        2701: Bind(static=100, held=True, allowed=(0.0, 100.0)),
        2702: Bind(static=100, held=True, allowed=(0.0, 100.0)),
        2704: Bind(static=-10, held=True),  # -1 raw: no limit
        2705: Bind(static=-1, held=True),
        2706: Bind(static=-100, held=True),
        2900: Bind(static=10, held=True, allowed=frozenset({0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11})),
        2901: Bind(get=lambda s: s.reserve_pct, setter=plant.set_reserve_pct, allowed=(0.0, 100.0)),
        2902: Bind(static=3, held=True, allowed=frozenset({1, 2, 3})),
    }


def _vebus_bindings(ctx: DeviceContext) -> dict[int, Bind]:
    plant = ctx.plant
    sim = ctx.config.sim
    soc_min = ctx.config.battery.soc_min_pct
    v_ac = sim.ac_voltage_v

    def on(s: PlantSnapshot) -> bool:
        return s.inverter_on and not s.bms_cutoff

    def state(s: PlantSnapshot) -> int:
        return _VEBUS_INVERTING if on(s) else _VEBUS_OFF

    def low_battery(s: PlantSnapshot) -> int:
        return 2 if s.bms_cutoff else 1 if s.soc_pct <= soc_min + 3.0 else 0

    def dc_current(s: PlantSnapshot) -> float:
        drawn = s.load_power_w + s.inverter_loss_w
        return -drawn / s.battery_voltage_v if s.battery_voltage_v > 0 else 0.0

    def set_mode(mode: float) -> None:
        plant.set_inverter_on(int(mode) in (2, _MODE_ON))

    return {
        15: Bind(get=lambda s: v_ac if on(s) else 0.0, noise=0.002),
        18: Bind(get=lambda s: s.load_power_w / v_ac, noise=0.004),
        21: Bind(get=lambda s: float(sim.ac_frequency_hz) if on(s) else 0.0, noise=0.0002),
        22: Bind(static=16.0, held=True, allowed=(0.0, 100.0)),
        23: Bind(get=lambda s: s.load_power_w, noise=0.004),
        26: Bind(get=lambda s: s.battery_voltage_v, noise=0.001),
        27: Bind(get=dc_current, noise=0.004),
        28: Bind(static=1),
        29: Bind(static=_NOT_CONNECTED),
        30: Bind(get=lambda s: s.soc_pct, soc=True),
        31: Bind(get=state, alarm=_VEBUS_FAULT),
        32: Bind(static=0),
        33: Bind(static=_MODE_ON, held=True, allowed=frozenset({1, 2, 3, 4}), on_write=set_mode),
        34: Bind(static=0, alarm=2),
        35: Bind(get=low_battery),
        57: Bind(get=lambda s: 1),
        58: Bind(get=lambda s: 0 if s.bms_cutoff else 1),
        59: Bind(static=1),
        60: Bind(static=0, alarm=1),
        61: Bind(get=lambda s: s.battery_temp_c, noise=0.002),
    }
