"""A technician's hands: safe mode and setpoints, through the daemon's bounded writer."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from appliance.api.context import ApiContext
from appliance.api.deps import ApiError, context, need, session, who
from appliance.api.messages import text
from appliance.api.roles import Role
from appliance.api.sessions import Session
from appliance.state import WriteRequest

router = APIRouter(prefix="/api", tags=["control"], dependencies=[Depends(session)])
Ctx = Annotated[ApiContext, Depends(context)]
Technician = Annotated[Session, Depends(need(Role.TECHNICIAN))]


class SafeModeRequest(BaseModel):
    on: bool


class SetpointRequest(BaseModel):
    device: str = Field(min_length=1, max_length=64)
    point: str = Field(min_length=1, max_length=64)
    value: float
    reason: str = Field(default="", max_length=200)

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


@router.post("/safe-mode")
def safe_mode(body: SafeModeRequest, ctx: Ctx, s: Technician) -> dict[str, Any]:
    """Hold the box in safe mode (deferrable jobs shed) until released; applied next cycle."""
    ctx.daemon.set_safe_mode(body.on, who(s))
    return {"forced": body.on, "mode": str(ctx.daemon.mode)}


@router.get("/setpoints")
def setpoints(ctx: Ctx, s: Technician) -> list[dict[str, Any]]:
    """The points a technician may write, with their configured limits."""
    return [
        {"device": d.name, "role": d.role, "point": p, "min": lim.min, "max": lim.max}
        for d in ctx.config.devices
        for p, lim in d.limits.items()
    ]


@router.post(
    "/setpoints",
    responses={
        404: {"description": "no such writable point"},
        409: {"description": "refused or failed (see reason)"},
    },
)
async def write_setpoint(body: SetpointRequest, ctx: Ctx, s: Technician) -> JSONResponse:
    """Write one setpoint; the bounded writer refuses values outside the configured limits,
    and every write is read back and logged as an event."""
    try:
        dev = ctx.config.device(body.device)
    except KeyError:
        dev = None
    if dev is None or body.point not in dev.limits:
        raise ApiError(
            404, "setpoint.unknown", text("setpoint.unknown", device=body.device, point=body.point)
        )
    reason = body.reason.strip() or "set from the dashboard"
    result = await ctx.daemon.write_setpoint(
        WriteRequest(body.device, body.point, body.value, reason), who(s)
    )
    payload = {
        "device": result.device,
        "point": result.point,
        "requested": result.requested,
        "written": result.written,
        "read_back": result.read_back,
        "reason": result.reason,
        "detail": result.reason,
        "code": "setpoint.written" if result.written else "setpoint.refused",
    }
    return JSONResponse(payload, status_code=200 if result.written else 409)
