"""Events: every write, alarm, mode change and decision, with its reason."""

from __future__ import annotations

import builtins
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from appliance.state import Event, EventKind, Severity
from appliance.store.core import from_ms, register_migration, to_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    from appliance.store.core import Store


@register_migration("0003_events")
def _schema(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, "
        "kind TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', severity TEXT NOT NULL, "
        "message TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute("CREATE INDEX events_ts ON events (ts_ms)")
    db.execute("CREATE INDEX events_kind ON events (kind, ts_ms)")


def _row_to_event(row: dict[str, Any]) -> Event:
    at = from_ms(row["ts_ms"])
    assert at is not None
    return Event(
        at=at,
        kind=EventKind(row["kind"]),
        message=row["message"],
        source=row["source"],
        severity=Severity(row["severity"]),
        data=json.loads(row["data"]),
        id=row["id"],
    )


class EventsTable:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._listeners: list[Callable[[Event], None]] = []

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Called (in the writer's thread) after each event is stored: SSE, outbox alarms."""
        self._listeners.append(listener)

    def add(self, event: Event) -> Event:
        with self._store.transaction() as db:
            cur = db.execute(
                "INSERT INTO events (ts_ms, kind, source, severity, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    to_ms(event.at),
                    str(event.kind),
                    event.source,
                    str(event.severity),
                    event.message,
                    json.dumps(dict(event.data), default=str, separators=(",", ":")),
                ),
            )
            stored = Event(
                at=event.at, kind=event.kind, message=event.message, source=event.source,
                severity=event.severity, data=event.data, id=cur.lastrowid,
            )
        for listener in list(self._listeners):
            listener(stored)
        return stored

    def list(
        self,
        *,
        since: datetime | None = None,
        after_id: int | None = None,
        kinds: list[str] | None = None,
        min_severity: Severity | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Newest first (or oldest first after ``after_id``, for tailing)."""
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        if since is not None:
            where.append("ts_ms >= ?")
            params.append(to_ms(since))
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        if kinds:
            where.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        if min_severity is not None:
            allowed = [s.value for s in Severity][[s for s in Severity].index(min_severity):]
            where.append(f"severity IN ({','.join('?' * len(allowed))})")
            params.extend(allowed)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        order = "ASC" if after_id is not None else "DESC"
        rows = self._store.query(
            f"SELECT * FROM events {clause} ORDER BY id {order} LIMIT ?", (*params, int(limit))
        )
        return [_row_to_event(r) for r in rows]

    def prune(self, before: datetime) -> int:
        with self._store.transaction() as db:
            return db.execute("DELETE FROM events WHERE ts_ms < ?", (to_ms(before),)).rowcount
