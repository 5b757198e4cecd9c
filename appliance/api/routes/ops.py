"""For machines: /metrics (Prometheus) and /healthz (balena, watchdogs)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from appliance.api import metrics
from appliance.api.context import ApiContext
from appliance.api.deps import context
from appliance.api.view_state import job_counts

router = APIRouter(tags=["ops"])
Ctx = Annotated[ApiContext, Depends(context)]
STALL_PERIODS = 5.0
STALL_MIN_S = 10.0


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def prometheus(ctx: Ctx) -> Response:
    d = ctx.daemon
    state = dict(ctx.state.payload())
    state["jobs"] = job_counts(ctx.store)  # not cached per cycle: a submission shows at once
    text = metrics.render(
        ctx.config,
        ctx.store,
        state,
        ctx.live.cycles,
        d.stats.cycles,
        d.stats.plans,
        ctx.live.client_count,
        ctx.store.outbox.depth_by_priority(),
        ctx.store.outbox.oldest_undelivered(),
        ctx.clock.now(),
    )
    return Response(text, media_type=metrics.CONTENT_TYPE)


@router.get("/healthz", responses={503: {"description": "the control loop has stalled"}})
async def healthz(ctx: Ctx) -> JSONResponse:
    """200 while control cycles keep coming; 503 when none came for 5 periods (at least 10 s)."""
    d = ctx.daemon
    period_wall = d.control_period_s() / d.clock.speed
    recent = ctx.live.cycles.recent
    now = asyncio.get_running_loop().time()
    since = now - recent[-1].seen_s if recent else None
    limit = max(STALL_MIN_S, STALL_PERIODS * period_wall)
    started = ctx.live.started_s
    ok = (since is not None and since <= limit) or (since is None and now - started <= limit)
    body: dict[str, Any] = {
        "status": "ok" if ok else "stalled",
        "mode": str(d.mode),
        "cycles": d.stats.cycles,
        "since_last_cycle_s": None if since is None else round(since, 3),
        "period_wall_s": round(period_wall, 3),
    }
    return JSONResponse(body, status_code=200 if ok else 503)
