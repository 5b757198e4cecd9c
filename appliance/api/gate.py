"""The door: every request passes here before any route, body parsing or validation.

- A session is found from the HttpOnly cookie (browsers) or ``Authorization: Bearer`` (the TUI,
  scripts); it is put in ``scope["state"]["session"]`` for the routes' role checks.
- Reads under /api need a session (401), except the public ``/api/info``.
- Every mutation (POST/PUT/PATCH/DELETE) needs a session (401) and, when the session came from a
  cookie, the session's CSRF token in ``X-CSRF-Token`` (403). Login and first-run setup are
  the only anonymous mutations; they refuse cross-site origins.
  Doing this before routing means an anonymous mutation is a 401 even when its body is
  garbage: nothing about the request is looked at before the caller is known.
- Every answer gets security headers (CSP: scripts, styles, images only from the box itself).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from appliance.api.messages import text
from appliance.api.sessions import COOKIE, CSRF_HEADER, Session, SessionManager

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_API_READS = frozenset({"/api/info"})
ANONYMOUS_MUTATIONS = frozenset({"/api/login", "/api/setup"})
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
        b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


def request_headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def cookie_value(headers: dict[str, str], name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def session_token(headers: dict[str, str]) -> tuple[str | None, bool]:
    """The session token of a request and whether it came in the cookie (else Bearer)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), False
    return cookie_value(headers, COOKIE), True


def find_session(sessions: SessionManager, headers: dict[str, str]) -> Session | None:
    token, via_cookie = session_token(headers)
    return sessions.lookup(token, via_cookie=via_cookie)


def same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


class AuthGate:
    def __init__(self, app: ASGIApp, sessions: SessionManager, metrics_public: bool) -> None:
        self.app = app
        self.sessions = sessions
        self.metrics_public = metrics_public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        session = find_session(self.sessions, headers)
        scope.setdefault("state", {})["session"] = session
        refusal = self.refusal(scope["method"].upper(), scope["path"], session, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_secure)

    def refusal(
        self, method: str, path: str, session: Session | None, headers: dict[str, str]
    ) -> tuple[int, str, str] | None:
        if method in SAFE_METHODS:
            if session is None and path.startswith("/api/") and path not in PUBLIC_API_READS:
                return 401, "auth.required", text("auth.required")
            if session is None and path == "/metrics" and not self.metrics_public:
                return 401, "auth.required", text("auth.required")
            return None
        if path in ANONYMOUS_MUTATIONS:
            if not same_origin(headers):
                return 403, "auth.cross_site", text("auth.cross_site")
            return None
        if session is None:
            return 401, "auth.required", text("auth.required")
        if session.via_cookie:
            sent = headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                return 403, "auth.csrf", text("auth.csrf")
        return None


async def _answer(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="sunbox"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
