"""The daemon: three loops in one asyncio process, wiring the parts together.

- control (every 1–5 s): poll devices -> SiteState -> ControlCycle (safety, plan, heat) ->
  job commands, damper and reserve writes -> telemetry, events, published snapshot.
  It never waits on the planner or a link: those run in their own tasks or threads.
- plan (checked every minute, re-planned per the rolling horizon's rules): forecast ->
  planner (in a worker thread, bounded by the solver time limit, greedy fallback) -> plan.
- housekeeping (hourly): retention, saving what the forecaster and room estimator learned.
Optional parts (sync, fleet update lock) plug in as extra loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from appliance import __version__, snapshot
from appliance.clock import Clock, SystemClock
from appliance.config import SunboxConfig
from appliance.control.cycle import ControlCycle, pv_for_learning
from appliance.control.heat_value import heat_value_per_kwh
from appliance.devices.gateway import DeviceGateway
from appliance.energy import RollingPlanner, running_calibration
from appliance.energy.kv import FORECAST_KEY, forecast_to_kv
from appliance.energy.load_estimate import EssentialLoad
from appliance.heat.ledger import HeatLedger
from appliance.heat.online import OnlineRoomEstimator
from appliance.heat.room import RoomModel
from appliance.jobs_service import JobService
from appliance.solar.chain import default_chain
from appliance.solar.forecaster import Forecaster, load_model, save_model
from appliance.state import (
    Channel,
    Event,
    EventKind,
    Mode,
    Plan,
    PowerForecast,
    Reading,
    Severity,
    SiteState,
    WriteRequest,
    WriteResult,
)
from appliance.store import Store
from appliance.workloads.executor import Executor
from appliance.workloads.requests import JobRequest
from appliance.workloads.runner import JobRunner

log = logging.getLogger("appliance.daemon")

MIN_REAL_PERIOD_S = 0.2  # at high --speed, never cycle faster than this in wall time
PLAN_CHECK_S = 60.0
HOUSEKEEPING_S = 3600.0
RESERVE_POINTS = ("802.SoCRsvMin", "124.MinRsvPct", "victron.2901")
RESERVE_REWRITE_S = 600.0
MODE_CODES = {Mode.NORMAL: 0.0, Mode.SHED: 1.0, Mode.SAFE: 2.0}
MODEM_ALWAYS_W = 10.0  # a cellular or SBD modem for alarms is afforded in any mode
ROOM_ESTIMATOR_KEY = "room_estimator"

ExtraLoop = Callable[["Daemon", asyncio.Event], Coroutine[Any, Any, None]]


def plan_to_kv(plan: Plan, reason: str) -> dict[str, Any]:
    """The plan as published for the API and TUI (W and % per slot, jobs by id)."""
    def rnd(a: np.ndarray) -> list[float]:
        return [round(float(v), 1) for v in a]

    return {
        "created_at": plan.created_at.isoformat(), "start": plan.start.isoformat(), "step_s": plan.step_s,
        "solver": plan.solver, "status": plan.status, "quantile": plan.quantile, "reason": reason,
        "soc_pct": rnd(plan.soc_pct), "pv_w": rnd(plan.pv_w), "charge_w": rnd(plan.charge_w),
        "discharge_w": rnd(plan.discharge_w), "curtail_w": rnd(plan.curtail_w),
        "heat_to_room_w": rnd(plan.heat_to_room_w) if plan.heat_to_room_w is not None else None,
        "jobs": {jid: rnd(p) for jid, p in plan.job_power_w.items()},
    }


@dataclass
class DaemonStats:
    cycles: int = 0
    last_cycle_s: float = 0.0
    max_cycle_s: float = 0.0
    plans: int = 0
    started_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Daemon:
    def __init__(
        self,
        config: SunboxConfig,
        store: Store,
        clock: Clock,
        gateway: DeviceGateway,
        executor: Executor,
        data_dir: Path | str,
        *,
        forecast_weather: pd.DataFrame | None = None,
        extra_loops: list[ExtraLoop] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.gateway = gateway
        self.data_dir = Path(data_dir)
        self.weather: pd.DataFrame | None = None  # the latest weather FORECAST a link brought
        self.cycle = ControlCycle(config)
        self.runner = JobRunner(store, executor, clock)
        self.rolling = RollingPlanner(config)
        self.forecaster: Forecaster = load_model(store, config, clock, chain=default_chain(),
                                                calibration=running_calibration.for_config(config))
        self.jobs = JobService(store, config, clock, self.data_dir, forecast_provider=self._forecast_now)
        self.essential = EssentialLoad.from_config(config)
        self.heat_ledger = HeatLedger(comfort_floor_c=config.heat.setpoint_c - config.heat.band_c)
        self.room_estimator = self._load_room_estimator()
        self.state: SiteState | None = None
        self.forecast: PowerForecast | None = None
        self.plan: Plan | None = None
        self.stats = DaemonStats()
        self.extra_loops = list(extra_loops or [])
        self._alarms: set[str] = set()
        self._damper_written: float | None = None
        self._reserve_written_mono = float("-inf")
        self._last_telemetry_mono = float("-inf")
        self._last_cycle_mono: float | None = None
        self._wake_plan = asyncio.Event()
        self._wall = SystemClock()  # only to let other processes follow a fast demo clock
        self._writing = 0  # device writes in progress (the fleet update lock waits for them)
        self._background: set[asyncio.Task[None]] = set()
        self._woke_first_plan = False
        if forecast_weather is not None:
            self.set_forecast_weather(forecast_weather)

    # ------------------------------------------------------------------ public (API, TUI, CLI)
    @property
    def mode(self) -> Mode:
        return self.cycle.safety.mode

    def node_power_w(self) -> float:
        """What the compute node draws now: idle plus the jobs (used when there is no meter)."""
        return self.config.compute.idle_w + self.runner.node_power_w()

    def writes_in_progress(self) -> bool:
        return self._writing > 0

    def set_forecast_weather(self, frame: pd.DataFrame) -> None:
        """A weather forecast (field-data frame) from a link or a file: the forecaster weighs it by
        how well such feeds did before, and the heat planner reads its outdoor temperature.
        When the PV chain runs in a worker process, the feed is converted off the event loop and
        taken once converted (the control loop never waits for it)."""
        if not self.forecaster.chain.in_process:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                task = loop.create_task(self._set_weather_off_loop(frame))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
                return
        self._take_weather(frame, None)

    async def _set_weather_off_loop(self, frame: pd.DataFrame) -> None:
        try:
            indices = await asyncio.to_thread(self.forecaster.weather_indices, frame,
                                              step_min=self.config.planner.slot_min)
        except Exception as exc:  # noqa: BLE001 - a bad feed must not stop the box
            self._event(EventKind.PLAN, f"weather forecast not used: {exc}", Severity.WARNING, source="forecast")
            return
        self._take_weather(frame, indices)

    def _take_weather(self, frame: pd.DataFrame, indices: dict[float, tuple[int, np.ndarray]] | None) -> None:
        self.forecaster.set_weather(frame, indices)
        self.weather = frame if self.weather is None else frame.combine_first(self.weather)
        self._wake_plan.set()
        self._event(EventKind.PLAN, f"weather forecast received: {len(frame)} rows from "
                    f"{frame.index[0].isoformat()} to {frame.index[-1].isoformat()}", source="forecast")

    def modem_allowance_w(self) -> float:
        """Watts a link modem may draw now (sync asks before bringing a link up).

        Outside normal mode only a small modem (alarms over cellular/SBD) is afforded. In normal
        mode a comfortable battery affords any modem; near the reserve, only what the plan would
        otherwise curtail or put into the battery in this slot."""
        small = MODEM_ALWAYS_W
        if self.mode is not Mode.NORMAL or self.state is None:
            return small
        soc = self.state.fresh(Channel.SOC_PCT.value)
        bat = self.config.battery
        if soc is None:
            return small
        if soc >= bat.reserve_pct + 2 * self.config.control.reserve_margin_pct:
            return float("inf")
        plan = self.plan
        k = plan.slot_index(self.clock.now()) if plan is not None else None
        if plan is None or k is None:
            return small
        return max(small, float(plan.curtail_w[k] + plan.charge_w[k]))

    def submit_job(self, request: JobRequest) -> Any:
        job, decision = self.jobs.submit(request)
        self._wake_plan.set()
        return job, decision

    def cancel_job(self, job_id: str, reason: str = "cancelled by user") -> Any:
        job = self.jobs.cancel(job_id, reason)
        self._wake_plan.set()
        return job

    async def submit_job_async(self, request: JobRequest) -> Any:
        """``submit_job`` for callers in the event loop (the API): admission solves an LP, so it
        runs in a worker thread; the planner is woken back in the loop (Event is not thread-safe)."""
        job, decision = await asyncio.to_thread(self.jobs.submit, request)
        self._wake_plan.set()
        return job, decision

    async def cancel_job_async(self, job_id: str, reason: str = "cancelled by user") -> Any:
        """``cancel_job`` off the loop: it waits for the admission lock a submission may hold."""
        job = await asyncio.to_thread(self.jobs.cancel, job_id, reason)
        self._wake_plan.set()
        return job

    def set_safe_mode(self, on: bool, who: str) -> None:
        """A technician's manual safe mode: held until released, as any other safe-mode reason."""
        self.cycle.safety.forced_reason = f"manual safe mode set by {who}" if on else None
        self._event(EventKind.MODE, f"manual safe mode {'set' if on else 'released'} by {who}",
                    Severity.WARNING if on else Severity.INFO, source="technician")

    async def write_setpoint(self, request: WriteRequest, who: str) -> WriteResult:
        """A technician's write: the same bounded writer and event as the box's own writes."""
        return await self._write(WriteRequest(request.device, request.point, request.value,
                                              f"{request.reason} (by {who})"))

    # ------------------------------------------------------------------ run
    def control_period_s(self) -> float:
        return max(self.config.control.period_s, self.clock.speed * MIN_REAL_PERIOD_S)

    async def run(self, stop: asyncio.Event) -> None:
        self.stats.started_at = self.clock.now()
        for ev in self.runner.recover():
            log.info("%s", ev.message)
        self._event(EventKind.SYSTEM, f"daemon started (sunbox {__version__}, pid {os.getpid()}, "
                    f"clock x{self.clock.speed:g})")
        try:
            await self._grow_tables(self.clock.now())
        except Exception:  # noqa: BLE001 - the plan loop tries again; the control loop does not need it
            log.exception("clear-sky table not ready")
        tasks = [
            asyncio.create_task(self._loop(stop, self.control_once, self.control_period_s), name="control"),
            asyncio.create_task(self._plan_loop(stop), name="plan"),
            asyncio.create_task(self._loop(stop, self.housekeeping_once, lambda: HOUSEKEEPING_S),
                                name="housekeeping"),
            *(asyncio.create_task(loop(self, stop), name=getattr(loop, "__name__", "extra"))
              for loop in self.extra_loops),
        ]
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.shutdown()

    async def _loop(self, stop: asyncio.Event, once: Callable[[], Awaitable[None]],
                    period: Callable[[], float]) -> None:
        while not stop.is_set():
            started = self.clock.monotonic()
            try:
                await once()
            except Exception:  # noqa: BLE001 - one bad cycle must not kill the box
                log.exception("%s failed", getattr(once, "__name__", "loop"))
                self._event(EventKind.SYSTEM, f"{getattr(once, '__name__', 'loop')} failed; continuing",
                            Severity.WARNING)
            elapsed = self.clock.monotonic() - started
            await self._sleep(stop, max(0.0, period() - elapsed))

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds / self.clock.speed)

    async def shutdown(self) -> None:
        """Running jobs are suspended (they resume by plan after a restart); learning is saved."""
        for job in self.runner.jobs():
            if self.runner.executor.known(job.id):
                with contextlib.suppress(Exception):
                    self.runner.executor.stop(job.id)
        self._save_learning()
        await self.gateway.close()
        self._event(EventKind.SYSTEM, "daemon stopped")

    # ------------------------------------------------------------------ control loop
    async def control_once(self) -> None:
        wall0 = asyncio.get_running_loop().time()
        state = await self.gateway.poll()
        now = state.at
        node_w = self.node_power_w()
        if state.fresh(Channel.COMPUTE_POWER_W.value) is None:
            state = state.with_readings({Channel.COMPUTE_POWER_W.value: Reading(
                node_w, now, stale_after_s=self.config.control.stale_after_s, source="node-model")})
        outdoor = self._outdoor_c(state, now)
        self._track_alarms(state)
        outcome = self.cycle.step(state, self.runner.jobs(), self.plan, node_w, outdoor)
        verdict = outcome.verdict
        if verdict.changed:
            sev = Severity.INFO if verdict.mode is Mode.NORMAL else Severity.WARNING
            self._event(EventKind.MODE, f"{verdict.previous} -> {verdict.mode}: {verdict.reason}", sev,
                        source="safety", data={"from": str(verdict.previous), "to": str(verdict.mode)})
        if verdict.critical_changed:
            self._event(EventKind.MODE, ("critical services allowed again" if verdict.critical_allowed
                                         else "critical services paused: battery near BMS cut-off"),
                        Severity.WARNING, source="safety")
        self.runner.apply(outcome.commands)
        self.runner.poll()
        dt_s = 0.0 if self._last_cycle_mono is None else self.clock.monotonic() - self._last_cycle_mono
        self._last_cycle_mono = self.clock.monotonic()
        if outcome.heat is not None:
            for ev in outcome.heat.events:
                self.store.events.add(ev)
            await self._actuate_damper(outcome.heat.damper_pct, outcome.heat.reason)
            room_c = state.fresh(Channel.ROOM_TEMP_C.value)
            self.heat_ledger.record(dt_s, node_w, outcome.heat.damper_pct, outcome.heat.wanted, room_c)
            if room_c is not None and outdoor is not None:
                before = self.room_estimator.status
                self.room_estimator.add(now, room_c, outdoor, outcome.heat.heat_to_room_w(node_w))
                if self.room_estimator.status != before and self.room_estimator.status.startswith("refined"):
                    self._event(EventKind.HEAT, f"room model {self.room_estimator.status}", source="heat")
        await self._keep_reserve(state)
        self.essential.update(now, state.fresh(Channel.PV_POWER_W.value),
                              state.fresh(Channel.BATTERY_POWER_W.value), self.runner.node_power_w())
        pv, censored = pv_for_learning(state, self.config)
        self.forecaster.observe_one(now, pv, censored=censored)
        self.state = state
        if not self._woke_first_plan and state.fresh(Channel.SOC_PCT.value) is not None:
            self._woke_first_plan = True
            self._wake_plan.set()  # the first plan as soon as there is a live SoC, not a minute on
        self._record(state, node_w)
        wall = asyncio.get_running_loop().time() - wall0
        self.stats.cycles += 1
        self.stats.last_cycle_s = wall
        self.stats.max_cycle_s = max(self.stats.max_cycle_s, wall)

    def _track_alarms(self, state: SiteState) -> None:
        current = {f"{a.source}:{a.code}": a for a in state.alarms}
        for key in sorted(set(current) - self._alarms):
            a = current[key]
            self._event(EventKind.ALARM, a.message, a.severity, source=a.source, data={"code": a.code})
        for key in sorted(self._alarms - set(current)):
            self._event(EventKind.ALARM, f"cleared: {key}", Severity.INFO, source=key.split(":")[0])
        self._alarms = set(current)

    async def _actuate_damper(self, pct: float, reason: str) -> None:
        device = self.config.heat.damper
        if device is None or pct == self._damper_written:
            return
        result = await self._write(WriteRequest(device, Channel.DAMPER_PCT.value, pct, reason))
        if result.written:
            self._damper_written = pct

    async def _keep_reserve(self, state: SiteState) -> None:
        """The reserve written into the BMS/inverter: a hardware backstop behind our own rules."""
        if not self.config.control.write_reserve_to_bms or self.mode is Mode.SAFE:
            return  # in safe mode the device's data is not trusted enough to act on
        if self.clock.monotonic() - self._reserve_written_mono < RESERVE_REWRITE_S:
            return
        want = self.config.battery.reserve_pct
        have = state.fresh(Channel.BATTERY_RESERVE_PCT.value)
        if have is not None and abs(have - want) < 0.5:
            return
        if have is None and self._reserve_written_mono > float("-inf"):
            return  # the device does not report its reserve: written once at start, not on every cycle
        self._reserve_written_mono = self.clock.monotonic()
        for dev in self.config.devices:
            for point in RESERVE_POINTS:
                if point in dev.limits:
                    why = ("startup: hold the configured reserve in the BMS" if have is None else
                           f"device reserve {have:g} % differs from the configured {want:g} %")
                    await self._write(WriteRequest(dev.name, point, want, why))

    async def _write(self, request: WriteRequest) -> WriteResult:
        self._writing += 1
        try:
            result = await self.gateway.write(request)
        finally:
            self._writing -= 1
        sev = Severity.INFO if result.written else Severity.WARNING
        verb = "wrote" if result.written else "did not write"
        self._event(EventKind.WRITE, f"{verb} {request.device}.{request.point} = {request.value:g}: {result.reason}",
                    sev, source=request.device,
                    data={"point": request.point, "requested": request.value, "read_back": result.read_back,
                          "written": result.written})
        return result

    def _record(self, state: SiteState, node_w: float) -> None:
        now = state.at
        daemon_info = {"pid": os.getpid(), "version": __version__, "speed": self.clock.speed,
                       "started_at": self.stats.started_at.isoformat() if self.stats.started_at else None,
                       "cycles": self.stats.cycles, "last_cycle_s": round(self.stats.last_cycle_s, 4),
                       "heartbeat": now.isoformat()}
        extra = {"node_power_w": node_w, "essential_load_w": round(self.essential.value_w, 1),
                 "heat": self.heat_ledger.as_dict(),
                 "damper_pct": self._damper_written,
                 "critical_allowed": self.cycle.safety.critical_allowed}
        snapshot.publish(self.store, snapshot.from_state(state, self.mode, self.cycle.safety.reason,
                                                         daemon_info, extra), wall_at=self._wall.now())
        mono = self.clock.monotonic()
        if mono - self._last_telemetry_mono >= self.config.control.telemetry_interval_s:
            self._last_telemetry_mono = mono
            values: dict[str, float | None] = dict(state.values())
            values["mode_code"] = MODE_CODES[self.mode]
            values["node_power_w"] = node_w
            values["cycle_time_s"] = self.stats.last_cycle_s
            self.store.telemetry.record(now, values)

    def _outdoor_c(self, state: SiteState, now: datetime) -> float | None:
        """Outdoor temperature from the configured source, the other one as a fallback."""
        source = self.config.heat.outdoor_source
        if source == "none":
            return None
        sensor = state.fresh(Channel.OUTDOOR_TEMP_C.value)
        weather = self._weather_outdoor(now)
        first, second = (sensor, weather) if source == "sensor" else (weather, sensor)
        return first if first is not None else second

    def _weather_outdoor(self, now: datetime) -> float | None:
        if self.weather is None or "temp_air_c" not in self.weather:
            return None
        col = self.weather["temp_air_c"].dropna()
        if col.empty:
            return None
        idx = col.index.get_indexer([pd.Timestamp(now)], method="nearest")[0]
        if abs((col.index[idx] - pd.Timestamp(now)).total_seconds()) > 3 * 3600:
            return None
        return float(col.iloc[idx])

    # ------------------------------------------------------------------ plan loop
    async def _grow_tables(self, now: datetime) -> None:
        """Compute what the forecaster's clear-sky tables lack, off the event loop (in the daemon
        a worker process does it, see ``appliance.solar.chain``): no cycle waits on the PV chain."""
        fc = self.forecaster
        for step, t0_s, n in fc.table_needs(now, self.config.planner.horizon_h, self.config.planner.slot_min):
            block = await asyncio.to_thread(fc.chain.clear_block, fc.spec, t0_s, n, step)
            fc.adopt_block(block)

    def _forecast_now(self, now: datetime) -> PowerForecast:
        return self.forecaster.forecast(now, hours=self.config.planner.horizon_h,
                                        step_min=self.config.planner.slot_min)

    async def _plan_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.plan_once()
            except Exception:  # noqa: BLE001
                log.exception("planning failed")
                self._event(EventKind.PLAN, "planning failed; keeping the previous plan", Severity.WARNING)
            self._wake_plan.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_plan.wait(), timeout=PLAN_CHECK_S / self.clock.speed)

    async def plan_once(self, force: str | None = None) -> Plan | None:
        state = self.state
        if state is None:
            return None
        soc = state.fresh(Channel.SOC_PCT.value)
        if soc is None:
            return None  # never plan on stale data; the control loop is already in safe mode
        decided = await asyncio.to_thread(self.jobs.decide_pending)  # waits on the admission lock
        now = self.clock.now()
        jobs = self.runner.jobs()
        due = self.rolling.due(now, soc, jobs)
        if force is not None:
            due = (force, "auto")
        if due is None and not decided:
            return self.plan
        reason, solver = due if due is not None else ("new jobs decided", "auto")
        await self._grow_tables(now)
        forecast = self._forecast_now(now)
        self.forecast = forecast
        self.store.put_kv(FORECAST_KEY, forecast_to_kv(forecast), now)
        heat_w = self._heat_value(forecast, state)
        outcome = await asyncio.to_thread(
            self.rolling.replan, now, forecast, soc, jobs, solver=solver,
            base_load_w=self.essential.value_w,
            heat_value_per_kwh=heat_w,
        )
        self.plan = outcome.plan
        self.stats.plans += 1
        self.store.put_kv("plan", plan_to_kv(outcome.plan, reason), now)
        self._event(EventKind.PLAN, f"re-planned ({reason}): {outcome.plan.solver}, {outcome.plan.status}, "
                    f"{len(outcome.plan.job_power_w)} job(s)", source="planner",
                    data={"solver": outcome.plan.solver, "reason": reason})
        # then best-effort work the plan keeps is promised (after the plan is out: a failure here
        # is logged by the loop and costs the promotion, not the plan)
        await asyncio.to_thread(self.jobs.promote, outcome)
        return outcome.plan

    def _heat_value(self, forecast: PowerForecast, state: SiteState) -> np.ndarray | None:
        """Outdoor forecast per slot: the weather feed where it has one, else persistence."""
        outdoor_now = state.fresh(Channel.OUTDOOR_TEMP_C.value)
        fallback = outdoor_now if outdoor_now is not None else self.config.heat.setpoint_c
        outdoor = np.array([w if (w := self._weather_outdoor(t)) is not None else fallback
                            for t in forecast.times()], dtype=float)
        return heat_value_per_kwh(self._heat_config(), forecast.start, forecast.step_s, outdoor,
                                  state.fresh(Channel.ROOM_TEMP_C.value))

    def _heat_config(self) -> SunboxConfig:
        """The config with the room as the box has learned it from its own sensors, once the
        online estimate is confident (1R1C rooms; a fitted 2R2C stays as configured)."""
        heat = self.config.heat
        est = self.room_estimator
        if not est.status.startswith("refined") or heat.room_r2_k_per_w is not None:
            return self.config
        learned = heat.model_copy(update={"room_r_k_per_w": est.model.r_k_per_w,
                                          "room_c_j_per_k": est.model.c_j_per_k})
        return self.config.model_copy(update={"heat": learned})

    # ------------------------------------------------------------------ housekeeping
    async def housekeeping_once(self) -> None:
        st = self.config.store
        now = self.clock.now()
        await asyncio.to_thread(self.store.telemetry.rollup, now, st.raw_keep_h * 3600,
                                st.minute_keep_days * 86400, st.quarter_keep_days * 86400)
        self.store.events.prune(now - timedelta(days=st.events_keep_days))
        self._save_learning()

    def _save_learning(self) -> None:
        now = self.clock.now()
        with contextlib.suppress(Exception):
            save_model(self.store, self.forecaster, now)
        self.store.put_kv(ROOM_ESTIMATOR_KEY, self.room_estimator.to_dict(), now)

    def _load_room_estimator(self) -> OnlineRoomEstimator:
        est = OnlineRoomEstimator(RoomModel.from_config(self.config.heat))
        got = self.store.get_kv(ROOM_ESTIMATOR_KEY)
        if got is not None:
            with contextlib.suppress(Exception):
                est.restore(got[0])
        return est

    # ------------------------------------------------------------------ events
    def _event(self, kind: EventKind, message: str, severity: Severity = Severity.INFO, *,
               source: str = "daemon", data: dict[str, Any] | None = None) -> Event:
        return self.store.events.add(Event(self.clock.now(), kind, message, source, severity, data or {}))
