"""Jobs: list, submit (answered with the admission decision and its reason), cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from appliance.api.context import ApiContext
from appliance.api.deps import ApiError, context, need, session, who
from appliance.api.messages import text
from appliance.api.roles import Role
from appliance.api.sessions import Session
from appliance.api.view_jobs import jobs_view
from appliance.jobs_service import JobServiceError
from appliance.state import JobState
from appliance.workloads.requests import JobRequest

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(session)])
Ctx = Annotated[ApiContext, Depends(context)]
Operator = Annotated[Session, Depends(need(Role.OPERATOR))]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class CancelRequest(BaseModel):
    reason: str = Field(default="", max_length=200)


@router.get("")
def list_jobs(
    ctx: Ctx,
    state: Annotated[list[JobState] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Newest first, each with its reason and, while it waits, why."""
    jobs = ctx.store.jobs.list(list(state) if state else None, limit)
    return jobs_view(ctx.store, jobs, ctx.clock.now(), ctx.config)


@router.get("/{job_id}")
def get_job(ctx: Ctx, job_id: JobId) -> dict[str, Any]:
    job = ctx.store.jobs.get(job_id)
    if job is None:
        raise ApiError(404, "job.unknown", text("job.unknown", job_id=job_id))
    return jobs_view(ctx.store, [job], ctx.clock.now(), ctx.config)[0]


@router.post(
    "",
    status_code=201,
    responses={
        403: {"description": "role too low (a shell command needs the configured role)"},
        409: {"description": "the box cannot decide now"},
        422: {"description": "invalid job"},
    },
)
async def submit(body: JobRequest, ctx: Ctx, s: Operator) -> dict[str, Any]:
    """Submit a job; the answer is the admission decision in the words of ``sunbox jobs submit``:
    admitted with its planned window, or rejected with what the box could give and the earliest
    deadline that would work."""
    needed = Role(ctx.config.api.job_cmd_min_role)
    if body.cmd is not None and not s.role.allows(needed):
        raise ApiError(403, "job.cmd_role", text("job.cmd_role", needed=needed.value))
    request = body.model_copy(update={"owner": s.user})
    try:
        job, decision = await ctx.daemon.submit_job_async(request)
    except JobServiceError as exc:
        raise ApiError(409, "job.undecided", str(exc)) from None
    view = jobs_view(ctx.store, [job], ctx.clock.now(), ctx.config)[0]
    return {
        "admitted": decision.admitted,
        "reason": decision.reason,
        "job": view,
        "planned_start": view["planned_start"],
        "planned_end": view["planned_end"],
        "available_wh": decision.available_wh,
        "earliest_deadline": None
        if decision.earliest_deadline is None
        else decision.earliest_deadline.isoformat(),
    }


@router.post(
    "/{job_id}/cancel",
    responses={404: {"description": "no such job"}, 409: {"description": "already finished"}},
)
async def cancel(
    ctx: Ctx, job_id: JobId, s: Operator, body: CancelRequest | None = None
) -> dict[str, Any]:
    """Cancel a job; a running job's process is stopped on the next control cycle."""
    if ctx.store.jobs.get(job_id) is None:
        raise ApiError(404, "job.unknown", text("job.unknown", job_id=job_id))
    said = body.reason.strip() if body is not None else ""
    reason = (
        text("job.cancel_said", said=said, who=who(s))
        if said
        else text("job.cancel_by", who=who(s))
    )
    try:
        job = await ctx.daemon.cancel_job_async(job_id, reason)
    except JobServiceError as exc:
        raise ApiError(409, "job.finished", str(exc)) from None
    return jobs_view(ctx.store, [job], ctx.clock.now(), ctx.config)[0]
