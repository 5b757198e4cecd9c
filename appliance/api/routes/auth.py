"""Logging in and out, first-run setup, and the caller's own account."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from appliance import __version__
from appliance.api.context import ApiContext
from appliance.api.deps import ApiError, client_address, context, session
from appliance.api.gate import request_headers, session_token
from appliance.api.messages import text
from appliance.api.passwords import PasswordRuleError
from appliance.api.roles import Role
from appliance.api.sessions import COOKIE, CSRF_COOKIE, NewSession, Session
from appliance.api.users import UserError
from appliance.state import Event, EventKind, Severity

router = APIRouter(prefix="/api", tags=["auth"])
Ctx = Annotated[ApiContext, Depends(context)]


class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    token: bool = Field(
        default=False,
        description="also return the session token (TUI, scripts: "
        "send it as 'Authorization: Bearer <token>')",
    )


class SetupRequest(BaseModel):
    name: str = Field(default="admin", min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class SessionAnswer(BaseModel):
    user: str
    role: Role
    csrf_token: str
    expires_at: str
    token: str | None = None


class Info(BaseModel):
    site: str
    tz: str
    language: str
    version: str
    setup_needed: bool
    user: SessionAnswer | None = None  # the caller's session, if any (no 401 just to ask)


def _start_session(
    ctx: ApiContext,
    response: Response,
    user: str,
    role: Role,
    client: str,
    want_token: bool = False,
) -> SessionAnswer:
    new: NewSession = ctx.sessions.create(user, role, client)
    max_age = int(ctx.config.api.session_ttl_h * 3600)
    secure = ctx.config.api.cookie_secure
    response.set_cookie(
        COOKIE,
        new.token,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        new.session.csrf,
        max_age=max_age,
        httponly=False,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.headers["cache-control"] = "no-store"
    return SessionAnswer(
        user=user,
        role=role,
        csrf_token=new.session.csrf,
        expires_at=new.session.expires_at.isoformat(),
        token=new.token if want_token else None,
    )


def _auth_event(
    ctx: ApiContext, message: str, severity: Severity = Severity.INFO, **data: str
) -> None:
    ctx.store.events.add(Event(ctx.clock.now(), EventKind.AUTH, message, "api", severity, data))


@router.get("/info", response_model=Info)
def info(ctx: Ctx, request: Request, response: Response) -> Info:
    """Public: what the page needs first (site, language, whether first-run setup is open, and
    who is logged in on this browser, if anyone)."""
    s: Session | None = request.scope.get("state", {}).get("session")
    response.headers["cache-control"] = "no-store"
    return Info(
        site=ctx.config.site.name,
        tz=ctx.config.site.tz,
        language=ctx.config.api.language,
        version=__version__,
        setup_needed=ctx.users.count() == 0,
        user=None
        if s is None
        else SessionAnswer(
            user=s.user, role=s.role, csrf_token=s.csrf, expires_at=s.expires_at.isoformat()
        ),
    )


@router.post(
    "/setup",
    response_model=SessionAnswer,
    status_code=201,
    responses={404: {"description": "set up already"}, 422: {"description": "password rule"}},
)
async def setup(
    body: SetupRequest, request: Request, response: Response, ctx: Ctx
) -> SessionAnswer:
    """First run only: create the admin with the password the user chooses; gone afterwards."""
    if ctx.users.count():
        raise ApiError(404, "auth.setup_done", text("auth.setup_done"))
    try:
        user = await asyncio.to_thread(
            ctx.users.add_first_admin, body.name, body.password, ctx.clock.now()
        )
    except PasswordRuleError as exc:
        raise ApiError(422, "user.password", str(exc)) from None
    except UserError as exc:
        status = 404 if exc.kind == "setup_done" else 422
        raise ApiError(status, f"user.{exc.kind}", str(exc)) from None
    _auth_event(ctx, text("event.setup", user=user.name, client=client_address(request)))
    return _start_session(ctx, response, user.name, user.role, client_address(request))


def _refuse_if_limited(ctx: Ctx, client: str, user: str) -> None:
    """429 with Retry-After while this client/user pair is locked out by failed passwords."""
    wait = ctx.limiter.retry_after_s(client, user)
    if wait is not None:
        raise ApiError(
            429,
            "auth.rate_limited",
            text("auth.rate_limited", seconds=wait),
            headers={"Retry-After": str(wait)},
        )


@router.post(
    "/login",
    response_model=SessionAnswer,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "rate limited"}},
)
async def login(body: Credentials, request: Request, response: Response, ctx: Ctx) -> SessionAnswer:
    client = client_address(request)
    _refuse_if_limited(ctx, client, body.name)
    user = await asyncio.to_thread(ctx.users.verify, body.name, body.password, ctx.clock.now())
    if user is None:
        ctx.limiter.failed(client, body.name)
        if ctx.limiter.retry_after_s(client, body.name) is not None:
            _auth_event(
                ctx,
                text("event.locked", user=body.name[:64], client=client),
                Severity.WARNING,
                client=client,
            )
        raise ApiError(401, "auth.bad_credentials", text("auth.bad_credentials"))
    ctx.limiter.succeeded(client, body.name)
    _auth_event(ctx, text("event.login", user=user.name, role=user.role.value, client=client))
    return _start_session(ctx, response, user.name, user.role, client, body.token)


@router.post("/logout", status_code=204)
def logout(
    request: Request, response: Response, ctx: Ctx, me: Annotated[Session, Depends(session)]
) -> None:
    token, _ = session_token(request_headers(request.scope))
    ctx.sessions.end(token)
    response.delete_cookie(COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/me", response_model=SessionAnswer)
def me(s: Annotated[Session, Depends(session)], response: Response) -> SessionAnswer:
    """Who is logged in, with the CSRF token the page sends back on every change."""
    response.headers["cache-control"] = "no-store"
    return SessionAnswer(
        user=s.user, role=s.role, csrf_token=s.csrf, expires_at=s.expires_at.isoformat()
    )


@router.post(
    "/me/password",
    response_model=SessionAnswer,
    responses={
        403: {"description": "current password wrong"},
        422: {"description": "password rule"},
    },
)
async def change_password(
    body: PasswordChange,
    request: Request,
    response: Response,
    ctx: Ctx,
    s: Annotated[Session, Depends(session)],
) -> SessionAnswer:
    """A new password ends every session of the user; this one is replaced by a fresh one."""
    client = client_address(request)
    _refuse_if_limited(ctx, client, s.user)
    user = await asyncio.to_thread(ctx.users.verify, s.user, body.current_password, ctx.clock.now())
    if user is None:
        ctx.limiter.failed(client, s.user)
        raise ApiError(403, "auth.current_password", text("auth.current_password"))
    try:
        await asyncio.to_thread(ctx.users.set_password, s.user, body.new_password, ctx.clock.now())
    except PasswordRuleError as exc:
        raise ApiError(422, "user.password", str(exc)) from None
    ctx.sessions.forget_cache()
    _auth_event(ctx, text("event.own_password", user=s.user))
    return _start_session(ctx, response, user.name, user.role, client)
