"""The replay loop: the box's own control cycle, planner, admission and runner on a virtual
clock, stepping the simulator's plant driven by measured irradiance.

Policies:
- sunbox: the box as it runs live — its forecaster learns from the measured PV as it goes
  (offline: clear sky x learned climatology, nowcast), P10 admission, rolling plan.
- perfect: the same planner and admission given the actual future PV as its forecast.
- threshold: a naive SoC gate, no forecast (admit everything; run while SoC > 50 %, stop all
  but critical at the reserve).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from appliance.clock import ManualClock, floor_time
from appliance.config import SunboxConfig
from appliance.control.cycle import ControlCycle, Policy, learning_sample
from appliance.control.heat_value import heat_value_per_kwh
from appliance.energy import AdmissionContext, PlanOutcome, RollingPlanner, decide, promotions, running_calibration
from appliance.energy.load_estimate import EssentialLoad
from appliance.heat.ledger import HeatLedger
from appliance.heat.schedule import ComfortSchedule
from appliance.replay.metrics import ReplayMetrics
from appliance.replay.weather import PreparedWeather, prepare
from appliance.sim.plant import Plant
from appliance.sim.readings import site_state
from appliance.solar.forecaster import Forecaster
from appliance.state import Job, JobKind, JobState, PowerForecast
from appliance.store import Store
from appliance.store.jobs import MemoryJobs
from appliance.workloads.runner import JobRunner
from appliance.workloads.simulated import SimulatedExecutor


class ReplayError(ValueError):
    """A replay that cannot run as asked (no data in range, bad options)."""


@dataclass(frozen=True)
class ReplayOptions:
    start: datetime
    days: float
    policy: Policy = "sunbox"
    heat_routing: bool = True
    step_s: int = 300
    warmup_days: float = 0.0  # run before ``start`` without counting (the forecaster learns)


@dataclass
class _Counters:
    last: dict[str, float] = field(default_factory=dict)

    def delta(self, plant: Plant) -> dict[str, float]:
        c = plant.snapshot.counters
        now = {"pv_wh": c.pv_wh, "pv_available_wh": c.pv_available_wh, "curtailed_wh": c.curtailed_wh,
               "unmet_wh": c.unmet_wh, "charge_wh": c.charge_wh, "discharge_wh": c.discharge_wh}
        out = {k: v - self.last.get(k, 0.0) for k, v in now.items()}
        self.last = now
        return out


class Replay:
    def __init__(self, config: SunboxConfig, weather: pd.DataFrame, jobs: Sequence[Job],
                 options: ReplayOptions, forecast_weather: pd.DataFrame | None = None) -> None:
        """``weather`` is what the sky did (drives the plant); ``forecast_weather`` an optional
        forecast feed (e.g. NWP) the sunbox policy's forecaster is given, as a link would bring."""
        self.config = config
        self.opt = options
        first = options.start - timedelta(days=options.warmup_days)
        self.count_from = options.start
        self.end = options.start + timedelta(days=options.days)
        self.prepared: PreparedWeather = prepare(weather, first, self.end, options.step_s)
        if not self.prepared.segments:
            raise ReplayError("no weather data in the replay range")
        self.clock = ManualClock(self.prepared.segments[0].start)
        self.plant = Plant(config, self.clock.now(), weather=self.prepared.frame)
        horizon = timedelta(hours=config.planner.horizon_h)
        self.plant.prepare(self.clock.now(), self.end + horizon)
        self.store = Store(":memory:")
        self.store.jobs = MemoryJobs()  # replay owns its jobs alone
        self.executor = SimulatedExecutor(self.clock)
        self.runner = JobRunner(self.store, self.executor, self.clock)
        self.cycle = ControlCycle(config, policy=options.policy, heat_routing=options.heat_routing,
                                  period_s=options.step_s)
        self.rolling = RollingPlanner(config)
        self.forecaster: Forecaster | None = None
        if options.policy == "sunbox":
            self.forecaster = Forecaster(config, self.clock,
                                         calibration=running_calibration.for_config(config))
            self.forecaster.precompute(self.clock.now(), self.end + horizon)
            if forecast_weather is not None:
                self.forecaster.set_weather(forecast_weather)
        first_at = self.prepared.segments[0].start
        # Work that arrived before the replay is not ours, except critical services: a file share
        # started before the window is still there, and asks to be kept up from its first step.
        started = [replace(j, submitted_at=first_at) for j in jobs
                   if j.kind is JobKind.CRITICAL and j.submitted_at is not None and j.submitted_at < first_at]
        self.pending = started + sorted(
            (j for j in jobs if j.submitted_at is not None and j.submitted_at >= first_at),
            key=lambda j: j.submitted_at or first_at)
        self.metrics = ReplayMetrics(config.battery.reserve_pct, config.battery.capacity_wh)
        self.ledger = HeatLedger(comfort_floor_c=config.heat.setpoint_c - config.heat.band_c)
        self.counters = _Counters()
        self.critical_requested = 0
        self.schedule = ComfortSchedule.from_config(config.heat, config.site.tz)
        self.essential = EssentialLoad.from_config(config)
        self._forecast: PowerForecast | None = None
        self._heat_for: PowerForecast | None = None
        self._heat_cached: np.ndarray | None = None
        self._forecast_slot: datetime | None = None

    # ------------------------------------------------------------------ forecasts
    def forecast(self, now: datetime) -> PowerForecast:
        """The policy's view of the sun from the current slot on (cached per planning slot)."""
        pc = self.config.planner
        slot = floor_time(now, pc.slot_min * 60)
        if self._forecast is not None and self._forecast_slot == slot:
            return self._forecast
        if self.forecaster is not None:
            fc = self.forecaster.forecast(now, hours=pc.horizon_h, step_min=pc.slot_min)
        else:
            fc = self._perfect(slot)
        self._forecast, self._forecast_slot = fc, slot
        return fc

    def _perfect(self, slot: datetime) -> PowerForecast:
        step = self.config.planner.slot_min * 60
        n = int(self.config.planner.horizon_h * 3600 // step)
        pv = self.plant.sky.pv_energy_per_slot_j(slot.timestamp(), step, n) / step
        return PowerForecast(issued_at=slot, start=slot, step_s=step, p10_w=pv, p50_w=pv, p90_w=pv,
                             source="perfect (actual future PV)")

    def _heat_value(self, fc: PowerForecast) -> np.ndarray | None:
        """The heat term with routing on: outdoor temperature per slot from the measured weather
        (day-ahead temperature forecasts are good to a degree or two; irradiance is the hard part).
        Computed once per forecast (admissions and re-plans in one slot share it)."""
        if not (self.config.heat.enabled and self.opt.heat_routing):
            return None
        if self._heat_for is fc:
            return self._heat_cached
        t0 = fc.start.timestamp()
        outdoor = self.plant.sky.outdoor_c_at(t0 + (np.arange(len(fc)) + 0.5) * fc.step_s)
        self._heat_for = fc
        self._heat_cached = heat_value_per_kwh(self.config, fc.start, fc.step_s, outdoor,
                                               self.plant.snapshot.room_temp_c)
        return self._heat_cached

    # ------------------------------------------------------------------ jobs
    def _arrivals(self, now: datetime, soc_pct: float, counting: bool) -> None:
        while self.pending and (self.pending[0].submitted_at or now) <= now:
            job = self.pending.pop(0)
            if self.opt.policy == "threshold":
                job = replace(job, state=JobState.ADMITTED, reason="threshold policy: admitted (no forecast)")
                admitted = True
            else:
                active = [j for j in self.runner.jobs() if j.state is not JobState.PENDING]
                fc = self.forecast(now)
                ctx = AdmissionContext(now=now, forecast=fc, soc_pct=soc_pct, admitted=active,
                                       config=self.config, base_load_w=self.essential.value_w,
                                       heat_value_per_kwh=self._heat_value(fc))
                # by the LP, as live (a greedy first try cost Lyngby 22 misses instead of 15, and
                # time: its plans were re-planned within the hour)
                decision = decide(ctx, job, explain=False)
                admitted = decision.admitted
                job = replace(job, state=JobState.ADMITTED if admitted else JobState.REJECTED,
                              reason=decision.reason, planned_start=decision.planned_start,
                              planned_end=decision.planned_end, best_effort=decision.best_effort)
                if admitted and decision.outcome is not None:
                    self.store.jobs.save(job)
                    self.rolling.adopt(decision.outcome, now, self.runner.jobs())
            self.store.jobs.save(job)
            if job.kind is JobKind.CRITICAL:
                self.critical_requested += 1
            if counting:
                self.metrics.jobs_submitted += 1
                self.metrics.jobs_admitted += int(admitted and not job.best_effort)
                self.metrics.jobs_best_effort += int(admitted and job.best_effort)

    def _skip_arrivals_until(self, moment: datetime) -> None:
        while self.pending and (self.pending[0].submitted_at or moment) < moment:
            self.pending.pop(0)
            self.metrics.jobs_skipped_in_gaps += 1

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        step = self.opt.step_s
        for seg in self.prepared.segments:
            if self.clock.now() < seg.start:
                self.plant.skip_to(seg.start)
                self.clock.set(seg.start)
                self.executor.advance()  # no work is done in a gap: the executor's clock jumps too
                self._skip_arrivals_until(seg.start)
                self._forecast = None
            while self.clock.now() + timedelta(seconds=step) <= seg.end:
                self._step(step)
        jobs = self.store.jobs.list(limit=1_000_000)
        counted = [j for j in jobs if j.submitted_at is None or j.submitted_at >= self.count_from]
        self.metrics.plans_lp = self.rolling.lp_calls
        self.metrics.plans_greedy = self.rolling.greedy_calls
        heat = self._heat_summary()
        return self.metrics.result(counted, self.end, heat, time.perf_counter() - wall0, self.prepared.gap_h,
                                   time.process_time() - cpu0)

    def _step(self, step_s: int) -> None:
        now = self.clock.now()
        counting = now >= self.count_from
        state = site_state(self.plant.snapshot, now)
        soc = float(self.plant.snapshot.soc_pct)
        self._arrivals(now, soc, counting)
        jobs = self.runner.jobs()
        if self.opt.policy != "threshold":
            due = self.rolling.due(now, soc, jobs)
            if due is not None:
                fc = self.forecast(now)
                planned = self.rolling.replan(now, fc, soc, jobs, solver=due[1], base_load_w=self.essential.value_w,
                                              heat_value_per_kwh=self._heat_value(fc))
                if self._promote(planned, jobs, now):
                    jobs = self.runner.jobs()
        node_w = self.config.compute.idle_w + self.executor.node_power_w()
        outcome = self.cycle.step(state, jobs, self.rolling.plan, node_w, self.plant.snapshot.outdoor_temp_c)
        self.runner.apply(outcome.commands)
        if counting:
            self.metrics.job_suspensions += sum(1 for c in outcome.commands if c.action == "suspend")
        job_w = self.executor.node_power_w()
        node_w = self.config.compute.idle_w + job_w
        noncritical_w, critical_want, critical_on = self._draws(jobs)
        damper = outcome.heat.damper_pct if outcome.heat is not None else 0.0
        if self.config.heat.enabled and damper != self.plant.damper_pct:
            self.plant.set_damper_pct(damper)
        snap = self.plant.step(now, step_s, node_w)
        self.essential.update(now, snap.pv_power_w, snap.battery_power_w, job_w)
        self.clock.advance(step_s)
        self.runner.poll()
        if self.forecaster is not None:
            pv, censored = learning_sample(snap.soc_pct, snap.pv_power_w, snap.battery_power_w, None,
                                           self.config)
            self.forecaster.observe_one(self.clock.now(), pv, censored=censored)
        if counting:
            delta = self.counters.delta(self.plant)
            if snap.brownout:
                critical_on = 0
            self.metrics.step(step_s, snap.soc_pct, noncritical_w, critical_want, critical_on, delta)
            if self.config.heat.enabled:
                wanted = outcome.heat.wanted if outcome.heat is not None else self._wanted(now)
                self.ledger.record(step_s, snap.compute_power_w, damper, wanted, snap.room_temp_c)
        else:
            self.counters.delta(self.plant)

    def _promote(self, outcome: PlanOutcome, jobs: Sequence[Job], now: datetime) -> bool:
        """Promise the best-effort jobs the new plan keeps, as the daemon does (without its
        lock and events: replay decides one thing at a time and keeps no event log)."""
        done = promotions(outcome, jobs, self.config, now)
        for promotion in done:
            job = self.store.jobs.get(promotion.job_id)
            assert job is not None
            self.store.jobs.save(promotion.apply(job))
            if job.submitted_at is None or job.submitted_at >= self.count_from:
                self.metrics.jobs_promoted += 1  # counted as admitted (promised) from now on
                self.metrics.jobs_admitted += 1
                self.metrics.jobs_best_effort -= 1
        return bool(done)

    def _draws(self, jobs: Sequence[Job]) -> tuple[float, int, int]:
        """Non-critical power now; critical services asked for (admitted or not: a rejected
        file share is a file share down) and how many of them run."""
        noncritical = 0.0
        critical_on = 0
        for job in jobs:
            w = self.executor.job_power_w(job.id)
            if job.kind is JobKind.CRITICAL:
                critical_on += int(w > 0)
            else:
                noncritical += w
        return float(noncritical), self.critical_requested, critical_on

    def _wanted(self, now: datetime) -> bool:
        return self.schedule.wanted(now)

    def _heat_summary(self) -> dict[str, float]:
        if not self.config.heat.enabled:
            return {"heat_delivered_wh": 0.0, "heat_used_wh": 0.0, "heat_vented_wh": 0.0,
                    "comfort_deficit_kh": 0.0, "erf": 0.0}
        d = self.ledger.as_dict()
        return {k: float(d[k]) for k in ("heat_delivered_wh", "heat_used_wh", "heat_vented_wh",
                                         "comfort_deficit_kh", "erf")}


def run_replay(config: SunboxConfig, weather: pd.DataFrame, jobs: Sequence[Job],
               options: ReplayOptions, forecast_weather: pd.DataFrame | None = None) -> dict[str, Any]:
    """Replay and return the metrics (the JSON of ``sunbox replay``)."""
    result = Replay(config, weather, jobs, options, forecast_weather).run()
    result["policy"] = options.policy
    result["heat_routing"] = "on" if options.heat_routing else "off"
    result["step_s"] = options.step_s
    result["reserve_pct"] = config.battery.reserve_pct
    return result
