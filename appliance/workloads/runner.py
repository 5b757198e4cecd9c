"""Apply the control cycle's JobCommands to an executor and keep the jobs table true.

The store's jobs table is the one truth shared with the CLI and the API: a job cancelled there
by another process is stopped here on the next poll, and a row is never written back over a
cancellation. Every action becomes an event with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from appliance.clock import Clock
from appliance.state import Event, EventKind, Job, JobCommand, JobKind, JobState, Severity
from appliance.store import Store
from appliance.workloads.executor import Executor, ExecutorError, JobProgress

SOURCE = "workloads"
MISS_TOL_WH = 0.5
VERBS = {
    "start": "started",
    "resume": "resumed",
    "suspend": "suspended",
    "cap": "capped",
    "stop": "stopped",
}


class JobRunner:
    def __init__(self, store: Store, executor: Executor, clock: Clock) -> None:
        self.store = store
        self.executor = executor
        self.clock = clock
        self.power_w: dict[str, float] = {}
        self._accounted: dict[str, tuple[float, float]] = {}  # job -> (energy_wh, cpu_s) in its row

    def jobs(self) -> list[Job]:
        """Jobs still to be run or running, fresh from the store."""
        return self.store.jobs.active()

    def node_power_w(self) -> float:
        """Power above idle of all jobs at the last poll (for telemetry and the plant)."""
        return sum(self.power_w.values())

    # ------------------------------------------------------------------ commands
    def apply(self, commands: Sequence[JobCommand]) -> list[Event]:
        events: list[Event] = []
        for cmd in commands:
            job = self.store.jobs.get(cmd.job_id)
            if job is None or job.state.finished:
                continue
            try:
                job = self._act(job, cmd)
            except ExecutorError as exc:
                job = replace(
                    job,
                    state=JobState.FAILED,
                    reason=f"failed: {exc}",
                    finished_at=self.clock.now(),
                )
                self._save(job)
                events.append(
                    self._event(job, f"failed to {cmd.action}: {exc}", cmd.action, Severity.WARNING)
                )
                continue
            self._save(job)
            verb = VERBS[cmd.action]
            if cmd.action == "cap":
                verb = "uncapped" if cmd.cap_w is None else f"capped at {cmd.cap_w:.0f} W"
            events.append(self._event(job, f"{verb}: {cmd.reason}", cmd.action, cap_w=cmd.cap_w))
        return events

    def _act(self, job: Job, cmd: JobCommand) -> Job:
        now = self.clock.now()
        ex = self.executor
        if cmd.action in ("start", "resume"):
            job = replace(job, cap_w=cmd.cap_w)
            if ex.known(job.id):
                ex.resume(job.id)
                ex.cap(job.id, cmd.cap_w)
            else:
                ex.start(job)
            return replace(job, state=JobState.RUNNING, started_at=job.started_at or now)
        if cmd.action == "suspend":
            if ex.known(job.id):
                ex.suspend(job.id)
            return replace(job, state=JobState.SUSPENDED)
        if cmd.action == "cap":
            if ex.known(job.id):
                ex.cap(job.id, cmd.cap_w)
            return replace(job, cap_w=cmd.cap_w)
        if ex.known(job.id):  # stop
            ex.stop(job.id)
        return replace(
            job, state=JobState.CANCELLED, reason=f"stopped: {cmd.reason}", finished_at=now
        )

    # ------------------------------------------------------------------ polling
    def poll(self) -> list[Event]:
        """Account energy, close finished jobs, stop cancelled and missed ones."""
        now = self.clock.now()
        events: list[Event] = []
        progress = self.executor.poll()
        self.power_w = {jid: p.power_w for jid, p in progress.items() if not p.finished}
        for jid, prog in progress.items():
            if not prog.finished and self._accounted.get(jid) == (prog.energy_used_wh, prog.cpu_s):
                continue  # suspended or idle since the last poll: its row is already true
            job = self.store.jobs.get(jid)
            if job is not None:
                ev = self._account(job, prog)
                if ev is not None:
                    events.append(ev)
        for job in self.store.jobs.list([JobState.CANCELLED], limit=200):
            if self.executor.known(job.id) and job.finished_at is None:
                self.executor.stop(job.id)
                self._save(replace(job, finished_at=now), allow_cancelled=True)
                events.append(self._event(job, "stopped: cancelled", "stop"))
        for job in self.store.jobs.active():
            if job.kind is JobKind.DEFERRABLE and job.deadline is not None and job.deadline <= now:
                left = job.remaining_wh or 0.0
                if left > MISS_TOL_WH:
                    if self.executor.known(job.id):
                        self.executor.stop(job.id)
                    missed = replace(
                        job,
                        state=JobState.MISSED,
                        finished_at=now,
                        reason=(
                            f"missed: deadline passed with {left:.0f} Wh of "
                            f"{job.energy_wh:.0f} Wh still to do"
                        ),
                    )
                    self._save(missed)
                    events.append(self._event(missed, missed.reason, "stop", Severity.WARNING))
        return events

    def _account(self, job: Job, prog: JobProgress) -> Event | None:
        # ``job`` is this call's own copy from the store: updated in place (this runs for every
        # running job on every control cycle, and a year of replay is millions of cycles)
        job.energy_used_wh = prog.energy_used_wh
        job.cpu_s = max(job.cpu_s, prog.cpu_s)
        if not prog.finished:
            self._save(job)
            self._accounted[job.id] = (prog.energy_used_wh, prog.cpu_s)
            return None
        self._accounted.pop(job.id, None)
        now = self.clock.now()
        if job.state.finished:  # cancelled or missed earlier: keep the verdict, record the end
            self._save(
                replace(job, exit_code=prog.exit_code, finished_at=job.finished_at or now),
                allow_cancelled=True,
            )
            return None
        ok = prog.exit_code == 0
        done = replace(
            job,
            state=JobState.DONE if ok else JobState.FAILED,
            exit_code=prog.exit_code,
            finished_at=min(prog.finished_at, now) if prog.finished_at is not None else now,
            reason=(
                f"done: used {prog.energy_used_wh:.1f} Wh"
                if ok
                else f"failed: exited with code {prog.exit_code} after {prog.energy_used_wh:.1f} Wh"
            ),
        )
        self._save(done)
        return self._event(done, done.reason, "stop", Severity.INFO if ok else Severity.WARNING)

    def recover(self) -> list[Event]:
        """At start: jobs the store thinks are running but no executor holds go back to waiting
        (their process did not survive the restart; their energy so far is kept)."""
        events = []
        for job in self.store.jobs.list([JobState.RUNNING, JobState.SUSPENDED], limit=10_000):
            if not self.executor.known(job.id):
                back = replace(job, state=JobState.ADMITTED, started_at=None)
                self._save(back)
                events.append(
                    self._event(
                        back, "waiting again: its process did not survive a restart", "stop"
                    )
                )
        return events

    # ------------------------------------------------------------------ store
    def _save(self, job: Job, allow_cancelled: bool = False) -> None:
        with self.store.jobs.atomic():
            current = self.store.jobs.get(job.id)
            if (
                current is not None
                and current.state is JobState.CANCELLED
                and job.state is not JobState.CANCELLED
                and not allow_cancelled
            ):
                job = replace(job, state=JobState.CANCELLED, reason=current.reason)
            self.store.jobs.save(job)

    def _event(
        self, job: Job, message: str, action: str, severity: Severity = Severity.INFO, **data: Any
    ) -> Event:
        payload = {
            "job_id": job.id,
            "action": action,
            "energy_used_wh": round(job.energy_used_wh, 3),
            **data,
        }
        return self.store.events.add(
            Event(
                at=self.clock.now(),
                kind=EventKind.JOB,
                message=f"job {job.name}: {message}",
                source=SOURCE,
                severity=severity,
                data=payload,
            )
        )
