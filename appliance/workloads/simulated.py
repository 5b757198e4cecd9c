"""Jobs as simulated work for replay: progress is energy at the job's power (or cap) on the
virtual clock; no processes. A deferrable or sponge job finishes when its energy is done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.clock import Clock
from appliance.state import Job
from appliance.workloads.executor import ExecutorError, JobProgress


@dataclass
class _Sim:
    job_id: str
    power_w: float
    energy_wh: float | None  # None: runs until stopped (critical, open sponge)
    used_wh: float
    cap_w: float | None = None
    suspended: bool = False
    stopped: bool = False
    finished: bool = False
    finished_at: datetime | None = None  # the moment its energy was done
    quiet: bool = False  # suspended and reported so since: left out of polls until it changes

    @property
    def draw_w(self) -> float:
        if self.suspended or self.stopped or self.finished:
            return 0.0
        return self.power_w if self.cap_w is None else min(self.power_w, max(self.cap_w, 0.0))


class SimulatedExecutor:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._jobs: dict[str, _Sim] = {}
        self._last = clock.now()
        self._node_w: float | None = None  # the jobs' summed draw until one of them changes

    def known(self, job_id: str) -> bool:
        return job_id in self._jobs

    def start(self, job: Job) -> None:
        self.advance()
        self._node_w = None
        self._jobs[job.id] = _Sim(
            job.id, job.power_w, job.energy_wh, job.energy_used_wh, cap_w=job.cap_w
        )

    def _changing(self, job_id: str) -> _Sim:
        """The job about to change: its work so far integrated at the old draw, reported at the
        next poll, and the node's summed draw worked out afresh."""
        self.advance()
        sim = self._jobs.get(job_id)
        if sim is None:
            raise ExecutorError(f"job {job_id} is not running here")
        sim.quiet = False
        self._node_w = None
        return sim

    def suspend(self, job_id: str) -> None:
        self._changing(job_id).suspended = True

    def resume(self, job_id: str) -> None:
        self._changing(job_id).suspended = False

    def cap(self, job_id: str, cap_w: float | None) -> None:
        self._changing(job_id).cap_w = cap_w

    def stop(self, job_id: str) -> None:
        self._changing(job_id).stopped = True

    def job_power_w(self, job_id: str) -> float:
        """What one job draws right now (0 when unknown, suspended or done)."""
        sim = self._jobs.get(job_id)
        return 0.0 if sim is None else sim.draw_w

    def node_power_w(self) -> float:
        """Power above idle the running jobs draw right now (for the plant simulation); asked
        several times a cycle over dozens of waiting jobs, so kept until a job changes."""
        if self._node_w is None:
            self._node_w = sum(s.draw_w for s in self._jobs.values())
        return self._node_w

    def advance(self) -> float:
        """Integrate work up to the clock's now; returns the energy used in the interval."""
        now = self.clock.now()
        last = self._last
        dt_h = max((now - last).total_seconds(), 0.0) / 3600.0
        self._last = now
        total = 0.0
        for sim in self._jobs.values():
            draw_w = sim.draw_w
            e = draw_w * dt_h
            if sim.energy_wh is not None:
                e = min(e, max(sim.energy_wh - sim.used_wh, 0.0))
            sim.used_wh += e
            total += e
            if (
                sim.energy_wh is not None
                and sim.used_wh >= sim.energy_wh - 1e-9
                and not sim.stopped
                and not sim.finished
            ):
                sim.finished = True
                self._node_w = None
                sim.finished_at = last + timedelta(hours=e / draw_w) if draw_w > 0 else last
        return total

    def poll(self) -> dict[str, JobProgress]:
        self.advance()
        out: dict[str, JobProgress] = {}
        for sim in self._jobs.values():
            if sim.quiet:
                continue  # suspended, nothing new since it was last reported
            done = sim.finished or sim.stopped
            sim.quiet = sim.suspended and not done
            out[sim.job_id] = JobProgress(
                job_id=sim.job_id,
                running=not done and not sim.suspended,
                suspended=sim.suspended and not done,
                finished=done,
                exit_code=(0 if sim.finished else (-15 if sim.stopped else None)),
                energy_used_wh=sim.used_wh,
                cpu_s=0.0,
                power_w=sim.draw_w,
                finished_at=sim.finished_at,
            )
        for job_id in [j for j, s in self._jobs.items() if s.finished or s.stopped]:
            del self._jobs[job_id]
            self._node_w = None
        return out
