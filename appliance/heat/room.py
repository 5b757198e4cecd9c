"""Room thermal model (lumped RC), shared by the simulator, the planner and replay.

1R1C: C dT/dt = (T_out - T)/R + P_heat. Stepped with the exact solution for constant inputs
over the step, so it is stable for any step length (a year of replay at 5-minute steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.config import HeatConfig


@dataclass(frozen=True)
class RoomModel:
    r_k_per_w: float
    c_j_per_k: float

    @classmethod
    def from_config(cls, heat: HeatConfig) -> RoomModel:
        return cls(r_k_per_w=heat.room_r_k_per_w, c_j_per_k=heat.room_c_j_per_k)

    @property
    def time_constant_s(self) -> float:
        return self.r_k_per_w * self.c_j_per_k

    def step(self, temp_c: float, outdoor_c: float, heat_w: float, dt_s: float) -> float:
        """Room temperature after ``dt_s`` with constant outdoor temperature and heat input."""
        equilibrium = outdoor_c + heat_w * self.r_k_per_w
        return equilibrium + (temp_c - equilibrium) * math.exp(-dt_s / self.time_constant_s)

    def heat_for(self, temp_c: float, target_c: float, outdoor_c: float, dt_s: float) -> float:
        """Constant heat (W) that brings the room from ``temp_c`` to ``target_c`` in ``dt_s``."""
        decay = math.exp(-dt_s / self.time_constant_s)
        equilibrium = (target_c - temp_c * decay) / (1.0 - decay)
        return (equilibrium - outdoor_c) / self.r_k_per_w
