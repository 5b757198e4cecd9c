"""Admission control: admit a job only if the plan keeps every admitted deadline.

In the spirit of Cucumber (Wiesner et al., Euro-Par 2022): the box plans with a pessimistic
quantile of its PV forecast (P10 by default, ``planner.admission``) and accepts new work only
if, at that quantile, the new job and every job already admitted fit before their deadlines
without taking the battery under its reserve. The candidate's missed energy is penalised
below any admitted job's, so one solve tells both "does it fit" and "how much would fit".
A rejection names what the box could give and the earliest deadline that would work.

Best-effort work (failed the quantile, fits on expected sun) is promised later when a plan at
the admission quantile keeps it along with every promise (``promotions``): from then on no new
job may take its sun, so work that has started is not left half done for a later arrival. Until
then, best-effort work that has started counts as promised while a new job is under admission
(``planner.finish_started_best_effort``): the new job is admitted only if it fits along with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from appliance.config import SunboxConfig
from appliance.energy.planner import PlanOutcome, admission_quantile, plan_detailed
from appliance.energy.problem import Quantile, node_range_w
from appliance.energy.shedding import ACTIVE
from appliance.energy.wording import local_moment, local_span, quantile_label
from appliance.state import FloatArray, Job, JobKind, JobState, PowerForecast

ON_SUN_SHARE = 0.9


@dataclass(frozen=True)
class AdmissionDecision:
    job_id: str
    admitted: bool
    reason: str
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    available_wh: float | None = None  # what the box could give before the deadline (rejections)
    earliest_deadline: datetime | None = None  # rejections: the first deadline that would work
    outcome: PlanOutcome | None = None  # the new plan, including the job (admissions only)
    best_effort: bool = False  # admitted without a promise (see Job.best_effort)


@dataclass(frozen=True)
class AdmissionContext:
    """Everything admission looks at besides the job itself."""

    now: datetime
    forecast: PowerForecast
    soc_pct: float
    admitted: Sequence[Job]  # jobs already admitted, running or suspended
    config: SunboxConfig
    base_load_w: float | Sequence[float] | FloatArray | None = None
    heat_value_per_kwh: Sequence[float] | FloatArray | None = None
    quantile: Quantile | None = None
    assumption: str = ""  # e.g. "no live data: assumed battery at 60 %", appended to reasons

    @property
    def q(self) -> Quantile:
        return self.quantile or admission_quantile(self.config)


def decide(ctx: AdmissionContext, job: Job, *, explain: bool = True) -> AdmissionDecision:
    """Admit or reject ``job`` by the LP (a greedy first try admitted work the LP refused, and
    more of it missed). ``explain`` searches the earliest feasible deadline on rejection."""
    early = _static_rejection(ctx, job)
    if early is not None:
        return _decision(ctx, job, False, early)
    if job.kind is JobKind.CRITICAL:
        return _decide_critical(ctx, job)
    if job.kind is JobKind.SPONGE:
        return _decide_sponge(ctx, job)
    return _decide_deferrable(ctx, job, explain=explain)


# --------------------------------------------------------------------------- kinds


def _static_rejection(ctx: AdmissionContext, job: Job) -> str | None:
    node = node_range_w(ctx.config)
    if job.power_w > node + 1e-9:
        return f"the node can give at most {node:.0f} W above idle, you asked {job.power_w:.0f} W"
    if job.kind is JobKind.CRITICAL:
        taken = sum(
            j.power_w for j in ctx.admitted if j.kind is JobKind.CRITICAL and j.id != job.id
        )
        if taken + job.power_w > node + 1e-9:
            return (
                f"critical services already take {taken:.0f} W of the node's {node:.0f} W, "
                f"you asked {job.power_w:.0f} W more"
            )
    if job.kind is JobKind.DEFERRABLE:
        if job.deadline is None or job.energy_wh is None:
            return "a deferrable job needs its energy and a deadline"
        if job.deadline <= ctx.now:
            return "its deadline has already passed"
    return None


def _solve(
    ctx: AdmissionContext, jobs: Sequence[Job], candidate: str | None, fast: bool = False,
    candidate_last: bool = False,
) -> PlanOutcome:
    return plan_detailed(
        ctx.now,
        ctx.forecast,
        ctx.soc_pct,
        jobs,
        ctx.config,
        quantile=ctx.q,
        base_load_w=ctx.base_load_w,
        heat_value_per_kwh=ctx.heat_value_per_kwh,
        candidate_id=candidate,
        solver="greedy" if fast else "auto",
        candidate_last=candidate_last,
    )


def _with(ctx: AdmissionContext, job: Job) -> list[Job]:
    pending = replace(job, state=JobState.PENDING)
    return [j for j in ctx.admitted if j.id != job.id] + [pending]


def _decide_deferrable(
    ctx: AdmissionContext, job: Job, *, explain: bool
) -> AdmissionDecision:
    tol = ctx.config.planner.admission_tolerance_wh
    jobs = _with(ctx, job)
    outcome = _solve(ctx, jobs, job.id)
    missing = outcome.miss_wh.get(job.id, 0.0)
    if missing <= tol:
        return _admitted(ctx, job, outcome)
    asked = float(job.remaining_wh or 0.0)
    available = max(0.0, asked - missing)
    label = quantile_label(ctx.q)
    reason = (
        f"at {label} the box can give {available:.0f} Wh before your deadline, "
        f"you asked {asked:.0f} Wh"
    )
    if ctx.config.planner.best_effort and ctx.q == "p10" and _fits_expected(ctx, jobs, job, tol):
        # Not promised, but not turned away either: on expected sun it fits in what accepted
        # work leaves, so it runs after every promised job (missed first), on sun or battery
        # the promises do not need.
        why = (f"best effort: {reason}; on expected sun (P50) it fits, so it runs on energy the "
               "promised work does not need, without a promise")
        return _decision(ctx, job, True, why, outcome=outcome, best_effort=True)
    earliest = _earliest_deadline(ctx, job) if explain else None
    tz = ctx.config.site.zone
    if explain:
        reason += (
            f"; earliest feasible deadline is {local_moment(earliest, ctx.now, tz)}"
            if earliest is not None
            else f"; no deadline in the next {ctx.config.planner.horizon_h} h would work"
        )
    return _decision(ctx, job, False, reason, available_wh=available, earliest_deadline=earliest)


def _fits_expected(ctx: AdmissionContext, jobs: list[Job], job: Job, tol: float) -> bool:
    """Would the job make its deadline on expected (P50) sun, in what the work already
    accepted leaves? Only its own miss counts: earlier best-effort work that misses at P50
    anyway is no reason to turn this job away, and it cannot take that work's sun."""
    out = _solve(replace(ctx, quantile="p50"), jobs, job.id, candidate_last=True)
    return out.miss_wh.get(job.id, 0.0) <= tol


