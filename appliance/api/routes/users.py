"""Users (admin only): list, add, reset a password, change a role, remove."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from appliance.api.context import ApiContext
from appliance.api.deps import ApiError, context, need, session
from appliance.api.messages import text
from appliance.api.passwords import PasswordRuleError
from appliance.api.roles import Role
from appliance.api.sessions import Session
from appliance.api.users import User, UserError
from appliance.state import Event, EventKind

router = APIRouter(prefix="/api/users", tags=["users"], dependencies=[Depends(session)])
Ctx = Annotated[ApiContext, Depends(context)]
Admin = Annotated[Session, Depends(need(Role.ADMIN))]
UserName = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=32)
    role: Role = Role.VIEWER
    password: str = Field(min_length=1, max_length=256)


class NewPassword(BaseModel):
    password: str = Field(min_length=1, max_length=256)


class NewRole(BaseModel):
    role: Role


def _json(u: User) -> dict[str, Any]:
    return {
        "name": u.name,
        "role": u.role.value,
        "created_at": u.created_at.isoformat(),
        "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
    }


def _failure(exc: Exception) -> ApiError:
    if isinstance(exc, PasswordRuleError):
        return ApiError(422, "user.password", str(exc))
    kind = exc.kind if isinstance(exc, UserError) else "name"
    status = {"exists": 409, "last_admin": 409, "unknown": 404}.get(kind, 422)
    return ApiError(status, f"user.{kind}", str(exc))


def _event(ctx: ApiContext, s: Session, message: str) -> None:
    ctx.store.events.add(Event(ctx.clock.now(), EventKind.AUTH, message, "api"))


@router.get("")
def list_users(ctx: Ctx, s: Admin) -> list[dict[str, Any]]:
    return [_json(u) for u in ctx.users.list()]


@router.post(
    "", status_code=201, responses={409: {"description": "exists"}, 422: {"description": "rule"}}
)
async def add_user(body: NewUser, ctx: Ctx, s: Admin) -> dict[str, Any]:
    try:
        user = await asyncio.to_thread(
            ctx.users.add, body.name, body.password, body.role, ctx.clock.now()
        )
    except (UserError, PasswordRuleError) as exc:
        raise _failure(exc) from None
    _event(ctx, s, text("event.user_added", user=user.name, role=user.role.value, by=s.user))
    return _json(user)


@router.post(
    "/{name}/password",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "no such user"}, 422: {"description": "rule"}},
)
async def set_password(name: UserName, body: NewPassword, ctx: Ctx, s: Admin) -> Response:
    """Reset a password; every session of that user ends."""
    try:
        await asyncio.to_thread(ctx.users.set_password, name, body.password, ctx.clock.now())
    except (UserError, PasswordRuleError) as exc:
        raise _failure(exc) from None
    ctx.sessions.forget_cache()
    _event(ctx, s, text("event.password_reset", user=name.lower(), by=s.user))
    return Response(status_code=204)


@router.post(
    "/{name}/role",
    responses={404: {"description": "no such user"}, 409: {"description": "last admin"}},
)
def set_role(name: UserName, body: NewRole, ctx: Ctx, s: Admin) -> dict[str, Any]:
    try:
        user = ctx.users.set_role(name, body.role, ctx.clock.now())
    except UserError as exc:
        raise _failure(exc) from None
    ctx.sessions.forget_cache()
    _event(ctx, s, text("event.role_changed", user=user.name, role=user.role.value, by=s.user))
    return _json(user)


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    responses={404: {"description": "no such user"}, 409: {"description": "last admin"}},
)
def remove_user(name: UserName, ctx: Ctx, s: Admin) -> Response:
    try:
        ctx.users.remove(name)
    except UserError as exc:
        raise _failure(exc) from None
    ctx.sessions.forget_cache()
    _event(ctx, s, text("event.user_removed", user=name.lower(), by=s.user))
    return Response(status_code=204)
