"""The heat term of the plan: what compute is worth as heat in each slot (daemon and replay).

The planner values compute energy that the room can use at night; how much, per slot, comes
from the room model and the comfort schedule under the outdoor temperature forecast.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from appliance.config import SunboxConfig
from appliance.heat.demand import compute_heat_value_per_kwh, site_heat_demand
from appliance.state import FloatArray

# Heat tomorrow night is worth half of heat tonight from today's view: its forecast is less
# certain, and without a discount a rolling plan would keep postponing the warmth (energy held
# in the battery is itself worth a little) and never deliver it.
HEAT_HALF_LIFE_H = 24.0


def heat_value_per_kwh(config: SunboxConfig, start: datetime, step_s: int, outdoor_c: FloatArray,
                       room_temp_c: float | None) -> FloatArray | None:
    """Value per kWh of compute per slot from ``start`` (None when heat routing is off)."""
    heat = config.heat
    if not heat.enabled:
        return None
    demand = site_heat_demand(heat, config.site.tz, start, step_s, np.asarray(outdoor_c, dtype=float),
                              room_temp_c if room_temp_c is not None else heat.setpoint_c,
                              max_heat_w=config.compute.max_w)
    value = compute_heat_value_per_kwh(demand, config.compute.max_w - config.compute.idle_w)
    hours_ahead = (np.arange(value.shape[0]) + 0.5) * step_s / 3600.0
    return np.asarray(value * 0.5 ** (hours_ahead / HEAT_HALF_LIFE_H), dtype=float)
