"""Keep the control loop's period while phones hammer the dashboard.

The API runs in the daemon's own event loop, and a request for /api/state is served in one
go, without ever suspending. Each turn of the loop runs every callback that is ready, so with
100 clients each always asking, a turn carried ~100 requests (~25 ms of work), while each
awaited step of a control cycle (a Modbus exchange, a write) waits a whole turn: a cycle that
takes 8 ms on a quiet box took 0.5-0.9 s under load (tests/bench/api_load.py).

So requests get a budget per turn: at most ``per_turn`` start in one turn of the loop; the
rest wait, first in first out and without costing CPU, for the next turns. A turn then carries
a few milliseconds of API work and control steps come round again quickly. Throughput stays
what the CPU allows, and first-in-first-out waiting keeps the latency tail short. Live
streams (SSE) are not counted (they start once and then only wait).
"""

from __future__ import annotations

import asyncio
from collections import deque

from appliance.api.gate import ASGIApp, Receive, Scope, Send

UNCOUNTED_PATHS = frozenset({"/api/stream"})


class TurnBudget:
    """At most ``per_turn`` admissions per turn of the running event loop."""

    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self._used = 0
        self._turn_pending = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def admit(self) -> None:
        loop = asyncio.get_running_loop()
        if self._used >= self.per_turn or self._waiters:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            await fut  # counted by _next_turn when it let us in
        else:
            self._used += 1
        if not self._turn_pending:
            self._turn_pending = True
            loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        """Runs once per turn while there is traffic: a fresh budget, the queue first."""
        self._turn_pending = False
        self._used = 0
        while self._waiters and self._used < self.per_turn:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                self._used += 1
        if self._waiters or self._used:
            self._turn_pending = True
            asyncio.get_running_loop().call_soon(self._next_turn)


class ActiveLimit:
    def __init__(self, app: ASGIApp, per_turn: int) -> None:
        self.app = app
        self.budget = TurnBudget(per_turn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in UNCOUNTED_PATHS:
            await self.budget.admit()
        await self.app(scope, receive, send)
