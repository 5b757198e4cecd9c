"""What runs jobs: the Executor protocol and the progress it reports.

Two implementations: ``ProcessExecutor`` (real subprocesses, live) and ``SimulatedExecutor``
(replay: work progresses by energy on the virtual clock). The runner drives either one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from appliance.state import Job


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    running: bool  # has a live process (or simulated work) that is not suspended
    suspended: bool
    finished: bool
    exit_code: int | None
    energy_used_wh: float  # since the job first started (includes earlier runs)
    cpu_s: float
    power_w: float  # average power above idle since the previous poll
    finished_at: datetime | None = None  # when the work ended, if the executor knows it
    # better than "at this poll" (simulated work ends part-way through a replay step)


class Executor(Protocol):
    def start(self, job: Job) -> None: ...

    def suspend(self, job_id: str) -> None: ...

    def resume(self, job_id: str) -> None: ...

    def cap(self, job_id: str, cap_w: float | None) -> None: ...

    def stop(self, job_id: str) -> None: ...

    def poll(self) -> dict[str, JobProgress]:
        """Progress of the jobs it holds. A job suspended and already reported so may be left
        out until something changes (a year of replay polls dozens of waiting sponges)."""
        ...

    def known(self, job_id: str) -> bool: ...


class ExecutorError(Exception):
    """A job could not be started or signalled (bad command, gone process)."""
