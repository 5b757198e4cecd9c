"""The dashboard page itself (ui/web), served from the box: no CDN, it works offline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from appliance.api.context import ApiContext
from appliance.api.deps import context

router = APIRouter(include_in_schema=False)
Ctx = Annotated[ApiContext, Depends(context)]


@router.get("/")
def index(ctx: Ctx) -> FileResponse:
    return FileResponse(
        ctx.web_dir / "index.html", media_type="text/html", headers={"cache-control": "no-cache"}
    )


@router.get("/favicon.ico")
def favicon(ctx: Ctx) -> FileResponse:
    return FileResponse(ctx.web_dir / "icon.svg", media_type="image/svg+xml")
