"""What the planner must decide, in arrays: PV, essential load, the reserve floor, and jobs.

Built once per plan from the forecast, the SoC and the jobs; solved by the LP (``lp.py``) or
the greedy fallback (``greedy.py``), which therefore agree on every number they start from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import numpy as np

from appliance.config import SunboxConfig
from appliance.energy.battery import BatteryModel, BatteryRun, simulate
from appliance.energy.horizon import Horizon, average_onto, build_horizon, forecast_end
from appliance.energy.uncertainty import planning_pv_w
from appliance.state import FloatArray, Job, JobKind, JobState, PowerForecast

Quantile = Literal["p10", "p50", "p90"]
PLANNED_STATES = (JobState.PENDING, JobState.ADMITTED, JobState.RUNNING, JobState.SUSPENDED)
FLOOR_EPS_WH = 1e-6


@dataclass(frozen=True)
class PlanJob:
    """A deferrable or sponge job as the planner sees it."""

    id: str
    kind: JobKind
    power_w: float
    remaining_wh: float | None  # None: sponge without a size (soaks surplus forever)
    max_w: FloatArray  # per slot, as a slot average: 0 outside its window, reduced in the slot
    # of its deadline, where it may run only the ``frac`` of the slot before the deadline
    frac: FloatArray
    value: float
    candidate: bool = False  # under admission, or best effort: missed before any promised job
    best_effort: bool = False  # not promised: missed even before the job under admission
    fill_rank: tuple[int, float] = (1, 0.0)  # sponges sharing sun: running first, then oldest
    energy_wh: float | None = None  # the whole job (None: as remaining): only a finished job counts


@dataclass(frozen=True)
class PlanningProblem:
    horizon: Horizon
    battery: BatteryModel
    soc0_wh: float
    pv_w: FloatArray
    essential_w: FloatArray  # base load + critical services
    node_w: FloatArray  # node power left for deferrable and sponge jobs
    floor_wh: FloatArray  # hard SoC floor: the reserve (+ margin) where jobs may run; in a dip
    # the critical services' band: promised work may deepen a dip down to ``idle_floor_wh``
    dip_wh: FloatArray  # essentials-only SoC where it is under the reserve (NaN elsewhere):
    # deepening it costs ``planner.deepen_penalty_per_kwh`` (promised work pays, sponges do not)
    strict_floor_wh: FloatArray  # min(reserve, essentials-only SoC): no deepening at all
    idle_floor_wh: FloatArray  # where no job runs: the essentials' SoC (at most the reserve)
    # lowered by ``planner.deepen_share`` of the way to the empty battery + margin
    essential_unserved_w: FloatArray  # what even essentials-only cannot get (battery empty)
    jobs: tuple[PlanJob, ...]
    critical: tuple[tuple[str, float], ...]  # (job id, power) of always-on services
    heat_value: FloatArray  # value per kWh of compute energy, per slot
    quantile: Quantile
    config: SunboxConfig
    # The job under admission yields to best-effort work as well: "does it fit in what accepted
    # work leaves?" (best effort on expected sun), not "may it take that work's sun?" (a promise).
    candidate_last: bool = False

    @property
    def dt_h(self) -> FloatArray:
        return self.horizon.dt_h


def default_base_load_w(config: SunboxConfig) -> float:
    """What is always on: the box's own loads and the compute node idling."""
    return config.loads.base_w + config.compute.idle_w


def node_range_w(config: SunboxConfig) -> float:
    return config.compute.max_w - config.compute.idle_w


def _per_slot(
    horizon: Horizon, values: float | Sequence[float] | FloatArray | None, default: float
) -> FloatArray:
    """A scalar, or an array on the fine grid from ``horizon.start``, averaged per slot."""
    if values is None:
        return np.full(horizon.n, float(default))
    if np.isscalar(values):
        return np.full(horizon.n, float(values))  # type: ignore[arg-type]
    arr = np.asarray(values, dtype=float)
    fine = np.zeros(horizon.n_fine)
    m = min(len(arr), horizon.n_fine)
    fine[:m] = arr[:m]
    sums = np.bincount(horizon.fine_to_slot, weights=fine, minlength=horizon.n)
    counts = np.bincount(horizon.fine_to_slot, minlength=horizon.n)
    return np.asarray(sums / np.maximum(counts, 1), dtype=float)


