"""Login rate limiting: N failures per window, per client address and per user name.

Both keys count, so one address cannot try many names and many addresses cannot try one name
faster than the limit. A limited client is refused *before* its password is checked, so even
the right password does not get through until the window has passed (429 + Retry-After).
"""

from __future__ import annotations

import math
from collections import deque

from appliance.clock import Clock

MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(self, max_failures: int, window_s: float, wall: Clock) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.wall = wall
        self._failures: dict[str, deque[tuple[float, str]]] = {}

    @staticmethod
    def keys(client: str, user: str) -> tuple[str, str]:
        return f"ip:{client}", f"user:{user.strip().lower()}"

    def retry_after_s(self, client: str, user: str) -> int | None:
        """Seconds until this client may try this user again; None when it may now."""
        now = self.wall.monotonic()
        wait = 0.0
        for key in self.keys(client, user):
            q = self._prune(key, now)
            if q is not None and len(q) >= self.max_failures:
                wait = max(wait, q[-self.max_failures][0] + self.window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, client: str, user: str) -> None:
        now = self.wall.monotonic()
        if len(self._failures) >= MAX_KEYS:
            self._evict(now)
        for key in self.keys(client, user):
            self._failures.setdefault(key, deque(maxlen=max(self.max_failures, 1) * 4)).append(
                (now, client)
            )

    def succeeded(self, client: str, user: str) -> None:
        """Forget this address's failures (and the name's failures that came from it)."""
        ip_key, user_key = self.keys(client, user)
        self._failures.pop(ip_key, None)
        q = self._failures.get(user_key)
        if q is not None:
            kept = deque((t, c) for t, c in q if c != client)
            if kept:
                self._failures[user_key] = deque(kept, maxlen=q.maxlen)
            else:
                del self._failures[user_key]

    def _prune(self, key: str, now: float) -> deque[tuple[float, str]] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0][0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def _evict(self, now: float) -> None:
        for key in list(self._failures):
            self._prune(key, now)
        while len(self._failures) >= MAX_KEYS:
            self._failures.pop(next(iter(self._failures)))
