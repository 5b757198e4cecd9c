"""Login sessions: random tokens in HttpOnly cookies (or a Bearer header for the TUI).

Only the SHA-256 of a token is stored. A session carries its own CSRF token: the dashboard
sends it back in ``X-CSRF-Token`` on every change, which a page on another site cannot read.
Sessions expire on the wall clock (not the demo's fast virtual clock) and are looked up through
a short cache, so a user removed by ``sunbox users`` in another process loses access within
``CACHE_S`` seconds without a database read per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.api.roles import Role
from appliance.clock import Clock
from appliance.store import Store, from_ms, to_ms

COOKIE = "sunbox_session"
CSRF_COOKIE = "sunbox_csrf"
CSRF_HEADER = "x-csrf-token"
CACHE_S = 5.0
MAX_CACHE = 10_000


@dataclass(frozen=True)
class Session:
    user: str
    role: Role
    csrf: str
    expires_at: datetime
    via_cookie: bool = True  # False: Bearer token (no ambient credential, no CSRF check)


@dataclass(frozen=True)
class NewSession:
    token: str
    session: Session


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionManager:
    def __init__(self, store: Store, wall: Clock, ttl_s: float) -> None:
        self.store = store
        self.wall = wall
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Session | None]] = {}

    def create(self, user: str, role: Role, client: str) -> NewSession:
        token = secrets.token_urlsafe(32)
        now = self.wall.now()
        session = Session(
            user, role, secrets.token_urlsafe(24), now + timedelta(seconds=self.ttl_s)
        )
        with self.store.transaction() as db:
            db.execute("DELETE FROM api_sessions WHERE expires_ms < ?", (to_ms(now),))
            db.execute(
                "INSERT INTO api_sessions (id_hash, user, csrf, created_ms, expires_ms, client) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    _digest(token),
                    user,
                    session.csrf,
                    to_ms(now),
                    to_ms(session.expires_at),
                    client[:64],
                ),
            )
        return NewSession(token, session)

    def lookup(self, token: str | None, *, via_cookie: bool = True) -> Session | None:
        if not token or len(token) > 200:
            return None
        key = _digest(token)
        mono = self.wall.monotonic()
        cached = self._cache.get(key)
        if cached is not None and mono - cached[0] < CACHE_S:
            session = cached[1]
        else:
            session = self._load(key)
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[key] = (mono, session)
        if session is None or session.expires_at <= self.wall.now():
            return None
        if not via_cookie:
            return Session(
                session.user, session.role, session.csrf, session.expires_at, via_cookie=False
            )
        return session

    def end(self, token: str | None) -> None:
        if not token:
            return
        key = _digest(token)
        self._cache.pop(key, None)
        with self.store.transaction() as db:
            db.execute("DELETE FROM api_sessions WHERE id_hash = ?", (key,))

    def forget_cache(self) -> None:
        """After a change to users from this process: the next lookup reads the store."""
        self._cache.clear()

    def _load(self, key: str) -> Session | None:
        rows = self.store.query(
            "SELECT s.user, s.csrf, s.expires_ms, u.role FROM api_sessions s "
            "JOIN api_users u ON u.name = s.user WHERE s.id_hash = ?",
            (key,),
        )
        if not rows:
            return None
        r = rows[0]
        expires = from_ms(r["expires_ms"])
        assert expires is not None
        return Session(r["user"], Role(r["role"]), r["csrf"], expires)
