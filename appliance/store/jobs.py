"""Jobs: what was asked, what was decided and why, what ran and what it cost."""

from __future__ import annotations

import builtins
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

import sqlite_utils

from appliance.state import Job, JobKind, JobState
from appliance.store.core import from_ms, register_migration, to_ms

if TYPE_CHECKING:
    from appliance.store.core import Store

_TIME_FIELDS = ("deadline", "submitted_at", "planned_start", "planned_end", "started_at", "finished_at")
_PLAIN_FIELDS = (
    "id", "name", "kind", "power_w", "energy_wh", "value", "cmd", "state", "reason",
    "exit_code", "energy_used_wh", "cpu_s", "cap_w", "owner", "best_effort",
)


@register_migration("0004_jobs")
def _schema(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, "
        "power_w REAL NOT NULL, energy_wh REAL, value REAL NOT NULL DEFAULT 1, cmd TEXT, "
        "state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', exit_code INTEGER, "
        "energy_used_wh REAL NOT NULL DEFAULT 0, cpu_s REAL NOT NULL DEFAULT 0, cap_w REAL, "
        "owner TEXT NOT NULL DEFAULT '', deadline_ms INTEGER, submitted_at_ms INTEGER, "
        "planned_start_ms INTEGER, planned_end_ms INTEGER, started_at_ms INTEGER, "
        "finished_at_ms INTEGER, updated_seq INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX jobs_state ON jobs (state)")


@register_migration("0007_jobs_best_effort")
def _best_effort(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE jobs ADD COLUMN best_effort INTEGER NOT NULL DEFAULT 0")


def job_to_row(job: Job) -> dict[str, Any]:
    row: dict[str, Any] = {f: getattr(job, f) for f in _PLAIN_FIELDS}
    row["kind"] = str(job.kind)
    row["state"] = str(job.state)
    for f in _TIME_FIELDS:
        moment = getattr(job, f)
        row[f"{f}_ms"] = None if moment is None else to_ms(moment)
    return row


def row_to_job(row: dict[str, Any]) -> Job:
    kwargs: dict[str, Any] = {f: row[f] for f in _PLAIN_FIELDS}
    kwargs["kind"] = JobKind(row["kind"])
    kwargs["best_effort"] = bool(kwargs["best_effort"])
    kwargs["state"] = JobState(row["state"])
    for f in _TIME_FIELDS:
        kwargs[f] = from_ms(row[f"{f}_ms"])
    return Job(**kwargs)


class JobRepository(Protocol):
    """What the parts use of the jobs table (SQLite live, a dict in replay)."""

    def save(self, job: Job) -> None: ...

    def get(self, job_id: str) -> Job | None: ...

    def list(self, states: list[JobState] | None = None, limit: int = 500) -> builtins.list[Job]: ...

    def active(self) -> builtins.list[Job]: ...

    def change_seq(self) -> int: ...

    def atomic(self) -> AbstractContextManager[object]:
        """Read-modify-write of one job without another writer in between."""
        ...


class JobsTable:
    def __init__(self, store: Store) -> None:
        self._store = store

    def atomic(self) -> AbstractContextManager[object]:
        return self._store.transaction()

    def save(self, job: Job) -> None:
        row = job_to_row(job)
        cols = list(row)
        with self._store.transaction() as db:
            db.execute(
                f"INSERT INTO jobs ({', '.join(cols)}, updated_seq) VALUES ({', '.join('?' * len(cols))}, "
                "(SELECT coalesce(max(updated_seq), 0) + 1 FROM jobs)) ON CONFLICT(id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
                + ", updated_seq = excluded.updated_seq",
                tuple(row[c] for c in cols),
            )

    def get(self, job_id: str) -> Job | None:
        rows = self._store.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return row_to_job(rows[0]) if rows else None

    def list(self, states: list[JobState] | None = None, limit: int = 500) -> list[Job]:
        if states:
            marks = ",".join("?" * len(states))
            rows = self._store.query(
                f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY submitted_at_ms DESC LIMIT ?",
                (*[str(s) for s in states], limit),
            )
        else:
            rows = self._store.query("SELECT * FROM jobs ORDER BY submitted_at_ms DESC LIMIT ?", (limit,))
        return [row_to_job(r) for r in rows]

    def active(self) -> builtins.list[Job]:
        """Jobs the daemon must still care about."""
        return self.list([JobState.PENDING, JobState.ADMITTED, JobState.RUNNING, JobState.SUSPENDED], 10_000)

    def change_seq(self) -> int:
        """Grows whenever any job row changes: cheap polling for other processes' submissions."""
        return int(self._store.query("SELECT coalesce(max(updated_seq), 0) AS n FROM jobs")[0]["n"])


def _clone(job: Job) -> Job:
    """A shallow copy of a Job, several times faster than copy.copy on a dataclass."""
    twin = object.__new__(Job)
    twin.__dict__.update(job.__dict__)
    return twin


class MemoryJobs:
    """The jobs table's interface over dicts, for replay: a simulated year touches jobs millions
    of times, and replay owns its jobs alone, so nothing needs to reach a disk.

    Jobs are copied in (a saved Job is never the caller's object) and ``get`` copies out, so
    the copy a caller changes in place (the runner's energy accounting) is its own. ``list``
    hands out the table's rows themselves, to be read only: a year of replay lists the active
    jobs (in Lyngby's winter, dozens of waiting sponges) three times a control cycle, and a
    save replaces a row rather than changing it, so a listed Job stays as it was when listed.
    Rows are indexed by state, and the newest-first order of a set of states is kept until a
    job joins or leaves it, so asking for the few active jobs walks neither the thousands
    already finished nor a sort.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._by_state: dict[JobState, dict[str, None]] = {s: {} for s in JobState}
        self._order: dict[str, tuple[float, int]] = {}  # newest first: submitted, then saved
        self._sorted: dict[tuple[JobState, ...], builtins.list[str]] = {}  # ids, newest first
        self._seq = 0

    def save(self, job: Job) -> None:
        self._seq += 1
        old = self._jobs.get(job.id)
        at = job.submitted_at.timestamp() if job.submitted_at else 0.0
        first = self._order.get(job.id)
        order = (at, first[1] if first is not None else self._seq)
        if old is None or old.state is not job.state or first != order:
            self._sorted.clear()  # a job joined or left a state, or moved in the order
            if old is not None:
                self._by_state[old.state].pop(job.id, None)
            self._by_state[job.state][job.id] = None
        self._order[job.id] = order
        self._jobs[job.id] = _clone(job)

    def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        return None if job is None else _clone(job)

    def list(self, states: builtins.list[JobState] | None = None, limit: int = 500) -> builtins.list[Job]:
        """Newest first; the Jobs are the table's own rows: read them, never change them."""
        key = tuple(states) if states else tuple(JobState)
        ids = self._sorted.get(key)
        if ids is None:
            ids = [i for s in key for i in self._by_state[s]]
            ids.sort(key=self._order.__getitem__, reverse=True)
            self._sorted[key] = ids
        jobs = self._jobs
        return [jobs[i] for i in ids[:limit]]

    def active(self) -> builtins.list[Job]:
        return self.list([JobState.PENDING, JobState.ADMITTED, JobState.RUNNING, JobState.SUSPENDED], 10_000)

    def change_seq(self) -> int:
        return self._seq

    def atomic(self) -> AbstractContextManager[object]:
        return nullcontext()  # replay owns its jobs alone, in one thread