def _earliest_deadline(ctx: AdmissionContext, job: Job) -> datetime | None:
    """Binary search over slot ends after the asked deadline (feasibility is monotone in it)."""
    tol = ctx.config.planner.admission_tolerance_wh
    step = timedelta(minutes=ctx.config.planner.slot_min)
    probe = _solve(ctx, _with(ctx, job), job.id, fast=True)
    start, n = probe.plan.start, len(probe.plan)
    assert job.deadline is not None
    need_h = float(job.remaining_wh or 0.0) / max(job.power_w, 1e-9)
    first = max(job.deadline, ctx.now + timedelta(hours=need_h))
    lo = max(0, math.ceil((first - start) / step) - 1)  # index k: deadline = start + (k+1)*step
    hi = n - 1

    def fits(k: int) -> bool:
        trial = replace(job, deadline=start + (k + 1) * step)
        out = _solve(ctx, _with(ctx, trial), job.id, fast=False)
        return out.miss_wh.get(job.id, 0.0) <= tol

    if lo > hi or not fits(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return start + (lo + 1) * step


def _decide_sponge(ctx: AdmissionContext, job: Job) -> AdmissionDecision:
    outcome = _solve(ctx, _with(ctx, job), job.id)
    span = _planned_span(outcome, job.id, first_run_only=True)
    label = quantile_label(ctx.q)
    if span is None:
        reason = (
            f"soaks surplus sun; none expected at {label} in the next "
            f"{ctx.config.planner.horizon_h} h, it waits for sun that would be lost"
        )
        return _decision(ctx, job, True, reason, outcome=outcome)
    first, last = span
    reason = (
        f"soaks surplus sun; first planned {local_span(first, last, ctx.now, ctx.config.site.zone)}"
    )
    return _decision(ctx, job, True, reason, planned=(first, last), outcome=outcome)


def _decide_critical(ctx: AdmissionContext, job: Job) -> AdmissionDecision:
    """A critical service (the village's file share) is what the box is for: it is admitted
    whenever the node can carry it, and shed last. The answer says honestly what the forecast
    means for it: whether, at the admission quantile, the battery would run empty in the
    horizon (the service then pauses near the BMS cut-off until the sun returns) and whether
    already admitted work is pushed past its deadline."""
    tol = ctx.config.planner.admission_tolerance_wh
    tz = ctx.config.site.zone
    label = quantile_label(ctx.q)
    jobs = _with(ctx, job)
    outcome = _solve(ctx, jobs, job.id)
    problem = outcome.problem
    short = problem.essential_unserved_w * problem.dt_h
    notes: list[str] = []
    if float(short.sum()) > tol:
        k = int(np.flatnonzero(short > 0)[0])
        when = local_moment(problem.horizon.slot_start(k), ctx.now, tz)
        notes.append(f"at {label} the battery would run empty at {when}: the service would pause "
                     "then until the sun returns")
    at_risk = [jid for jid, m in outcome.miss_wh.items() if m > tol]
    if at_risk:
        before = _solve(ctx, [j for j in ctx.admitted if j.id != job.id], None)
        worse = [jid for jid in at_risk if outcome.miss_wh[jid] > before.miss_wh.get(jid, 0.0) + tol]
        if worse:
            notes.append(f"{len(worse)} admitted job(s) may now miss their deadline")
    if not notes:
        soc = outcome.plan.soc_pct
        k = int(np.argmin(soc))
        low = local_moment(outcome.plan.times()[k] + timedelta(seconds=outcome.plan.step_s), ctx.now, tz)
        notes.append(f"at {label} the battery stays above {float(soc[k]):.0f} % (lowest {low})")
    return _decision(ctx, job, True, "runs always, shed last; " + "; ".join(notes), outcome=outcome)


# --------------------------------------------------------------------------- helpers


def _planned_span(
    outcome: PlanOutcome, job_id: str, first_run_only: bool = False
) -> tuple[datetime, datetime] | None:
    """First and last moment the job is planned to draw power (slot bounds, from now)."""
    hz = outcome.problem.horizon
    power = outcome.slot_power_w(job_id)
    on = np.flatnonzero(power > 0.5)
    if len(on) == 0:
        return None
    last = int(on[-1])
    if first_run_only:
        gaps = np.flatnonzero(np.diff(on) > 1)
        last = int(on[gaps[0]]) if len(gaps) else last
    return hz.slot_start(int(on[0])), hz.slot_end(last)


def solar_share(outcome: PlanOutcome, job_id: str) -> float:
    """Share of the job's planned energy that comes straight from the panels (the essentials
    take the sun first; jobs share what is left in proportion to their power)."""
    sol, prob = outcome.solution, outcome.problem
    pv_direct = np.clip(prob.pv_w - sol.curtail_w - sol.charge_w, 0.0, None)
    for_jobs = np.clip(pv_direct - (prob.essential_w - sol.shed_w), 0.0, None)
    jobs_w = sum(sol.job_w.values(), np.zeros(prob.horizon.n))
    share = np.divide(for_jobs, jobs_w, out=np.ones_like(jobs_w), where=jobs_w > 1e-9)
    share = np.minimum(share, 1.0)
    energy = outcome.slot_power_w(job_id) * prob.dt_h
    total = float(energy.sum())
    return 1.0 if total <= 0 else float((energy * share).sum() / total)


def _admitted(ctx: AdmissionContext, job: Job, outcome: PlanOutcome) -> AdmissionDecision:
    planned = _planned(outcome, job, ctx.now, ctx.config)
    if planned is None:  # nothing left to do
        return _decision(ctx, job, True, "nothing left to run", outcome=outcome)
    reason, span = planned
    return _decision(ctx, job, True, reason, planned=span, outcome=outcome)


def _planned(outcome: PlanOutcome, job: Job, now: datetime, config: SunboxConfig
             ) -> tuple[str, tuple[datetime, datetime]] | None:
    """"planned 10:15–12:40 on sun" and that span (until the deadline); None: nothing planned."""
    span = _planned_span(outcome, job.id)
    if span is None:
        return None
    if job.deadline is not None and span[1] > job.deadline:
        span = (span[0], job.deadline)
    share = solar_share(outcome, job.id)
    source = (
        "on sun"
        if share >= ON_SUN_SHARE
        else ("on sun and battery" if share >= 0.1 else "on battery")
    )
    return f"planned {local_span(span[0], span[1], now, config.site.zone)} {source}", span


@dataclass(frozen=True)
class Promotion:
    """A best-effort job the plan now keeps: promise it (``apply``) and say so."""

    job_id: str
    reason: str
    planned_start: datetime | None
    planned_end: datetime | None

    def apply(self, job: Job) -> Job:
        return replace(job, best_effort=False, reason=self.reason, planned_start=self.planned_start,
                       planned_end=self.planned_end)


def promotions(outcome: PlanOutcome, jobs: Sequence[Job], config: SunboxConfig, now: datetime) -> list[Promotion]:
    """Best-effort jobs to promise now: those a plan keeps along with every promise.

    A best-effort job was turned away by the admission quantile when it arrived; once a plan at
    that quantile (an LP plan: the one admission trusts) finishes it by its deadline while every
    promised job is kept too, the box can promise it as admission would have. Until then a new
    job may take its sun, and one that had started was left half done (Miami's replay year:
    107 best-effort jobs missed after using 57 kWh, work perfect foresight finished). None while
    any promise is at risk in the plan, or was made after it (the plan does not speak for it):
    then nothing is spare to promise."""
    pc = config.planner
    if not (pc.best_effort and pc.promote_best_effort) or outcome.solution.solver != "milp":
        return []
    if outcome.problem.quantile != admission_quantile(config):
        return []
    tol = pc.admission_tolerance_wh
    miss = outcome.solution.miss_wh
    open_work = [j for j in jobs if j.kind is JobKind.DEFERRABLE and j.state in ACTIVE]
    for job in open_work:
        if job.best_effort:
            continue
        if job.id in miss:
            if miss[job.id] > tol:
                return []
        elif (job.remaining_wh or 0.0) > tol and job.deadline is not None and job.deadline > now:
            return []  # promised work the plan never saw
    label = quantile_label(outcome.problem.quantile)
    out = []
    for job in open_work:
        if not job.best_effort or job.id not in miss or miss[job.id] > tol:
            continue
        if job.deadline is not None and job.deadline <= now:
            continue
        planned = _planned(outcome, job, now, config)
        what, span = planned if planned is not None else ("nothing left to run", None)
        reason = f"admitted: promised now: at {label} the plan keeps its deadline with every promise; {what}"
        out.append(Promotion(job.id, reason, span[0] if span else None, span[1] if span else None))
    return out



def _decision(
    ctx: AdmissionContext,
    job: Job,
    admitted: bool,
    why: str,
    *,
    planned: tuple[datetime, datetime] | None = None,
    available_wh: float | None = None,
    earliest_deadline: datetime | None = None,
    outcome: PlanOutcome | None = None,
    best_effort: bool = False,
) -> AdmissionDecision:
    text = f"{'admitted' if admitted else 'rejected'}: {why}"
    if ctx.assumption:
        text += f" ({ctx.assumption})"
    return AdmissionDecision(
        job_id=job.id,
        admitted=admitted,
        reason=text,
        planned_start=planned[0] if planned else None,
        planned_end=planned[1] if planned else None,
        available_wh=available_wh,
        earliest_deadline=earliest_deadline,
        outcome=outcome if admitted else None,
        best_effort=best_effort,
    )
