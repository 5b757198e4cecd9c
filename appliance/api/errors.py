"""Errors as people read them: one line, a message key, never a traceback and never a 5xx for
bad input (a request the box cannot parse is the caller's mistake: 422)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from appliance.api.deps import ApiError
from appliance.api.messages import text

log = logging.getLogger("appliance.api")


def _one_line(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return text("request.invalid_body")
    err = errors[0]
    if err.get("type") == "json_invalid":
        return text("request.invalid_body")
    loc = [
        str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header", "cookie")
    ]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return text("request.invalid", field=".".join(loc), msg=msg) if loc else msg


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return JSONResponse(
            {
                "detail": _one_line(list(exc.errors())),
                "code": "request.invalid",
                "errors": errors[:20],
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = exc.code if isinstance(exc, ApiError) else f"http.{exc.status_code}"
        return JSONResponse(
            {"detail": exc.detail, "code": code},
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("API error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "internal error; the box's log has the details", "code": "internal"},
            status_code=500,
        )
