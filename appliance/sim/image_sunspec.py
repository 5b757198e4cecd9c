"""SunSpec register images built from the official model definitions.

Layout (SunSpec Device Information Model): "SunS" at the base address, then each model as
ID, L and its points, then the end marker 0xFFFF, 0. Addresses, types and scale-factor names
all come from ``appliance.devices.registers.sunspec_model``; this module only says which plant
quantity each point shows and which scale factor exponent a realistic device would choose.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from appliance.devices.codec import word_count
from appliance.devices.registers import ModelDef, PointDef, sunspec_model
from appliance.devices.sunspec import END_MODEL_ID, SUNS_MARKER
from appliance.sim.context import DeviceContext
from appliance.sim.image import Bind, Getter, RegisterImage, SimBuildError, Slot
from appliance.sim.plant import PlantSnapshot

DEFAULT_MODELS: dict[str, list[int]] = {
    "inverter": [1, 101, 160, 124],
    "battery": [1, 802],
    "mppt": [1, 160],
    "meter": [1, 101],
}
MPPT_MODULES = 2

# Scale factor exponents a device would pick; raised automatically if a value would not fit.
SF_DEFAULTS: dict[str, int] = {
    "A_SF": -1,
    "V_SF": -1,
    "W_SF": 0,
    "Hz_SF": -2,
    "VA_SF": 0,
    "VAr_SF": 0,
    "PF_SF": 0,
    "WH_SF": 0,
    "DCA_SF": -1,
    "DCV_SF": -1,
    "DCW_SF": 0,
    "DCWH_SF": 0,
    "Tmp_SF": -1,
    "WChaMax_SF": 0,
    "WChaDisChaGra_SF": 0,
    "MinRsvPct_SF": 0,
    "ChaState_SF": -1,
    "StorAval_SF": -1,
    "InBatV_SF": -1,
    "AHRtg_SF": 0,
    "WHRtg_SF": 0,
    "WChaDisChaMax_SF": 0,
    "SoC_SF": -1,
    "DoD_SF": -1,
    "SoH_SF": 0,
    "CellV_SF": -3,
    "AMax_SF": 0,
}
_SUNSPEC_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

_INV_ST_OFF, _INV_ST_MPPT, _INV_ST_THROTTLED, _INV_ST_FAULT = 1, 4, 5, 7
_DC_ST_SLEEPING = 2
_CHA_EMPTY, _CHA_DISCHARGING, _CHA_CHARGING, _CHA_FULL, _CHA_HOLDING = 2, 3, 4, 5, 6
_BAT_CONNECTED, _BAT_SOC_PROTECTION, _BAT_FAULT = 3, 5, 99
_EVT_OVER_TEMP = 1 << 7  # model 101 Evt1 bit 7
_BAT_EVT_OVER_TEMP_ALARM = 1 << 1  # model 802 Evt1 bit 1
_LITHIUM_ION = 4


def models_for(ctx: DeviceContext) -> list[int]:
    ids = ctx.config.sim.models.get(ctx.name) or DEFAULT_MODELS.get(ctx.role)
    if not ids:
        raise SimBuildError(
            f"device '{ctx.name}' (role {ctx.role}) has no default SunSpec models; "
            f"list them in [sim.models] {ctx.name} = [1, ...]"
        )
    return list(ids)


def build_sunspec_image(ctx: DeviceContext, base: int) -> RegisterImage:
    """The image of one SunSpec device at ``base`` (40000, 0 or 50000)."""
    models = [_model(mid) for mid in models_for(ctx)]
    tail = ctx.config.sim.sunspec_tail_registers
    size = 2 + sum(m.length_value(_repeats(m)) + 2 for m in models) + 2 + tail
    image = RegisterImage.empty(f"{ctx.name}@unit{ctx.unit_id}", base, base + size - 1)
    image.words[0:2] = list(SUNS_MARKER)
    image.serve(base, 2)
    image.structural.update((0, 1))
    off = 2
    for model in models:
        binds = _bindings(model.id, ctx)
        unknown = set(binds) - _point_names(model)
        if unknown:
            raise SimBuildError(f"model {model.id} has no point(s) {sorted(unknown)}")
        repeats = _repeats(model)
        sfs = _scale_exponents(model, binds, repeats)
        for p in model.points:
            _place(image, model, p, off + p.offset, f"{model.id}.{p.name}", binds, sfs, repeats)
        if model.group is not None:
            for i in range(repeats):
                goff = off + model.fixed_size + i * model.group.size
                for gp in model.group.points:
                    name = f"{model.id}.{model.group.name}[{i}].{gp.name}"
                    _place(image, model, gp, goff + gp.offset, name, binds, sfs, repeats)
        image.structural.update((off, off + 1))
        off += 2 + model.length_value(repeats)
    image.words[off : off + 2] = [END_MODEL_ID, 0]
    image.serve(base + off, 2 + tail)
    image.structural.update((off, off + 1))
    image.finish()
    return image


def _model(mid: int) -> ModelDef:
    try:
        return sunspec_model(mid)
    except KeyError as exc:
        raise SimBuildError(str(exc).strip("'\"")) from None


def _repeats(model: ModelDef) -> int:
    return MPPT_MODULES if model.group is not None else 0


def _point_names(model: ModelDef) -> set[str]:
    names = {p.name for p in model.points}
    if model.group is not None:
        names |= {
            f"{model.group.name}[{i}].{p.name}"
            for i in range(_repeats(model))
            for p in model.group.points
        }
    return names


def _place(
    image: RegisterImage,
    model: ModelDef,
    p: PointDef,
    offset: int,
    name: str,
    binds: dict[str, Bind],
    sfs: dict[str, int],
    repeats: int,
) -> None:
    key = name.split(".", 1)[1]
    if key == "ID":
        bind = Bind(static=model.id)
    elif key == "L":
        bind = Bind(static=model.length_value(repeats))
    elif p.type == "sunssf":
        bind = Bind(static=sfs.get(p.name))
    else:
        bind = binds.get(key, Bind())
    if isinstance(p.sf, str):
        factor = 10.0 ** -sfs[p.sf] if p.sf in sfs else 1.0
    elif isinstance(p.sf, int):
        factor = 10.0**-p.sf
    else:
        factor = 1.0
    image.place(
        Slot(
            name=name,
            offset=offset,
            type=p.type,
            size=p.size,
            factor=factor,
            writable=p.writable,
            bind=bind,
        )
    )


def _scale_exponents(model: ModelDef, binds: dict[str, Bind], repeats: int) -> dict[str, int]:
    """Exponent per sunssf point: the default, raised until every bound value fits its type."""
    points: list[tuple[str, PointDef]] = [(p.name, p) for p in model.points]
    if model.group is not None:
        points += [
            (f"{model.group.name}[{i}].{p.name}", p)
            for i in range(repeats)
            for p in model.group.points
        ]
    sfs = {p.name: SF_DEFAULTS.get(p.name, 0) for p in model.points if p.type == "sunssf"}
    for key, p in points:
        if not isinstance(p.sf, str) or p.sf not in sfs:
            continue
        bind = binds.get(key)
        if bind is None:
            continue
        magnitude = bind.magnitude
        if magnitude is None and isinstance(bind.static, int | float):
            magnitude = abs(float(bind.static))
        if magnitude is None:
            continue
        limit = _type_max(p.type)
        while magnitude * 10.0 ** -sfs[p.sf] > limit and sfs[p.sf] < 10:
            sfs[p.sf] += 1
    return sfs


def _type_max(type_name: str) -> float:
    bits = 16 * word_count(type_name)
    return float((1 << (bits - 1)) - 1) if type_name.startswith("int") else float((1 << bits) - 2)


# --------------------------------------------------------------------------- bindings


def _bindings(mid: int, ctx: DeviceContext) -> dict[str, Bind]:
    builders = {
        1: _common,
        101: _inverter,
        103: _inverter,
        160: _mppt,
        124: _storage,
        802: _battery,
    }
    if mid not in builders:
        raise SimBuildError(
            f"the simulator does not serve SunSpec model {mid} "
            f"(it serves {', '.join(str(m) for m in sorted(builders))})"
        )
    return builders[mid](ctx)


def _common(ctx: DeviceContext) -> dict[str, Bind]:
    ident = ctx.identity
    return {
        "Mn": Bind(static=ident["manufacturer"]),
        "Md": Bind(static=ident["model"]),
        "Opt": Bind(static="simulated"),
        "Vr": Bind(static=ident["version"]),
        "SN": Bind(static=ident["serial"]),
        "DA": Bind(static=ctx.unit_id, held=True, allowed=(1.0, 247.0)),
    }


def _inverter(ctx: DeviceContext) -> dict[str, Bind]:
    sim = ctx.config.sim
    v_ac = sim.ac_voltage_v
    w_max = ctx.config.array.ac_limit_w * 1.5
    bat_v_max = sim.battery_cells_series * 3.65

    def state(s: PlantSnapshot) -> int:
        if s.brownout or not s.inverter_on:
            return _INV_ST_OFF
        return _INV_ST_THROTTLED if s.curtailed_w > 10.0 else _INV_ST_MPPT

    def dc_w(s: PlantSnapshot) -> float:
        return s.load_power_w + s.inverter_loss_w

    return {
        "A": Bind(get=lambda s: s.load_power_w / v_ac, noise=0.004, magnitude=w_max / v_ac),
        "AphA": Bind(get=lambda s: s.load_power_w / v_ac, noise=0.004, magnitude=w_max / v_ac),
        "PhVphA": Bind(
            get=lambda s: v_ac if s.inverter_on and not s.brownout else 0.0,
            noise=0.002,
            magnitude=v_ac * 1.2,
        ),
        "W": Bind(get=lambda s: s.load_power_w, noise=0.004, magnitude=w_max),
        "Hz": Bind(
            get=lambda s: float(sim.ac_frequency_hz) if s.inverter_on and not s.brownout else 0.0,
            noise=0.0002,
            magnitude=70.0,
        ),
        "VA": Bind(get=lambda s: s.load_power_w, noise=0.004, magnitude=w_max),
        "VAr": Bind(static=0),
        "PF": Bind(static=100),
        "WH": Bind(get=lambda s: s.counters.load_wh, magnitude=1e8),
        "DCA": Bind(
            get=lambda s: dc_w(s) / s.battery_voltage_v if s.battery_voltage_v > 0 else 0.0,
            noise=0.004,
            magnitude=w_max / 40.0,
        ),
        "DCV": Bind(get=lambda s: s.battery_voltage_v, noise=0.001, magnitude=bat_v_max),
        "DCW": Bind(get=dc_w, noise=0.004, magnitude=w_max),
        "TmpCab": Bind(get=lambda s: s.inverter_temp_c, noise=0.002, magnitude=120.0),
        "TmpSnk": Bind(get=lambda s: s.inverter_temp_c + 3.0, noise=0.002, magnitude=120.0),
        "St": Bind(get=state, alarm=_INV_ST_FAULT),
        "Evt1": Bind(static=0, alarm=_EVT_OVER_TEMP),
        "Evt2": Bind(static=0),
        "EvtVnd1": Bind(static=0),
        "EvtVnd2": Bind(static=0),
        "EvtVnd3": Bind(static=0),
        "EvtVnd4": Bind(static=0),
    }


def _mppt(ctx: DeviceContext) -> dict[str, Bind]:
    pdc = ctx.config.array.dc_kw * 1000.0

    def module_w(s: PlantSnapshot) -> float:
        return s.pv_power_w / MPPT_MODULES

    def module_a(s: PlantSnapshot) -> float:
        return module_w(s) / s.pv_voltage_v if s.pv_voltage_v > 0 else 0.0

    def dc_state(s: PlantSnapshot) -> int:
        if s.pv_available_w <= 1.0:
            return _DC_ST_SLEEPING
        return _INV_ST_THROTTLED if s.curtailed_w > 10.0 else _INV_ST_MPPT

    binds: dict[str, Bind] = {
        "Evt": Bind(static=0),
        "N": Bind(static=MPPT_MODULES),
    }
    for i in range(MPPT_MODULES):
        g = f"module[{i}]"
        binds.update(
            {
                f"{g}.ID": Bind(static=i + 1),
                f"{g}.IDStr": Bind(static=f"PV{i + 1}"),
                f"{g}.DCA": Bind(get=module_a, noise=0.004, magnitude=pdc / 100.0),
                f"{g}.DCV": Bind(get=lambda s: s.pv_voltage_v, noise=0.001, magnitude=1000.0),
                f"{g}.DCW": Bind(get=module_w, noise=0.004, magnitude=pdc),
                f"{g}.DCWH": Bind(get=lambda s: s.counters.pv_wh / MPPT_MODULES, magnitude=1e8),
                f"{g}.Tms": Bind(get=lambda s: (s.at - _SUNSPEC_EPOCH).total_seconds()),
                f"{g}.Tmp": Bind(get=lambda s: s.outdoor_temp_c + 25.0 * s.pv_available_w / pdc),
                f"{g}.DCSt": Bind(get=dc_state),
                f"{g}.DCEvt": Bind(static=0),
            }
        )
    return binds


def _storage(ctx: DeviceContext) -> dict[str, Bind]:
    plant = ctx.plant
    bat = ctx.config.battery
    nominal_v = plant.pack.nominal_v
    return {
        "WChaMax": Bind(
            get=lambda s: s.charge_setpoint_w,
            setter=plant.set_charge_setpoint_w,
            allowed=(0.0, bat.charge_max_w),
            magnitude=bat.charge_max_w,
        ),
        "WChaGra": Bind(static=100, held=True, allowed=(0.0, 100.0)),
        "WDisChaGra": Bind(static=100, held=True, allowed=(0.0, 100.0)),
        "StorCtl_Mod": Bind(static=0, held=True, allowed=frozenset({0, 1, 2, 3})),
        "MinRsvPct": Bind(
            get=lambda s: s.reserve_pct,
            setter=plant.set_reserve_pct,
            allowed=(0.0, 100.0),
            magnitude=100.0,
        ),
        "ChaState": Bind(get=lambda s: s.soc_pct, magnitude=200.0, soc=True),
        "StorAval": Bind(
            get=lambda s: max(0.0, s.energy_wh - plant.pack.e_min_wh) / nominal_v,
            magnitude=bat.capacity_wh / nominal_v,
        ),
        "InBatV": Bind(get=lambda s: s.battery_voltage_v, noise=0.001, magnitude=nominal_v * 1.3),
        "ChaSt": Bind(get=_charge_status(ctx)),
        "ChaGriSet": Bind(static=0, held=True, allowed=frozenset({0, 1})),
    }


def _charge_status(ctx: DeviceContext) -> Getter:
    soc_max = ctx.config.battery.soc_max_pct

    def status(s: PlantSnapshot) -> int:
        if s.bms_cutoff:
            return _CHA_EMPTY
        if s.battery_power_w > 5.0:
            return _CHA_CHARGING
        if s.battery_power_w < -5.0:
            return _CHA_DISCHARGING
        return _CHA_FULL if s.soc_pct >= soc_max - 0.5 else _CHA_HOLDING

    return status


def _battery(ctx: DeviceContext) -> dict[str, Bind]:
    plant = ctx.plant
    bat = ctx.config.battery
    cells = ctx.config.sim.battery_cells_series
    nominal_v = plant.pack.nominal_v
    p_max = max(bat.charge_max_w, bat.discharge_max_w)
    heartbeat = {"n": 0}

    def beat(_: PlantSnapshot) -> int:
        heartbeat["n"] = (heartbeat["n"] + 1) % 0xFFFF
        return heartbeat["n"]

    def cell_v(s: PlantSnapshot) -> float:
        return s.battery_voltage_v / cells

    def cycles(s: PlantSnapshot) -> int:
        return int(s.counters.discharge_wh / bat.capacity_wh)

    def state(s: PlantSnapshot) -> int:
        return _BAT_SOC_PROTECTION if s.bms_cutoff else _BAT_CONNECTED

    status = _charge_status(ctx)
    return {
        "AHRtg": Bind(static=round(bat.capacity_wh / nominal_v)),
        "WHRtg": Bind(static=round(bat.capacity_wh)),
        "WChaRteMax": Bind(get=lambda s: s.charge_limit_w, magnitude=bat.charge_max_w),
        "WDisChaRteMax": Bind(get=lambda s: s.discharge_limit_w, magnitude=bat.discharge_max_w),
        "SoCMax": Bind(static=bat.soc_max_pct),
        "SoCMin": Bind(static=bat.soc_min_pct),
        "SocRsvMax": Bind(static=bat.soc_max_pct, held=True, allowed=(0.0, 100.0)),
        "SoCRsvMin": Bind(
            get=lambda s: s.reserve_pct,
            setter=plant.set_reserve_pct,
            allowed=(0.0, 100.0),
            magnitude=100.0,
        ),
        "SoC": Bind(get=lambda s: s.soc_pct, magnitude=200.0, soc=True),
        "DoD": Bind(get=lambda s: 100.0 - s.soc_pct, magnitude=100.0),
        "SoH": Bind(static=100),
        "NCyc": Bind(get=cycles),
        "ChaSt": Bind(get=status),
        "LocRemCtl": Bind(static=0),
        "Hb": Bind(get=beat),
        "CtrlHb": Bind(static=0, held=True),
        "AlmRst": Bind(static=0, held=True, allowed=frozenset({0, 1})),
        "Typ": Bind(static=_LITHIUM_ION),
        "State": Bind(get=state, alarm=_BAT_FAULT),
        "Evt1": Bind(static=0, alarm=_BAT_EVT_OVER_TEMP_ALARM),
        "Evt2": Bind(static=0),
        "EvtVnd1": Bind(static=0),
        "EvtVnd2": Bind(static=0),
        "V": Bind(get=lambda s: s.battery_voltage_v, noise=0.001, magnitude=cells * 3.65),
        "VMax": Bind(static=round(cells * 3.65, 1)),
        "VMin": Bind(static=round(cells * 2.5, 1)),
        "CellVMax": Bind(get=lambda s: cell_v(s) + 0.004, magnitude=5.0),
        "CellVMaxStr": Bind(static=1),
        "CellVMaxMod": Bind(static=1),
        "CellVMin": Bind(get=lambda s: cell_v(s) - 0.004, magnitude=5.0),
        "CellVMinStr": Bind(static=1),
        "CellVMinMod": Bind(static=1),
        "CellVAvg": Bind(get=cell_v, magnitude=5.0),
        "A": Bind(get=lambda s: s.battery_current_a, noise=0.004, magnitude=p_max / (cells * 2.5)),
        "AChaMax": Bind(static=math.floor(bat.charge_max_w / nominal_v)),
        "ADisChaMax": Bind(static=math.floor(bat.discharge_max_w / nominal_v)),
        "W": Bind(get=lambda s: s.battery_power_w, noise=0.004, magnitude=p_max * 1.1),
        "ReqInvState": Bind(static=0),
        "SetOp": Bind(static=1, held=True, allowed=frozenset({1, 2})),
        "SetInvState": Bind(static=3, held=True, allowed=frozenset({1, 2, 3})),
    }
