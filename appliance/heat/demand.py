"""Planner hook: how much compute heat the room can usefully take per slot, and what it is worth.

The planner (appliance/energy) adds, per slot t, a heat variable ``h_t <= demand_w[t]`` and
``h_t <= compute power planned in t`` and rewards ``value_per_wh * h_t * step_h``: running
deferrable or sponge work at night on battery then buys work *and* heat, traded explicitly
against keeping charge (the reserve stays a hard constraint there, never a price).

Demand is found by running the room model forward over the horizon: in a wanted slot it is the
heat that brings the air to the setpoint by the slot's end (never negative, capped by
``max_heat_w``), assuming it is delivered; outside wanted slots it is zero and the room floats
(a slot is wanted when its midpoint is). A cold night gives a large demand; a warm night,
where the room stays above setpoint on its own, gives about none. Solar gain, when given, is
counted before any heat is asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from appliance.config import HeatConfig
from appliance.heat.room import ThermalModel, room_model_from_config
from appliance.heat.schedule import ComfortSchedule
from appliance.state import FloatArray


@dataclass(frozen=True)
class HeatDemand:
    start: datetime
    step_s: int
    demand_w: FloatArray  # useful heat per slot (W, average over the slot)
    wanted: np.ndarray  # bool per slot
    room_temp_c: FloatArray  # predicted air temperature at each slot's end, demand met
    value_per_kwh: float

    def __len__(self) -> int:
        return int(self.demand_w.shape[0])

    @property
    def value_per_wh(self) -> float:
        return self.value_per_kwh / 1000.0

    @property
    def demand_wh(self) -> FloatArray:
        return self.demand_w * self.step_s / 3600.0

    def value_of(self, heat_w: FloatArray | Sequence[float]) -> float:
        """Value of delivering ``heat_w`` per slot: only heat up to the demand counts."""
        heat = np.asarray(heat_w, dtype=float)
        if heat.shape != self.demand_w.shape:
            raise ValueError(f"heat_w has {heat.shape[0]} slots, demand has {len(self)}")
        useful = np.minimum(np.maximum(heat, 0.0), self.demand_w)
        return float(useful.sum() * self.step_s / 3600.0 * self.value_per_wh)


def heat_demand(start: datetime, step_s: int, outdoor_c: FloatArray | Sequence[float],
                room_state: float | FloatArray, schedule: ComfortSchedule, model: ThermalModel,
                *, value_per_kwh: float, max_heat_w: float | None = None,
                solar_w_m2: FloatArray | Sequence[float] | None = None) -> HeatDemand:
    """Per-slot heat demand over the horizon given the outdoor forecast and the room now.

    ``room_state`` is the measured air temperature (or a full model state); ``max_heat_w``
    is usually the node's maximum power (demand above it cannot be met anyway).
    """
    if step_s <= 0:
        raise ValueError("step_s must be > 0")
    outdoor = np.asarray(outdoor_c, dtype=float)
    n = outdoor.shape[0]
    solar = np.zeros(n) if solar_w_m2 is None else np.asarray(solar_w_m2, dtype=float)
    if solar.shape != outdoor.shape:
        raise ValueError("solar_w_m2 must have one value per slot, like outdoor_c")
    if not np.all(np.isfinite(outdoor)):
        raise ValueError("outdoor_c has missing values; fill the forecast before planning heat")
    if np.ndim(room_state) == 0:
        state = model.initial_state(float(room_state), float(outdoor[0]) if n else 0.0)
    else:
        state = np.asarray(room_state, dtype=float)
    wanted = schedule.wanted_grid(start, step_s, n)
    demand = np.zeros(n)
    temps = np.zeros(n)
    cap = np.inf if max_heat_w is None else max(0.0, max_heat_w)
    ad, bd = model.discretise(float(step_s))  # one discretisation for the whole horizon
    # plain floats: a 1- or 2-state model stepped 192 times per plan is mostly call overhead
    # in numpy (the same arithmetic as step_discrete / heat_to_reach_discrete)
    a_rows = ad.tolist()
    b_out, b_heat, b_sun = (bd[:, c].tolist() for c in range(3))
    x = [float(v) for v in np.asarray(state, dtype=float)]
    dims = range(len(x))
    set_c = float(schedule.setpoint_c)
    out_l, sun_l, want_l = outdoor.tolist(), solar.tolist(), wanted.tolist()
    if len(x) == 1:  # 1R1C: scalars
        a, bo, bh, bs, air = a_rows[0][0], b_out[0], b_heat[0], b_sun[0], x[0]
        for i in range(n):
            free = a * air + bo * out_l[i] + bs * sun_l[i]
            q = min(cap, max(0.0, (set_c - free) / bh)) if want_l[i] else 0.0
            air = free + bh * q
            demand[i] = q
            temps[i] = air
    else:
        for i in range(n):
            o, g = out_l[i], sun_l[i]
            free = [sum(a_rows[r][c] * x[c] for c in dims) + b_out[r] * o + b_sun[r] * g for r in dims]
            q = min(cap, max(0.0, (set_c - free[0]) / b_heat[0])) if want_l[i] else 0.0
            x = [free[r] + b_heat[r] * q for r in dims]
            demand[i] = q
            temps[i] = x[0]
    return HeatDemand(start=start, step_s=step_s, demand_w=demand, wanted=wanted,
                      room_temp_c=temps, value_per_kwh=value_per_kwh)


def site_heat_demand(heat: HeatConfig, tz: str, start: datetime, step_s: int,
                     outdoor_c: FloatArray | Sequence[float], room_temp_c: float,
                     *, max_heat_w: float | None = None,
                     solar_w_m2: FloatArray | Sequence[float] | None = None) -> HeatDemand:
    """``heat_demand`` for a site's [heat] config; all zeros when heat routing is disabled."""
    schedule = ComfortSchedule.from_config(heat, tz)
    if not heat.enabled:
        n = len(np.asarray(outdoor_c))
        return HeatDemand(start=start, step_s=step_s, demand_w=np.zeros(n),
                          wanted=np.zeros(n, dtype=bool), room_temp_c=np.full(n, room_temp_c),
                          value_per_kwh=heat.heat_value_per_kwh)
    return heat_demand(start, step_s, outdoor_c, room_temp_c, schedule,
                       room_model_from_config(heat), value_per_kwh=heat.heat_value_per_kwh,
                       max_heat_w=max_heat_w, solar_w_m2=solar_w_m2)


def compute_heat_value_per_kwh(demand: HeatDemand, node_range_w: float) -> FloatArray:
    """What a kWh of compute is worth as heat in each slot, for the planner's objective.

    Compute energy is worth ``value_per_kwh`` as heat only while the room can use it: a slot
    whose demand would take the whole node's range values its compute fully, half the range
    half, and a warm slot not at all (the heat is vented). Linear in the node's power, so the
    planner stays a linear programme.
    """
    share = np.clip(np.asarray(demand.demand_w, dtype=float) / max(node_range_w, 1.0), 0.0, 1.0)
    return np.asarray(demand.value_per_kwh * share, dtype=float)
