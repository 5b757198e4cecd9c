"""Server-sent events: the box's state after each control cycle (at most once a second by
default) and every new event, pushed to the page over one long GET. No proxy, no websockets:
EventSource reconnects by itself, and a phone that sleeps simply misses old pushes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from appliance.api.context import ApiContext
from appliance.api.deps import ApiError, context, hidden_event_kinds, session
from appliance.api.gate import request_headers, session_token
from appliance.api.live import Push, sse_message
from appliance.api.messages import text
from appliance.api.sessions import Session

router = APIRouter(prefix="/api", tags=["live"], dependencies=[Depends(session)])
Ctx = Annotated[ApiContext, Depends(context)]
HEARTBEAT_S = 15.0
SESSION_CHECK_S = 5.0


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        429: {"description": "too many clients"},
    },
)
async def stream(
    request: Request, ctx: Ctx, s: Annotated[Session, Depends(session)]
) -> StreamingResponse:
    """``event: state`` (the /api/state document) and ``event: event`` (one stored event).
    The stream ends when its session does (logout, password change, user removed)."""
    hidden = hidden_event_kinds(s)
    token, via_cookie = session_token(request_headers(request.scope))
    loop = asyncio.get_running_loop()
    checked = [loop.time()]

    def still_valid() -> bool:
        if loop.time() - checked[0] < SESSION_CHECK_S:
            return True
        checked[0] = loop.time()
        return ctx.sessions.lookup(token, via_cookie=via_cookie) is not None

    queue = ctx.live.open()
    if queue is None:
        raise ApiError(429, "stream.full", text("stream.full"), headers={"Retry-After": "10"})

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n\n"
            yield sse_message("state", ctx.state.json())
            while True:
                try:
                    msg = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_S)
                except TimeoutError:
                    msg = Push("keep-alive", b": keep-alive\n\n")
                if msg is None or not still_valid():
                    return
                if msg.kind in hidden:
                    continue
                yield msg.message
        finally:
            ctx.live.close_client(queue)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
