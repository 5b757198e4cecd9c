"""``plan``: forecast + SoC + jobs -> a Plan over the horizon. Always returns one.

The LP is tried first within ``planner.solver_time_limit_s``; if it fails or runs out of
time, the greedy fallback plans instead and ``Plan.solver``/``Plan.status`` say so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from appliance.config import SunboxConfig
from appliance.energy.greedy import solve_greedy
from appliance.energy.lp import LPFailed, solve_lp
from appliance.energy.problem import PlanningProblem, Quantile, build_problem
from appliance.energy.solution import Solution
from appliance.state import FloatArray, Job, Plan, PowerForecast

SolverChoice = Literal["auto", "milp", "greedy"]
QUANTILE_OF_ADMISSION: dict[str, Quantile] = {
    "conservative": "p10",
    "expected": "p50",
    "optimistic": "p90",
}
MISS_TOL_WH = 1.0


def admission_quantile(config: SunboxConfig) -> Quantile:
    return QUANTILE_OF_ADMISSION[config.planner.admission]


@dataclass(frozen=True)
class PlanOutcome:
    """The plan plus what the planner knows about it (for admission and the events)."""

    plan: Plan
    problem: PlanningProblem
    solution: Solution
    solve_s: float

    @property
    def miss_wh(self) -> dict[str, float]:
        return dict(self.solution.miss_wh)

    def slot_power_w(self, job_id: str) -> FloatArray:
        """Planned power of a job per planning slot (not the 15-min grid)."""
        return np.asarray(self.solution.job_w.get(job_id, np.zeros(self.problem.horizon.n)))


def plan_detailed(
    now: datetime,
    forecast: PowerForecast,
    soc_pct: float,
    jobs: Sequence[Job],
    config: SunboxConfig,
    *,
    quantile: Quantile | None = None,
    base_load_w: float | Sequence[float] | FloatArray | None = None,
    heat_value_per_kwh: Sequence[float] | FloatArray | None = None,
    candidate_id: str | None = None,
    solver: SolverChoice = "auto",
    time_limit_s: float | None = None,
    candidate_last: bool = False,
) -> PlanOutcome:
    t0 = time.perf_counter()
    q = quantile or admission_quantile(config)
    problem = build_problem(
        now,
        forecast,
        soc_pct,
        jobs,
        config,
        quantile=q,
        base_load_w=base_load_w,
        heat_value_per_kwh=heat_value_per_kwh,
        candidate_id=candidate_id,
        candidate_last=candidate_last,
    )
    limit = config.planner.solver_time_limit_s if time_limit_s is None else time_limit_s
    if solver == "greedy":
        solution = solve_greedy(problem, "greedy")
    else:
        try:
            solution = solve_lp(problem, limit)
        except LPFailed as exc:
            if solver == "milp":
                raise
            solution = solve_greedy(problem, f"greedy fallback: {exc}")
    plan = to_plan(problem, solution, now, heat_value_per_kwh is not None)
    return PlanOutcome(
        plan=plan, problem=problem, solution=solution, solve_s=time.perf_counter() - t0
    )


def plan(
    now: datetime,
    forecast: PowerForecast,
    soc_pct: float,
    jobs: Sequence[Job],
    config: SunboxConfig,
    *,
    quantile: Quantile | None = None,
    base_load_w: float | Sequence[float] | FloatArray | None = None,
    heat_value_per_kwh: Sequence[float] | FloatArray | None = None,
    solver: SolverChoice = "auto",
    time_limit_s: float | None = None,
) -> Plan:
    """Plan the next ``planner.horizon_h`` hours in ``planner.slot_min`` slots."""
    return plan_detailed(
        now,
        forecast,
        soc_pct,
        jobs,
        config,
        quantile=quantile,
        base_load_w=base_load_w,
        heat_value_per_kwh=heat_value_per_kwh,
        solver=solver,
        time_limit_s=time_limit_s,
    ).plan


def to_plan(problem: PlanningProblem, sol: Solution, now: datetime, with_heat: bool) -> Plan:
    hz = problem.horizon
    bat = problem.battery
    fine = hz.to_fine
    # the plan tells the control loop the power to run at: in the slot of a deadline the job
    # runs only until the deadline, so at its slot-average power / the usable fraction
    job_power: dict[str, FloatArray] = {}
    idle = np.zeros(hz.n_fine)  # one array for every job planned to wait all horizon: read only
    idle.flags.writeable = False
    for job in problem.jobs:
        avg = sol.job_w.get(job.id)
        if avg is None or not avg.any():
            job_power[job.id] = idle
            continue
        run = np.divide(avg, job.frac, out=np.zeros_like(avg), where=job.frac > 1e-9)
        run_w = fine(np.minimum(run, job.power_w))
        last = int(np.flatnonzero(job.frac > 0.0)[-1]) if job.frac[-1] < 1.0 else hz.n - 1
        if job.frac[last] < 1.0 and hz.bounds_s[last + 1] - hz.bounds_s[last] > hz.step_s:
            run_w *= hz.fine_before(job.frac)  # a deadline inside a coarse slot: not after it
        job_power[job.id] = run_w
    for jid, power in problem.critical:
        job_power[jid] = np.full(hz.n_fine, power)
    heat_to_room = None
    if with_heat:
        node_w = (
            problem.config.compute.idle_w
            + sum(sol.job_w.values(), np.zeros(hz.n))
            + sum(p for _, p in problem.critical)
        )
        heat_to_room = fine(np.where(problem.heat_value > 0, node_w, 0.0))
    at_risk = sorted(j for j, m in sol.miss_wh.items() if m > MISS_TOL_WH)
    shed_wh = float((sol.shed_w * hz.dt_h).sum())
    notes = []
    if at_risk:
        notes.append(f"deadline at risk: {', '.join(at_risk)}")
    if shed_wh > MISS_TOL_WH:
        notes.append(f"essentials short by {shed_wh:.0f} Wh")
    status = sol.status if sol.solver == "greedy" else "optimal"
    if notes:
        status = f"{status}; {'; '.join(notes)}"
    return Plan(
        created_at=now,
        start=hz.start,
        step_s=hz.step_s,
        soc_pct=bat.pct(hz.soc_to_fine(problem.soc0_wh, sol.soc_wh)),
        pv_w=fine(problem.pv_w),
        charge_w=fine(sol.charge_w),
        discharge_w=fine(sol.discharge_w),
        curtail_w=fine(sol.curtail_w),
        job_power_w=job_power,
        heat_to_room_w=heat_to_room,
        solver=sol.solver,
        status=status,
        quantile=problem.quantile,
        at_risk=frozenset(at_risk),
    )
