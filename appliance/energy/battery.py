"""Battery model for planning: limits, one-way efficiencies and a reference simulation.

The planner's LP holds the same dynamics as equations; ``simulate`` steps them explicitly so
the greedy fallback, the essential-load floor and the tests share one definition of what the
battery does with a given surplus or deficit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.config import BatteryConfig
from appliance.state import FloatArray


@dataclass(frozen=True)
class BatteryModel:
    capacity_wh: float
    min_wh: float
    max_wh: float
    reserve_wh: float
    charge_max_w: float
    discharge_max_w: float
    eta_charge: float
    eta_discharge: float

    @classmethod
    def from_config(cls, cfg: BatteryConfig) -> BatteryModel:
        eta = cfg.one_way_efficiency
        return cls(
            capacity_wh=cfg.capacity_wh,
            min_wh=cfg.capacity_wh * cfg.soc_min_pct / 100.0,
            max_wh=cfg.capacity_wh * cfg.soc_max_pct / 100.0,
            reserve_wh=cfg.reserve_wh,
            charge_max_w=cfg.charge_max_w,
            discharge_max_w=cfg.discharge_max_w,
            eta_charge=eta,
            eta_discharge=eta,
        )

    def wh(self, soc_pct: float) -> float:
        return self.capacity_wh * soc_pct / 100.0

    def pct(self, wh: float | FloatArray) -> FloatArray:
        return np.asarray(wh, dtype=float) * (100.0 / self.capacity_wh)


@dataclass(frozen=True)
class BatteryRun:
    """Result of stepping the battery through a sequence of surpluses (all per slot)."""

    soc_wh: FloatArray  # at the end of each slot
    charge_w: FloatArray
    discharge_w: FloatArray
    curtail_w: FloatArray  # surplus the battery could not take
    unserved_w: FloatArray  # deficit the battery could not give


def simulate(
    model: BatteryModel, soc0_wh: float, surplus_w: FloatArray, dt_h: FloatArray
) -> BatteryRun:
    """Step the battery: a surplus charges it (then is curtailed), a deficit discharges it
    (then goes unserved). Limits: power, ``max_wh`` on charge, ``min_wh`` on discharge."""
    n = len(surplus_w)
    soc = np.empty(n)
    charge = np.zeros(n)
    discharge = np.zeros(n)
    curtail = np.zeros(n)
    unserved = np.zeros(n)
    s = float(soc0_wh)
    eta_c, eta_d = model.eta_charge, model.eta_discharge
    cmax, dmax, hi, lo = model.charge_max_w, model.discharge_max_w, model.max_wh, model.min_wh
    net_list = surplus_w.tolist()
    dt_list = dt_h.tolist()
    for t in range(n):
        net = net_list[t]
        dt = dt_list[t]
        if net >= 0.0:
            room_w = (hi - s) / (eta_c * dt) if s < hi else 0.0
            c = min(net, cmax, room_w)
            s += c * eta_c * dt
            charge[t] = c
            curtail[t] = net - c
        else:
            avail_w = (s - lo) * eta_d / dt if s > lo else 0.0
            d = min(-net, dmax, avail_w)
            s -= d / eta_d * dt
            discharge[t] = d
            unserved[t] = -net - d
        soc[t] = s
    return BatteryRun(soc, charge, discharge, curtail, unserved)
