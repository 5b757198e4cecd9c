"""A solved plan on the planning grid, before it is spread onto the 15-min grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from appliance.state import FloatArray


@dataclass(frozen=True)
class Solution:
    solver: str  # "milp" or "greedy"
    status: str  # "optimal", or why the fallback was used
    soc_wh: FloatArray  # end of each slot
    charge_w: FloatArray
    discharge_w: FloatArray
    curtail_w: FloatArray
    shed_w: FloatArray  # essential load the battery could not carry
    job_w: Mapping[str, FloatArray]  # deferrable and sponge jobs
    miss_wh: Mapping[str, float]  # deferrable energy that does not fit before its deadline
