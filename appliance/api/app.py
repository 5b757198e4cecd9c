"""The FastAPI application: routes, error answers, the gate, and the dashboard's files."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from appliance import __version__
from appliance.api import errors
from appliance.api.context import ApiContext
from appliance.api.fairness import ActiveLimit
from appliance.api.gate import AuthGate
from appliance.api.hotpath import StateHotPath
from appliance.api.routes import auth, box, charts, control, jobs, ops, stream, users, web

DESCRIPTION = """The Sunbox's local API: the box at a glance for the people who live with it.

Log in with `POST /api/login` (a session cookie, HttpOnly + SameSite=Strict; or `"token": true`
for a Bearer token). Every change needs the role named in its description, and — with the
cookie — the session's CSRF token in the `X-CSRF-Token` header.
Live updates: `GET /api/stream` (server-sent events). Metrics: `GET /metrics`."""


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Sunbox",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    for module in (auth, box, jobs, control, users, stream, charts, ops, web):
        app.include_router(module.router)
    errors.install(app)
    app.mount("/ui", StaticFiles(directory=ctx.web_dir), name="ui")
    # the last added runs first: the gate, then the per-turn budget, then the hot path
    app.add_middleware(StateHotPath, body=ctx.state.body)
    app.add_middleware(ActiveLimit, per_turn=ctx.config.api.requests_per_loop_turn)
    app.add_middleware(
        AuthGate, sessions=ctx.sessions, metrics_public=ctx.config.api.metrics_public
    )
    return app
