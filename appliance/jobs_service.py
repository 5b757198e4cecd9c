"""The job service the CLI, the API and the daemon share: submit, decide, list, cancel.

Admission must give the same answer whether or not the daemon runs, and two submissions must
not both take the same sun: every decision happens under an inter-process lock
(``<data_dir>/admission.lock``, fcntl) on the latest published inputs (store kv: the daemon's
forecast and snapshot). Without a daemon the service computes a forecast itself (through the
``forecast_provider`` it was given) and assumes the configured initial SoC, and says so in the
reason.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.energy.admission import AdmissionContext, AdmissionDecision, decide, promotions
from appliance.energy.horizon import forecast_end
from appliance.energy.kv import FORECAST_KEY, SITE_KEYS, forecast_from_kv, soc_from_snapshot
from appliance.energy.planner import PlanOutcome
from appliance.state import Event, EventKind, Job, JobState, PowerForecast, Severity
from appliance.store import Store
from appliance.workloads.requests import JobRequest

LOCK_NAME = "admission.lock"
LIVE_MAX_AGE_S = 900.0  # a snapshot older than this is not "live"
MIN_FORECAST_AHEAD_H = 6.0
ForecastProvider = Callable[[datetime], PowerForecast]


class JobServiceError(Exception):
    """A request the service cannot carry out (unknown job, job already finished...)."""


@contextmanager
def admission_lock(data_dir: Path | str) -> Iterator[None]:
    path = Path(data_dir) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class JobService:
    def __init__(
        self,
        store: Store,
        config: SunboxConfig,
        clock: Clock,
        data_dir: Path | str,
        *,
        forecast_provider: ForecastProvider | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.data_dir = Path(data_dir)
        self.forecast_provider = forecast_provider

    # ------------------------------------------------------------------ inputs
    def context(self, now: datetime) -> AdmissionContext:
        notes: list[str] = []
        soc = self._live_soc(now)
        if soc is None:
            soc = self.config.battery.initial_soc_pct
            notes.append(f"no live data: assumed battery at {soc:.0f} %")
        forecast = self._published_forecast(now)
        if forecast is None:
            if self.forecast_provider is None:
                raise JobServiceError(
                    "no forecast published by the daemon and none can be computed here"
                )
            forecast = self.forecast_provider(now)
            notes.append(f"forecast made here from {forecast.source}")
        admitted = [j for j in self.store.jobs.active() if j.state is not JobState.PENDING]
        return AdmissionContext(
            now=now,
            forecast=forecast,
            soc_pct=soc,
            admitted=admitted,
            config=self.config,
            base_load_w=self._essential_load_w(),
            assumption="; ".join(notes),
        )

    def _essential_load_w(self) -> float | None:
        """The essentials' draw the daemon learned from its meters (None: use the nameplate)."""
        got = self.store.get_kv("box")
        value = got[0].get("essential_load_w") if got is not None else None
        return float(value) if isinstance(value, int | float) else None

    def _live_soc(self, now: datetime) -> float | None:
        for key in SITE_KEYS:
            got = self.store.get_kv(key)
            if got is None:
                continue
            data, at = got
            soc = soc_from_snapshot(data)
            if soc is not None and abs((now - at).total_seconds()) <= LIVE_MAX_AGE_S:
                return soc
        return None

    def _published_forecast(self, now: datetime) -> PowerForecast | None:
        got = self.store.get_kv(FORECAST_KEY)
        if got is None:
            return None
        try:
            fc = forecast_from_kv(got[0])
        except ValueError:
            return None
        if fc.start > now or forecast_end(fc) < now + timedelta(hours=MIN_FORECAST_AHEAD_H):
            return None
        return fc

    # ------------------------------------------------------------------ actions
    def submit(self, request: JobRequest, *, explain: bool = True) -> tuple[Job, AdmissionDecision]:
        with admission_lock(self.data_dir):
            now = self.clock.now()
            job = request.to_job(self.config, now)
            decision = decide(self.context(now), job, explain=explain)
            job = self._record(job, decision, now)
        return job, decision

    def decide_pending(self, *, explain: bool = True) -> list[tuple[Job, AdmissionDecision]]:
        """Decide jobs that reached the store undecided (e.g. from the hub), oldest first."""
        out = []
        with admission_lock(self.data_dir):
            pending = sorted(
                self.store.jobs.list([JobState.PENDING], limit=1000),
                key=lambda j: j.submitted_at or self.clock.now(),
            )
            for job in pending:
                now = self.clock.now()
                decision = decide(self.context(now), job, explain=explain)
                out.append((self._record(job, decision, now), decision))
        return out

    def _record(self, job: Job, decision: AdmissionDecision, now: datetime) -> Job:
        job = replace(
            job,
            state=JobState.ADMITTED if decision.admitted else JobState.REJECTED,
            reason=decision.reason,
            planned_start=decision.planned_start,
            planned_end=decision.planned_end,
            finished_at=None if decision.admitted else now,
            best_effort=decision.best_effort,
        )
        with self.store.transaction():
            self.store.jobs.save(job)
            self.store.events.add(
                Event(
                    at=now,
                    kind=EventKind.JOB,
                    message=f"job {job.name}: {decision.reason}",
                    source="admission",
                    severity=Severity.INFO,
                    data={
                        "job_id": job.id,
                        "action": "admit" if decision.admitted else "reject",
                        "best_effort": decision.best_effort,
                        "available_wh": decision.available_wh,
                        "earliest_deadline": decision.earliest_deadline.isoformat()
                        if decision.earliest_deadline
                        else None,
                    },
                )
            )
        return job

    def promote(self, outcome: PlanOutcome) -> list[Job]:
        """Promise the best-effort jobs the daemon's new plan keeps (``promotions``), under the
        admission lock, on the jobs as they are now: a promise made since the plan was solved
        stops it (the plan does not speak for that job; the next plan will)."""
        with admission_lock(self.data_dir):
            now = self.clock.now()
            done = []
            with self.store.transaction():
                for promotion in promotions(outcome, self.store.jobs.active(), self.config, now):
                    job = promotion.apply(self.get(promotion.job_id))
                    self.store.jobs.save(job)
                    self.store.events.add(Event(
                        at=now, kind=EventKind.JOB, message=f"job {job.name}: {promotion.reason}",
                        source="admission", severity=Severity.INFO,
                        data={"job_id": job.id, "action": "promote", "best_effort": False}))
                    done.append(job)
        return done

    def list(self, states: list[JobState] | None = None, limit: int = 500) -> list[Job]:
        return self.store.jobs.list(states, limit)

    def get(self, job_id: str) -> Job:
        job = self.store.jobs.get(job_id)
        if job is None:
            raise JobServiceError(f"no job with id '{job_id}'")
        return job

    def cancel(self, job_id: str, reason: str = "cancelled by user") -> Job:
        """Mark cancelled; the runner stops its process on its next poll."""
        with admission_lock(self.data_dir), self.store.transaction():
            job = self.get(job_id)
            if job.state.finished:
                raise JobServiceError(f"job '{job_id}' is already {job.state.value}")
            now = self.clock.now()
            job = replace(job, state=JobState.CANCELLED, reason=f"cancelled: {reason}")
            if job.started_at is None:
                job = replace(job, finished_at=now)
            self.store.jobs.save(job)
            self.store.events.add(
                Event(
                    at=now,
                    kind=EventKind.JOB,
                    message=f"job {job.name}: cancelled ({reason})",
                    source="admission",
                    data={"job_id": job.id, "action": "cancel"},
                )
            )
        return job
