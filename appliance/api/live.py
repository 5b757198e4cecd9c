"""Live updates: notice every control cycle and every new event, fan them out to SSE clients.

One small task in the daemon's own event loop looks at the daemon's cycle counter (every
``WATCH_S``) and at the events table (every ``EVENTS_POLL_S``; a table poll also sees events
written by other processes, such as ``sunbox jobs submit``). Clients get bounded queues: a
slow phone loses old state pushes, it never slows the box. The same task times each control
cycle from the outside (duration as the daemon measured it, interval between cycles as seen
by the loop), which is what /metrics and the load benchmark report.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from appliance.state import Event
from appliance.store import Store

WATCH_S = 0.02
EVENTS_POLL_S = 0.5
QUEUE_MAX = 64
CYCLE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DaemonStatsLike(Protocol):
    cycles: int
    last_cycle_s: float


class DaemonLike(Protocol):
    @property
    def stats(self) -> DaemonStatsLike: ...


@dataclass(frozen=True)
class Push:
    """One message for the live stream; ``kind`` lets a stream leave out what its user may not
    see (``state``, or the event's kind)."""

    kind: str
    message: bytes


@dataclass(frozen=True)
class CycleSample:
    seen_s: float  # event-loop time when the cycle was noticed
    duration_s: float  # the cycle's own wall time, as the daemon measured it
    interval_s: float | None  # since the previous cycle was noticed (None after a gap)


@dataclass
class CycleStats:
    """Prometheus-style histogram of control cycle durations, plus the recent samples."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(CYCLE_BUCKETS_S))
    count: int = 0
    total_s: float = 0.0
    max_s: float = 0.0
    max_interval_s: float = 0.0
    recent: deque[CycleSample] = field(default_factory=lambda: deque(maxlen=4000))

    def add(self, sample: CycleSample) -> None:
        self.count += 1
        self.total_s += sample.duration_s
        self.max_s = max(self.max_s, sample.duration_s)
        if sample.interval_s is not None:
            self.max_interval_s = max(self.max_interval_s, sample.interval_s)
        for i, bound in enumerate(CYCLE_BUCKETS_S):
            if sample.duration_s <= bound:
                self.buckets[i] += 1
        self.recent.append(sample)


def sse_message(event: str, data: str, event_id: int | None = None) -> bytes:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def event_json(ev: Event) -> dict[str, Any]:
    return {
        "id": ev.id,
        "at": ev.at.isoformat(),
        "kind": str(ev.kind),
        "severity": str(ev.severity),
        "source": ev.source,
        "message": ev.message,
        "data": dict(ev.data),
    }


class LiveHub:
    def __init__(
        self,
        daemon: DaemonLike,
        store: Store,
        state_json: Callable[[], str],
        *,
        min_interval_s: float,
        max_clients: int,
    ) -> None:
        self.daemon = daemon
        self.store = store
        self.state_json = state_json
        self.min_interval_s = min_interval_s
        self.max_clients = max_clients
        self.cycles = CycleStats()
        self._clients: set[asyncio.Queue[Push | None]] = set()
        self._last_event_id = self._max_event_id()
        self._closed = False
        self.started_s = 0.0  # event-loop time the watcher started

    # ------------------------------------------------------------------ clients
    @property
    def client_count(self) -> int:
        return len(self._clients)

    def open(self) -> asyncio.Queue[Push | None] | None:
        """A queue for a new client, or None when the box has too many live connections."""
        if self._closed or len(self._clients) >= self.max_clients:
            return None
        q: asyncio.Queue[Push | None] = asyncio.Queue(maxsize=QUEUE_MAX)
        self._clients.add(q)
        return q

    def close_client(self, q: asyncio.Queue[Push | None]) -> None:
        self._clients.discard(q)

    def broadcast(self, message: bytes, kind: str = "state") -> None:
        for q in list(self._clients):
            if q.full():  # a slow client loses its oldest message, never the box's time
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(Push(kind, message))

    def shutdown(self) -> None:
        """End every stream (server stopping): each client gets the end marker."""
        self._closed = True
        for q in list(self._clients):
            with contextlib.suppress(asyncio.QueueEmpty):
                while q.full():
                    q.get_nowait()
            q.put_nowait(None)
        self._clients.clear()

    # ------------------------------------------------------------------ the watcher
    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self.started_s = loop.time()
        last_cycles = self.daemon.stats.cycles
        last_seen: float | None = None
        last_push = float("-inf")
        next_events = 0.0
        dirty = False
        while not stop.is_set() and not self._closed:
            now = loop.time()
            stats = self.daemon.stats
            if stats.cycles != last_cycles:
                one_step = stats.cycles == last_cycles + 1
                interval = now - last_seen if (last_seen is not None and one_step) else None
                self.cycles.add(CycleSample(now, stats.last_cycle_s, interval))
                last_cycles, last_seen, dirty = stats.cycles, now, True
            if dirty and self._clients and now - last_push >= self.min_interval_s:
                self.broadcast(sse_message("state", self.state_json()))
                last_push, dirty = now, False
            if now >= next_events:
                next_events = now + EVENTS_POLL_S
                self._poll_events()
            await asyncio.sleep(WATCH_S)

    def _poll_events(self) -> None:
        if not self._clients:
            self._last_event_id = self._max_event_id()
            return
        for ev in self.store.events.list(after_id=self._last_event_id, limit=200):
            if ev.id is not None:
                self._last_event_id = max(self._last_event_id, ev.id)
            self.broadcast(
                sse_message("event", json.dumps(event_json(ev), default=str), ev.id), str(ev.kind)
            )

    def _max_event_id(self) -> int:
        rows = self.store.query("SELECT coalesce(max(id), 0) AS n FROM events")
        return int(rows[0]["n"])
