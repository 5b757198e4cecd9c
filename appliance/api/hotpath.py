"""The hot path: ``GET /api/state`` answered straight from the per-cycle cache.

Every open dashboard and TUI asks for the box's state; the document is built once per control
cycle (view_state.StateView), so serving it is only a matter of bytes. Going through routing,
dependency injection and a Response object cost more than the bytes (about half of each request
in tests/bench/api_load.py); this answers it first, after the gate has checked the session. The
FastAPI route stays (the OpenAPI spec, and any request this does not take).
"""

from __future__ import annotations

from collections.abc import Callable

from appliance.api.gate import SECURITY_HEADERS, ASGIApp, Receive, Scope, Send

PATH = "/api/state"


class StateHotPath:
    def __init__(self, app: ASGIApp, body: Callable[[], bytes]) -> None:
        self.app = app
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "GET"
            or scope.get("query_string")
            or scope.get("state", {}).get("session") is None
        ):
            await self.app(scope, receive, send)
            return
        body = self.body()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
