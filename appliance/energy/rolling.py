"""Rolling horizon: when to re-plan, and with which solver.

Live, the plan loop re-plans every ``planner.replan_min`` minutes (15). Replay makes ~35,000
such decisions a year, so there the LP runs only when it matters: on new jobs, every
``replan_min`` (e.g. 120 in replay), and when the SoC leaves the plan by
``deviation_replan_pct`` of its margin above the reserve (at most every ``lp_interval_min``).
Jobs that end do not call for a plan: their slots fall idle, the rest of the plan holds.
In between the plan is followed and the shedding rules absorb deviations. ``adopt`` takes the
plan an admission decision already solved, so an arrival costs one solve, not two. The far
part of the horizon may be planned hourly (``fine_h``), which halves the LP's cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from appliance.config import SunboxConfig
from appliance.energy.planner import PlanOutcome, SolverChoice, plan_detailed
from appliance.energy.problem import PLANNED_STATES, Quantile
from appliance.state import FloatArray, Job, Plan, PowerForecast


def jobs_signature(jobs: Sequence[Job]) -> frozenset[str]:
    """What changes the plan's structure: which jobs are still to be planned."""
    return frozenset(j.id for j in jobs if j.state in PLANNED_STATES)


@dataclass
class RollingPlanner:
    config: SunboxConfig
    quantile: Quantile | None = None
    outcome: PlanOutcome | None = None
    last_plan_at: datetime | None = None
    last_lp_at: datetime | None = None
    signature: frozenset[str] = field(default_factory=frozenset)
    lp_calls: int = 0
    greedy_calls: int = 0

    @property
    def plan(self) -> Plan | None:
        return None if self.outcome is None else self.outcome.plan

    def due(
        self, now: datetime, soc_pct: float, jobs: Sequence[Job]
    ) -> tuple[str, SolverChoice] | None:
        """Why to re-plan now and with which solver; None to keep following the plan.

        Between solves the plan is followed and the shedding rules absorb small deviations; a
        re-plan replaces it only with another LP plan (the greedy planner, weaker, is the
        fallback when the LP fails, not a substitute for a good plan)."""
        pc = self.config.planner
        if self.outcome is None or self.last_plan_at is None:
            return "first plan", "auto"
        if not jobs_signature(jobs) <= self.signature:
            # new work needs a plan at once; work that ended leaves the plan valid (its slots
            # fall idle, and the shedding rules hand unplanned sun to the rest until next time)
            return "jobs changed", "auto"
        plan = self.outcome.plan
        k = plan.slot_index(now)
        if k is None:
            return "plan ran out", "auto"
        if (now - self.last_plan_at).total_seconds() >= pc.replan_min * 60:
            return "periodic re-plan", "auto"
        if (
            plan.solver != "milp"
            and (now - self.last_plan_at).total_seconds() >= pc.lp_interval_min * 60
        ):
            return "retry the LP after a fallback plan", "auto"
        since_lp_min = (
            float("inf")
            if self.last_lp_at is None
            else (now - self.last_lp_at).total_seconds() / 60
        )
        expected = float(plan.soc_pct[k - 1] if k > 0 else plan.soc_pct[0])
        margin = max(
            2.0, pc.deviation_replan_pct / 100.0 * abs(expected - self.config.battery.reserve_pct)
        )
        if abs(soc_pct - expected) >= margin and since_lp_min >= pc.lp_interval_min:
            return f"SoC {soc_pct:.0f} % is off the plan's {expected:.0f} %", "auto"
        return None

    def replan(
        self,
        now: datetime,
        forecast: PowerForecast,
        soc_pct: float,
        jobs: Sequence[Job],
        *,
        solver: SolverChoice = "auto",
        base_load_w: float | Sequence[float] | FloatArray | None = None,
        heat_value_per_kwh: Sequence[float] | FloatArray | None = None,
    ) -> PlanOutcome:
        outcome = plan_detailed(
            now,
            forecast,
            soc_pct,
            jobs,
            self.config,
            quantile=self.quantile,
            base_load_w=base_load_w,
            heat_value_per_kwh=heat_value_per_kwh,
            solver=solver,
        )
        self.adopt(outcome, now, jobs)
        return outcome

    def adopt(self, outcome: PlanOutcome, now: datetime, jobs: Sequence[Job]) -> None:
        self.outcome = outcome
        self.last_plan_at = now
        self.signature = jobs_signature(jobs)
        if outcome.solution.solver == "milp":
            self.last_lp_at = now
            self.lp_calls += 1
        else:
            self.greedy_calls += 1
