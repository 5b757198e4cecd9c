"""What a replay reports: energy, jobs, the reserve, the battery, and the heat.

Accumulated step by step so a year never needs its history kept in memory. Slots are replay
steps; a reserve violation is a step that ends with SoC below the reserve while non-critical
work drew power during it (crossing the reserve is allowed for critical and base load only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from appliance.state import Job, JobKind, JobState

Fate = Literal["on_time", "missed", "not_admitted", "open"]


def deferrable_fate(job: Job, end: datetime) -> Fate | None:
    """What became of a deferrable job by the replay's ``end`` (None for other kinds): finished
    by its deadline; missed (finished late, given up, or still unfinished past its deadline);
    never admitted (rejected, or still waiting for its answer); or open (not finished on time,
    its deadline after the end: the replay cannot tell yet). The metrics count these, and
    ``tests/bench/replay_fates.py`` compares them job by job between policies."""
    if job.kind is not JobKind.DEFERRABLE:
        return None
    if job.state in (JobState.REJECTED, JobState.PENDING):
        return "not_admitted"
    assert job.deadline is not None
    if job.state is JobState.DONE and job.finished_at is not None and job.finished_at <= job.deadline:
        return "on_time"
    if job.state in (JobState.MISSED, JobState.DONE) or job.deadline <= end:
        return "missed"
    return "open"


@dataclass
class ReplayMetrics:
    reserve_pct: float
    capacity_wh: float
    covered_s: float = 0.0
    pv_wh: float = 0.0
    pv_available_wh: float = 0.0
    curtailed_wh: float = 0.0
    unmet_wh: float = 0.0
    charge_wh: float = 0.0
    discharge_wh: float = 0.0
    reserve_violation_slots: int = 0
    min_soc_pct: float = 100.0
    critical_up_s: float = 0.0
    critical_due_s: float = 0.0
    jobs_submitted: int = 0
    jobs_admitted: int = 0  # promised (best-effort work is counted apart)
    jobs_best_effort: int = 0
    jobs_promoted: int = 0  # best-effort jobs promised later (moved from best effort to admitted)
    jobs_skipped_in_gaps: int = 0
    plans_lp: int = 0
    plans_greedy: int = 0
    job_suspensions: int = 0  # suspend commands: how calm the control loop is (no flapping)
    by_kind_wh: dict[str, float] = field(default_factory=lambda: {k.value: 0.0 for k in JobKind})

    def step(self, dt_s: float, soc_end_pct: float, noncritical_w: float, critical_want: int,
             critical_on: int, counters_delta: dict[str, float]) -> None:
        self.covered_s += dt_s
        self.pv_wh += counters_delta["pv_wh"]
        self.pv_available_wh += counters_delta["pv_available_wh"]
        self.curtailed_wh += counters_delta["curtailed_wh"]
        self.unmet_wh += counters_delta["unmet_wh"]
        self.charge_wh += counters_delta["charge_wh"]
        self.discharge_wh += counters_delta["discharge_wh"]
        self.min_soc_pct = min(self.min_soc_pct, soc_end_pct)
        if soc_end_pct < self.reserve_pct - 1e-9 and noncritical_w > 1e-6:
            self.reserve_violation_slots += 1
        self.critical_due_s += dt_s * critical_want
        self.critical_up_s += dt_s * min(critical_on, critical_want)

    def result(self, jobs: list[Job], end: datetime, heat: dict[str, float], wall_s: float,
               gap_h: float, cpu_s: float) -> dict[str, Any]:
        served = {k.value: 0.0 for k in JobKind}
        on_time_wh = best_effort_wh = 0.0
        on_time = misses = best_effort_misses = 0
        for job in jobs:
            served[job.kind.value] += job.energy_used_wh
            fate = deferrable_fate(job, end)
            if fate == "on_time":
                on_time += 1
                on_time_wh += job.energy_wh or 0.0
                best_effort_wh += (job.energy_wh or 0.0) if job.best_effort else 0.0
            elif fate == "missed":
                if job.best_effort:
                    best_effort_misses += 1
                else:
                    misses += 1
        uptime = 100.0 * self.critical_up_s / self.critical_due_s if self.critical_due_s else 100.0
        return {
            "days": round(self.covered_s / 86400.0, 3),
            "pv_wh": round(self.pv_wh, 1),
            "pv_available_wh": round(self.pv_available_wh, 1),
            "curtailed_wh": round(self.curtailed_wh, 1),
            "compute_served_wh": round(sum(served.values()), 1),
            "deferrable_on_time_wh": round(on_time_wh, 1),
            "sponge_wh": round(served[JobKind.SPONGE.value], 1),
            "critical_served_wh": round(served[JobKind.CRITICAL.value], 1),
            "critical_uptime_pct": round(uptime, 3),
            "jobs_submitted": self.jobs_submitted,
            "jobs_admitted": self.jobs_admitted,
            "jobs_on_time": on_time,
            "deadline_misses": misses,
            "jobs_best_effort": self.jobs_best_effort,
            "jobs_promoted": self.jobs_promoted,
            "best_effort_on_time_wh": round(best_effort_wh, 1),
            "best_effort_misses": best_effort_misses,
            "reserve_violation_slots": self.reserve_violation_slots,
            "min_soc_pct": round(self.min_soc_pct, 2),
            "battery_cycles": round((self.charge_wh + self.discharge_wh) / 2.0 / self.capacity_wh, 2),
            "unmet_load_wh": round(self.unmet_wh, 1),
            "weather_gap_h": round(gap_h, 2),
            "jobs_skipped_in_gaps": self.jobs_skipped_in_gaps,
            "plans_lp": self.plans_lp,
            "plans_greedy": self.plans_greedy,
            "job_suspensions": self.job_suspensions,
            **{k: round(v, 3) for k, v in heat.items()},
            "wall_s": round(wall_s, 2),
            # the process's CPU time for the same loop: wall time also counts the time other
            # processes held the core, CPU time does not (a shared host's slower CPU shows in both)
            "cpu_s": round(cpu_s, 2),
        }
