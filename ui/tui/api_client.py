"""The daemon's local API, with the dashboard's auth: a technician logs in with name and
password and gets a session; the TUI carries it as a Bearer token (``"token": true`` at
login), which the API's gate treats like the browser's cookie minus the CSRF step (a header
is no ambient credential a hostile page could ride on)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ui.tui.backend import BackendError
from ui.tui.views import BoxState, DeviceView, EventView, JobView, LinksView, Setpoint, WriteOutcome


class LoginRefused(BackendError):
    """Wrong credentials, rate limited, or no such user: the API said no."""


@dataclass(frozen=True)
class ApiSession:
    url: str
    user: str
    role: str
    token: str


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    return f"HTTP {response.status_code}"


def probe(url: str, timeout_s: float) -> dict[str, Any] | None:
    """``/api/info`` of the daemon at ``url``, or None when nothing answers there."""
    try:
        r = httpx.get(f"{url.rstrip('/')}/api/info", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    try:
        body = r.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def login(url: str, user: str, password: str, timeout_s: float) -> ApiSession:
    """A session token for ``user``; LoginRefused with the API's own words otherwise."""
    base = url.rstrip("/")
    try:
        r = httpx.post(
            f"{base}/api/login",
            json={"name": user, "password": password, "token": True},
            timeout=timeout_s,
        )
    except httpx.HTTPError as exc:
        raise BackendError(f"cannot reach {base}: {exc}") from None
    if r.status_code != 200:
        raise LoginRefused(f"login as '{user}' at {base} refused: {_detail(r)}")
    body = r.json()
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise LoginRefused(f"{base} gave no session token (an older API?)")
    return ApiSession(base, str(body.get("user") or user), str(body.get("role") or ""), token)


class ApiBackend:
    """Online: every question is an API call; every change goes through the daemon."""

    online = True

    def __init__(self, session: ApiSession, timeout_s: float = 5.0) -> None:
        self.session = session
        self.client = httpx.AsyncClient(
            base_url=session.url,
            timeout=timeout_s,
            headers={"Authorization": f"Bearer {session.token}", "Accept": "application/json"},
        )

    def describe(self) -> str:
        return f"API {self.session.url} as {self.session.user} ({self.session.role})"

    async def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return await self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"{method} {path}: the daemon did not answer ({type(exc).__name__})"
            ) from None

    async def _get(self, path: str, **params: Any) -> Any:
        r = await self._call("GET", path, params={k: v for k, v in params.items() if v is not None})
        if r.status_code != 200:
            raise BackendError(f"GET {path}: {_detail(r)}")
        try:
            return r.json()
        except ValueError:
            raise BackendError(f"GET {path}: not JSON") from None

    async def state(self) -> BoxState:
        doc = await self._get("/api/state")
        if not isinstance(doc, dict):
            raise BackendError("GET /api/state: not a state document")
        return BoxState.from_doc(doc)

    async def devices(self) -> list[DeviceView]:
        return [
            DeviceView.from_doc(d) for d in await self._get("/api/devices") if isinstance(d, dict)
        ]

    async def events(self, limit: int = 50) -> list[EventView]:
        return [
            EventView.from_doc(e)
            for e in await self._get("/api/events", limit=limit)
            if isinstance(e, dict)
        ]

    async def jobs(self, limit: int = 50) -> list[JobView]:
        return [
            JobView.from_doc(j)
            for j in await self._get("/api/jobs", limit=limit)
            if isinstance(j, dict)
        ]

    async def links(self) -> LinksView:
        doc = await self._get("/api/links")
        return LinksView.from_doc(doc if isinstance(doc, dict) else {})

    async def setpoints(self) -> list[Setpoint]:
        out = []
        for d in await self._get("/api/setpoints"):
            try:
                out.append(Setpoint.from_doc(d))
            except ValueError:
                continue
        return out

    async def write_setpoint(
        self, device: str, point: str, value: float, reason: str
    ) -> WriteOutcome:
        r = await self._call(
            "POST",
            "/api/setpoints",
            json={"device": device, "point": point, "value": value, "reason": reason},
        )
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code in (200, 409) and isinstance(body, dict) and "written" in body:
            rb = body.get("read_back")
            return WriteOutcome(
                bool(body["written"]),
                float(rb) if isinstance(rb, int | float) else None,
                str(body.get("reason") or ""),
            )
        raise BackendError(f"write {device}.{point}: {_detail(r)}")

    async def set_safe_mode(self, on: bool) -> str:
        r = await self._call("POST", "/api/safe-mode", json={"on": on})
        if r.status_code != 200:
            raise BackendError(f"safe mode: {_detail(r)}")
        body = r.json()
        held = "held" if body.get("forced") else "released"
        mode = str(body.get("mode", "?")).upper()
        return f"manual safe mode {held} (mode now {mode}; applied next cycle)"

    async def evidence(self) -> tuple[dict[str, Any] | None, str]:
        state = await self.state()
        return (state.doc if state.ready else None), f"the daemon's API ({self.session.url})"

    async def close(self) -> None:
        await self.client.aclose()
