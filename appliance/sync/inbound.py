"""Inbound items from the hub (config patches, job specs, weather files) to the daemon's callbacks.

Each item is handed over once: its hub id is recorded with the outcome, and the highest id is
the cursor the box sends back. A callback that raises marks the item rejected (with an event
saying why) instead of stopping the sync loop; the item stays on the hub.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from appliance.state import Event, EventKind, Severity
from appliance.store import Store, from_ms
from appliance.sync.ledger import SyncLedger
from appliance.sync.wire import InboundItem

InboundCallback = Callable[[InboundItem], Awaitable[None] | None]
KV_INBOUND_CHECKED = "sync.inbound_checked"


async def maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result


def json_object(item: InboundItem) -> dict[str, Any]:
    try:
        value = json.loads(item.payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


class InboundRouter:
    def __init__(self, store: Store, ledger: SyncLedger, interval_s: float) -> None:
        self.store = store
        self.ledger = ledger
        self.interval_s = interval_s
        self._callbacks: dict[str, list[InboundCallback]] = {}

    def on(self, kind: str, callback: InboundCallback) -> None:
        self._callbacks.setdefault(kind, []).append(callback)

    def due(self, now: datetime) -> bool:
        """Whether to ask the hub now: someone listens and ``interval_s`` has passed."""
        if not self._callbacks:
            return False
        got = self.store.get_kv(KV_INBOUND_CHECKED)
        if got is None:
            return True
        last = from_ms(int(got[0]))
        return last is None or (now - last).total_seconds() >= self.interval_s

    async def dispatch(
        self, items: list[InboundItem], link: str, now: datetime
    ) -> list[tuple[int, str, str]]:
        """Hand new items to their callbacks in id order; (id, kind, status) per item."""
        done: list[tuple[int, str, str]] = []
        for item in sorted(items, key=lambda i: i.id):
            if self.ledger.inbound_seen(item.id):
                continue
            callbacks = self._callbacks.get(item.kind, [])
            status, error = ("ok", "") if callbacks else ("unhandled", "no handler registered")
            for cb in callbacks:
                try:
                    await maybe_await(cb(item))
                except Exception as exc:  # bad input from the hub must not stop the loop
                    status, error = "rejected", f"{type(exc).__name__}: {exc}"
            self.ledger.record_inbound(
                item.id, item.kind, item.name, now, link, len(item.payload), status, error
            )
            if status != "ok":
                self.store.events.add(
                    Event(
                        at=now,
                        kind=EventKind.SYNC,
                        source=link,
                        severity=Severity.WARNING,
                        message=f"inbound {item.kind} '{item.name}' (#{item.id}) {status}: {error}",
                    )
                )
            done.append((item.id, item.kind, status))
        return done
