"""What routes ask for: the context, the caller's session, and a minimum role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request

from appliance.api.context import ApiContext
from appliance.api.messages import text
from appliance.api.roles import Role
from appliance.api.sessions import Session


class ApiError(HTTPException):
    """An answer for a person: HTTP status, a message key (for translation) and the message."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=detail, headers=headers)
        self.code = code


async def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def current_session(request: Request) -> Session:
    found: Session | None = request.scope.get("state", {}).get("session")
    if found is None:  # the gate answers first; this guards routes mounted without it
        raise ApiError(401, "auth.required", text("auth.required"))
    return found


async def session(request: Request) -> Session:
    """Dependency: the caller's session (async: a sync dependency would cost a thread hop)."""
    return current_session(request)


def need(role: Role) -> Callable[[Request], Awaitable[Session]]:
    """Dependency: the caller's session, if its role is ``role`` or higher (else 403)."""

    async def check(request: Request) -> Session:
        s = current_session(request)
        if not s.role.allows(role):
            raise ApiError(
                403, "auth.forbidden", text("auth.forbidden", role=s.role.value, needed=role.value)
            )
        return s

    check.__name__ = f"need_{role.value}"
    return check


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def hidden_event_kinds(s: Session) -> frozenset[str]:
    """Event kinds this user does not see: who logged in from where is for admins only."""
    return frozenset() if s.role.allows(Role.ADMIN) else frozenset({"auth"})


def who(s: Session) -> str:
    return text("who", user=s.user, role=s.role.value)


def no_store(headers: Any) -> None:
    headers["cache-control"] = "no-store"