def build_problem(
    now: datetime,
    forecast: PowerForecast,
    soc_pct: float,
    jobs: Sequence[Job],
    config: SunboxConfig,
    *,
    quantile: Quantile = "p10",
    base_load_w: float | Sequence[float] | FloatArray | None = None,
    heat_value_per_kwh: Sequence[float] | FloatArray | None = None,
    candidate_id: str | None = None,
    candidate_last: bool = False,
) -> PlanningProblem:
    pc = config.planner
    step_s = pc.slot_min * 60
    horizon = build_horizon(now, pc.horizon_h, step_s, pc.fine_h, forecast_end(forecast), pc.coarse_h)
    battery = BatteryModel.from_config(config.battery)
    soc0 = min(max(battery.wh(soc_pct), 0.0), battery.max_wh)
    pv = average_onto(horizon, forecast, planning_pv_w(
        forecast, quantile, day_correlation=pc.day_correlation, day_share=pc.day_share, lon_deg=config.site.lon))
    base = _per_slot(horizon, base_load_w, default_base_load_w(config))
    heat = _per_slot(horizon, heat_value_per_kwh, 0.0)

    live = [j for j in jobs if j.state in PLANNED_STATES]
    finish_started = candidate_id is not None and pc.finish_started_best_effort
    critical = [(j.id, float(j.power_w)) for j in live if j.kind is JobKind.CRITICAL]
    crit_w = sum(p for _, p in critical)
    essential = base + crit_w
    node = np.full(horizon.n, max(0.0, node_range_w(config) - crit_w))
    # The essentials alone give the highest SoC path: where even it is under the reserve, the
    # battery belongs to the essentials (no job may run), and jobs must not deepen that dip.
    ess_run = simulate(battery, soc0, pv - essential, horizon.dt_h)
    guard_wh, guard_unserved_w = _guard_path(horizon, forecast, quantile, battery, soc0, essential,
                                             ess_run, config)
    lift = ess_run.soc_wh - guard_wh  # >= 0: what the plan's sun adds to the guarded path
    keep_wh = min(
        battery.reserve_wh + battery.capacity_wh * pc.reserve_margin_pct / 100.0, battery.max_wh
    )
    above = guard_wh >= keep_wh
    runnable = above & np.concatenate(([soc0 >= keep_wh], above[:-1]))
    dip_wh = np.where(above, np.nan, ess_run.soc_wh)
    # Under the reserve only the essentials draw; promised work done before may lower that dip,
    # but never so far that the critical services would lose power in this scenario.
    band_wh = battery.min_wh + battery.capacity_wh * pc.reserve_margin_pct / 100.0
    ref = np.minimum(guard_wh, keep_wh)
    top = battery.max_wh - FLOOR_EPS_WH
    idle = np.minimum(
        np.where(ref > band_wh, ref - pc.deepen_share * (ref - band_wh), ref) - FLOOR_EPS_WH + lift, top)
    floor = np.where(above, keep_wh - FLOOR_EPS_WH, idle)
    strict = np.minimum(np.minimum(keep_wh, guard_wh) - FLOOR_EPS_WH + lift, top)

    planned: list[PlanJob] = []
    whole = np.ones(horizon.n)  # every slot usable: shared by the jobs without a deadline (read only)
    whole.flags.writeable = False
    for job in live:
        if job.kind is JobKind.CRITICAL:
            continue
        remaining = job.remaining_wh
        if remaining is not None and remaining <= 1e-9:
            continue
        frac = whole
        # under admission, best-effort work that has started counts as promised: the new job
        # may not take its sun and leave it half done (the energy spent on it lost)
        kept = finish_started and job.best_effort and job.id != candidate_id and job.energy_used_wh > 0.0
        if job.kind is JobKind.DEFERRABLE:
            if job.deadline is None or job.deadline <= horizon.now:
                continue
            frac = horizon.usable_fraction(job.deadline)
        planned.append(
            PlanJob(
                id=job.id,
                kind=job.kind,
                power_w=float(job.power_w),
                remaining_wh=remaining,
                energy_wh=job.energy_wh,
                max_w=float(job.power_w) * frac * runnable,
                frac=frac,
                value=float(job.value),
                candidate=job.id == candidate_id or (job.best_effort and not kept),
                best_effort=job.best_effort and job.id != candidate_id and not kept,
                fill_rank=(0 if job.state is JobState.RUNNING else 1,
                           job.submitted_at.timestamp() if job.submitted_at is not None else 0.0),
            )
        )
    return PlanningProblem(
        horizon=horizon,
        battery=battery,
        soc0_wh=soc0,
        pv_w=pv,
        essential_w=essential,
        node_w=node,
        floor_wh=floor,
        dip_wh=dip_wh,
        strict_floor_wh=strict,
        idle_floor_wh=idle,
        essential_unserved_w=guard_unserved_w,
        jobs=tuple(planned),
        critical=tuple(critical),
        heat_value=heat,
        quantile=quantile,
        config=config,
        candidate_last=candidate_last,
    )


def _guard_path(horizon: Horizon, forecast: PowerForecast, quantile: Quantile, battery: BatteryModel,
                soc0_wh: float, essential_w: FloatArray, planned: BatteryRun,
                config: SunboxConfig) -> tuple[FloatArray, FloatArray]:
    """SoC and unserved power of the essentials-only path the critical services' night is
    guarded on.

    Work is planned and promised on the sun at the level the box's own record calibrated
    (``PowerForecast.running_levels``); where that is bolder than the nominal quantile (a site
    whose P10 proved too cautious), the essentials' night is still judged on the nominal sun:
    more promises, never a thinner night for the file share. Where no job may run and where a
    dip may be deepened is decided on the lower of the two paths, and those floors are carried
    into the plan's sun by the gap between them (``lift``), so the plan keeps them in both."""
    if forecast.running_levels.get(quantile) is None:
        return planned.soc_wh, planned.unserved_w
    pc = config.planner
    nominal = average_onto(horizon, forecast, planning_pv_w(
        replace(forecast, running_levels={}), quantile, day_correlation=pc.day_correlation,
        day_share=pc.day_share, lon_deg=config.site.lon))
    run = simulate(battery, soc0_wh, nominal - essential_w, horizon.dt_h)
    return np.minimum(run.soc_wh, planned.soc_wh), np.maximum(run.unserved_w, planned.unserved_w)
