"""Jobs as the dashboard shows them, each with why it waits (or what became of it).

"Why" comes from the parts, in their own words: the admission reason, the runner's last
action on the job (suspend, cap, stop: each an event with its reason), and the plan's next
slot for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from appliance.api.messages import text
from appliance.api.view_state import local_label
from appliance.config import SunboxConfig
from appliance.state import Job, JobState
from appliance.store import Store

MIN_PLANNED_W = 0.5


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def last_job_events(store: Store, job_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Newest job event per job id (one query for the whole list)."""
    if not job_ids:
        return {}
    marks = ",".join("?" * len(job_ids))
    rows = store.query(
        "SELECT e.id, e.ts_ms, e.message, e.data FROM events e JOIN ("
        "  SELECT json_extract(data, '$.job_id') AS jid, max(id) AS mid FROM events"
        f"  WHERE kind = 'job' AND json_extract(data, '$.job_id') IN ({marks}) GROUP BY jid"
        ") m ON e.id = m.mid",
        tuple(job_ids),
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        data = json.loads(r["data"])
        out[str(data.get("job_id"))] = {
            "id": r["id"],
            "message": r["message"],
            "action": data.get("action"),
        }
    return out


def next_planned_slot(plan: dict[str, Any] | None, job_id: str, now: datetime) -> datetime | None:
    """Start of the first slot from now on in which the plan gives the job power."""
    if not plan:
        return None
    series = (plan.get("jobs") or {}).get(job_id)
    if not series:
        return None
    start = datetime.fromisoformat(plan["start"])
    step = int(plan["step_s"])
    first = max(0, int((now - start).total_seconds() // step))
    for k in range(first, len(series)):
        if series[k] >= MIN_PLANNED_W:
            return start + timedelta(seconds=k * step)
    return None


def waiting_reason(
    job: Job,
    plan: dict[str, Any] | None,
    last: dict[str, Any] | None,
    now: datetime,
    config: SunboxConfig,
) -> str:
    """One sentence: why this job is not running now ('' when it runs or is finished)."""
    if job.state is JobState.ADMITTED:
        slot = next_planned_slot(plan, job.id, now)
        if slot is not None and slot > now:
            return text("job.waits_slot", start=local_label(slot, config))
        if job.planned_start is not None and job.planned_start > now:
            return text("job.waits_slot", start=local_label(job.planned_start, config))
        return text("job.waits_plan")
    if job.state is JobState.SUSPENDED:
        msg = (last or {}).get("message") or job.reason
        prefix = f"job {job.name}: "
        return text("job.waits_sun", reason=msg.removeprefix(prefix).removeprefix("suspended: "))
    if job.state is JobState.PENDING:
        return job.reason
    return ""


def job_view(
    job: Job,
    plan: dict[str, Any] | None,
    last: dict[str, Any] | None,
    now: datetime,
    config: SunboxConfig,
) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.name,
        "kind": job.kind.value,
        "state": job.state.value,
        "finished": job.state.finished,
        "reason": job.reason,
        # admitted without a promise (it failed the admission quantile); false once promised
        "best_effort": job.best_effort,
        "waiting": waiting_reason(job, plan, last, now, config),
        "last_action": None if last is None else last["message"],
        "power_w": job.power_w,
        "energy_wh": job.energy_wh,
        "energy_used_wh": round(job.energy_used_wh, 3),
        "progress_pct": None
        if not job.energy_wh
        else round(min(100.0, 100.0 * job.energy_used_wh / job.energy_wh), 1),
        "deadline": _iso(job.deadline),
        "value": job.value,
        "has_cmd": job.cmd is not None,
        "owner": job.owner,
        "submitted_at": _iso(job.submitted_at),
        "planned_start": _iso(job.planned_start),
        "planned_end": _iso(job.planned_end),
        "next_slot": _iso(next_planned_slot(plan, job.id, now)) if not job.state.finished else None,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "exit_code": job.exit_code,
        "cpu_s": round(job.cpu_s, 3),
        "cap_w": job.cap_w,
    }


def jobs_view(
    store: Store, jobs: Sequence[Job], now: datetime, config: SunboxConfig
) -> list[dict[str, Any]]:
    got = store.get_kv("plan")
    plan = got[0] if got is not None else None
    last = last_job_events(store, [j.id for j in jobs])
    return [job_view(j, plan, last.get(j.id), now, config) for j in jobs]
