"""Reading the box: state, history, forecast, plan, heat, links, events, alarms, devices."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from appliance.api.context import ApiContext
from appliance.api.deps import ApiError, context, hidden_event_kinds, session
from appliance.api.live import event_json
from appliance.api.messages import text
from appliance.api.series import bucket_means, local_midnight, step_for
from appliance.api.sessions import Session
from appliance.api.view_forecast import forecast_window
from appliance.api.view_heat import heat_view
from appliance.api.view_links import links_view
from appliance.api.view_state import local_label
from appliance.state import EventKind, Severity

router = APIRouter(prefix="/api", tags=["box"], dependencies=[Depends(session)])
Ctx = Annotated[ApiContext, Depends(context)]
EventKindName = StrEnum("EventKindName", {k.name: k.value for k in EventKind})  # type: ignore[misc]
SeverityName = StrEnum("SeverityName", {s.name: s.value for s in Severity})  # type: ignore[misc]


def visible_kinds(s: Session, asked: list[str] | None) -> list[str] | None:
    """The event kinds to list: what was asked (or all), less what this user may not see."""
    hidden = hidden_event_kinds(s)
    if not hidden:
        return asked
    return [k for k in (asked or [k.value for k in EventKind]) if k not in hidden] or ["-"]


@router.get("/state")
async def state(ctx: Ctx) -> Response:
    """The box now (one JSON document per control cycle; the live stream pushes the same)."""
    return Response(
        ctx.state.json(), media_type="application/json", headers={"cache-control": "no-store"}
    )


@router.get("/channels")
def channels(ctx: Ctx) -> list[str]:
    return ctx.store.telemetry.channels()


@router.get("/history")
def history(
    ctx: Ctx,
    channel: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")],
    hours: Annotated[float, Query(gt=0, le=24 * 800)] = 24.0,
    step_s: Annotated[float | None, Query(ge=1, le=86400)] = None,
) -> dict[str, Any]:
    """Measured values of one channel, as means over ``step_s`` buckets (at most 2000 points)."""
    if channel not in ctx.store.telemetry.channels():
        raise ApiError(
            404, "history.unknown_channel", text("history.unknown_channel", channel=channel)
        )
    now = ctx.clock.now()
    start = now - timedelta(hours=hours)
    step = step_for(hours * 3600, step_s)
    pts = bucket_means(
        ctx.store.telemetry.series(channel, start, now + timedelta(seconds=1)), start, step
    )
    return {
        "channel": channel,
        "start": start.isoformat(),
        "end": now.isoformat(),
        "step_s": step,
        "points": [[t.isoformat(), round(v, 4)] for t, v in pts],
    }


@router.get("/forecast")
async def forecast(ctx: Ctx) -> dict[str, Any]:
    """PV forecast (P10/P50/P90 per slot) and measured PV for the site's today and tomorrow."""
    now = ctx.clock.now()
    start = local_midnight(now, ctx.config.site.zone)
    hind = await ctx.hindcast.get(start, 50.0)
    fw = await asyncio.to_thread(forecast_window, ctx.config, ctx.store, now, hind)
    return {"now": now.isoformat(), "tz": ctx.config.site.tz, **fw.to_json()}


@router.get("/plan")
def plan(ctx: Ctx) -> dict[str, Any]:
    """The plan the control loop follows: per slot SoC, PV, battery, job power; jobs by id."""
    got = ctx.store.get_kv("plan")
    if got is None:
        return {"ready": False, "jobs": {}, "windows": []}
    data: dict[str, Any] = dict(got[0])
    start = datetime.fromisoformat(data["start"])
    step = int(data["step_s"])
    windows = []
    for jid, series in (data.get("jobs") or {}).items():
        on = [k for k, w in enumerate(series) if w >= 0.5]
        job = ctx.store.jobs.get(jid)
        if not on:
            continue
        a, b = (
            start + timedelta(seconds=on[0] * step),
            start + timedelta(seconds=(on[-1] + 1) * step),
        )
        windows.append(
            {
                "job_id": jid,
                "name": job.name if job else jid,
                "start": a.isoformat(),
                "end": b.isoformat(),
                "start_local": local_label(a, ctx.config),
                "end_local": local_label(b, ctx.config),
                "energy_wh": round(sum(series) * step / 3600.0, 1),
            }
        )
    windows.sort(key=lambda w: w["start"])
    data.update({"ready": True, "windows": windows, "reserve_pct": ctx.config.battery.reserve_pct})
    return data


@router.get("/heat")
def heat(ctx: Ctx) -> dict[str, Any]:
    """Room vs setpoint, comfort windows, the damper, and the heat ledger."""
    return heat_view(ctx.config, ctx.store, ctx.state.payload(), ctx.clock.now())


@router.get("/links")
def links(ctx: Ctx) -> dict[str, Any]:
    """Links (budget, last success, why used or not) and the sync queue by priority."""
    return links_view(ctx.config, ctx.store, ctx.clock.now())


@router.get("/events")
def events(
    ctx: Ctx,
    s: Annotated[Session, Depends(session)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after_id: Annotated[int | None, Query(ge=0)] = None,
    kind: Annotated[list[EventKindName] | None, Query()] = None,
    min_severity: Annotated[SeverityName | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Newest first (oldest first with ``after_id``, for following). Login events: admins only."""
    got = ctx.store.events.list(
        after_id=after_id,
        kinds=visible_kinds(s, [k.value for k in kind] if kind else None),
        min_severity=Severity(min_severity.value) if min_severity else None,
        limit=limit,
    )
    return [event_json(e) for e in got]


@router.get("/alarms")
def alarms(ctx: Ctx, s: Annotated[Session, Depends(session)]) -> dict[str, Any]:
    """Alarms active now (from the devices) and the recent alarm and warning events."""
    st = ctx.state.payload()
    recent = ctx.store.events.list(
        kinds=visible_kinds(s, None), min_severity=Severity.WARNING, limit=50
    )
    return {
        "active": st.get("alarms") or [],
        "mode": st.get("mode"),
        "mode_reason": st.get("mode_reason"),
        "recent": [event_json(e) for e in recent],
    }


@router.get("/devices")
async def devices(ctx: Ctx) -> list[dict[str, Any]]:
    """Per device: identity, health and its last register values (diagnostics)."""
    return [snap.to_dict() for snap in ctx.daemon.gateway.snapshots()]


@router.get("/loop")
async def loop(ctx: Ctx, limit: Annotated[int, Query(ge=1, le=4000)] = 100) -> dict[str, Any]:
    """Control loop health: cycle durations and the intervals between cycles (wall time)."""
    c = ctx.live.cycles
    d = ctx.daemon
    period_wall_s = d.control_period_s() / d.clock.speed
    recent = list(c.recent)[-limit:]
    return {
        "period_s": d.control_period_s(),
        "period_wall_s": period_wall_s,
        "cycles": d.stats.cycles,
        "plans": d.stats.plans,
        "seen": c.count,
        "max_s": c.max_s,
        "max_interval_s": c.max_interval_s,
        "mean_s": c.total_s / c.count if c.count else None,
        "recent": [
            {
                "seen_s": round(s.seen_s, 4),
                "duration_s": round(s.duration_s, 5),
                "interval_s": None if s.interval_s is None else round(s.interval_s, 4),
            }
            for s in recent
        ],
    }
