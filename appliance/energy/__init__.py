"""Energy planning: battery model, rolling-horizon planner (LP with greedy fallback),
admission control, and the shedding rules the control cycle applies.

Pure, clock-free functions and small stateful helpers: the live daemon and the in-process
replay call the same code with their own clocks.
"""

from appliance.energy.admission import AdmissionContext, AdmissionDecision, Promotion, decide, promotions
from appliance.energy.planner import PlanOutcome, admission_quantile, plan, plan_detailed
from appliance.energy.rolling import RollingPlanner
from appliance.energy.shedding import ControlView, ShedRules
from appliance.energy.threshold import ThresholdGate

__all__ = [
    "AdmissionContext",
    "AdmissionDecision",
    "ControlView",
    "PlanOutcome",
    "Promotion",
    "RollingPlanner",
    "ShedRules",
    "ThresholdGate",
    "admission_quantile",
    "decide",
    "plan",
    "plan_detailed",
    "promotions",
]
