"""The dashboard's charts as SVG images drawn on the box."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from appliance.api import charts
from appliance.api.context import ApiContext
from appliance.api.deps import context, session
from appliance.api.series import local_midnight
from appliance.api.view_forecast import forecast_window

router = APIRouter(prefix="/api/charts", tags=["charts"], dependencies=[Depends(session)])
Ctx = Annotated[ApiContext, Depends(context)]
SVG = "image/svg+xml"


class ChartName(StrEnum):
    FORECAST = "forecast"
    SOC = "soc"
    PLAN = "plan"
    HEAT = "heat"


@router.get("/{name}.svg", response_class=Response, responses={200: {"content": {SVG: {}}}})
async def chart(name: ChartName, ctx: Ctx) -> Response:
    now = ctx.clock.now()
    cfg, store = ctx.config, ctx.store
    if name is ChartName.FORECAST:
        hind = await ctx.hindcast.get(local_midnight(now, cfg.site.zone), 50.0)
        fw = await asyncio.to_thread(forecast_window, cfg, store, now, hind)
        svg = charts.forecast_chart(cfg, fw, now)
    else:
        got = store.get_kv("plan")
        plan = got[0] if got is not None else None
        if name is ChartName.SOC:
            svg = await asyncio.to_thread(charts.soc_chart, cfg, store, plan, now)
        elif name is ChartName.PLAN:
            svg = charts.plan_chart(cfg, plan, now)
        else:
            svg = await asyncio.to_thread(charts.heat_chart, cfg, store, now)
    return Response(svg, media_type=SVG, headers={"cache-control": "no-store"})
