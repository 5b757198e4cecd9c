"""Outbox: items waiting to leave the box, in order per stream, surviving reboots and SIGKILL.

An item is written once with a per-stream sequence number and an idempotency key; it stays
until a transport reports the hub's acknowledgement. Policy (which link, when, how much) is in
``appliance.sync``; this module only keeps the queue durable and ordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import sqlite_utils

from appliance.store.core import from_ms, register_migration, to_ms

if TYPE_CHECKING:
    from appliance.store.core import Store


class Priority(IntEnum):
    """Lower number leaves first."""

    ALARM = 0
    JOB_RESULT = 1
    DAILY_SUMMARY = 2
    TELEMETRY = 3
    LOG = 4


@dataclass(frozen=True)
class OutboxItem:
    id: int
    stream: str
    seq: int
    priority: Priority
    kind: str
    created_at: datetime
    payload: bytes
    idempotency_key: str
    attempts: int
    delivered_at: datetime | None


@register_migration("0005_outbox")
def _schema(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, "
        "seq INTEGER NOT NULL, priority INTEGER NOT NULL, kind TEXT NOT NULL, "
        "created_ms INTEGER NOT NULL, payload BLOB NOT NULL, size_bytes INTEGER NOT NULL, "
        "idempotency_key TEXT NOT NULL UNIQUE, attempts INTEGER NOT NULL DEFAULT 0, "
        "last_attempt_ms INTEGER, delivered_ms INTEGER, link TEXT, UNIQUE (stream, seq))"
    )
    db.execute("CREATE INDEX outbox_pending ON outbox (delivered_ms, priority, id)")
    # Sequence numbers never restart, even after delivered items are pruned: the hub
    # deduplicates on (box, stream, seq).
    db.execute("CREATE TABLE outbox_streams (stream TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)")


def _row(row: dict[str, Any]) -> OutboxItem:
    created = from_ms(row["created_ms"])
    assert created is not None
    return OutboxItem(
        id=row["id"], stream=row["stream"], seq=row["seq"], priority=Priority(row["priority"]),
        kind=row["kind"], created_at=created, payload=bytes(row["payload"]),
        idempotency_key=row["idempotency_key"], attempts=row["attempts"],
        delivered_at=from_ms(row["delivered_ms"]),
    )


class OutboxTable:
    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, stream: str, priority: Priority, kind: str, payload: bytes, at: datetime, box_id: str) -> OutboxItem:
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO outbox_streams (stream, last_seq) VALUES (?, 1) "
                "ON CONFLICT(stream) DO UPDATE SET last_seq = last_seq + 1",
                (stream,),
            )
            seq = int(db.execute("SELECT last_seq FROM outbox_streams WHERE stream = ?", (stream,)).fetchone()[0])
            key = f"{box_id}:{stream}:{seq}"
            cur = db.execute(
                "INSERT INTO outbox (stream, seq, priority, kind, created_ms, payload, size_bytes, idempotency_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (stream, seq, int(priority), kind, to_ms(at), payload, len(payload), key),
            )
            row = db.execute("SELECT * FROM outbox WHERE id = ?", (cur.lastrowid,)).fetchone()
            cols = [c[0] for c in db.execute("SELECT * FROM outbox LIMIT 0").description]
        return _row(dict(zip(cols, row, strict=True)))

    def pending(self, limit: int = 100, max_priority: Priority = Priority.LOG) -> list[OutboxItem]:
        """Undelivered items, most important first, in order within each stream."""
        rows = self._store.query(
            "SELECT * FROM outbox WHERE delivered_ms IS NULL AND priority <= ? ORDER BY priority, id LIMIT ?",
            (int(max_priority), limit),
        )
        return [_row(r) for r in rows]

    def mark_attempt(self, ids: list[int], at: datetime) -> None:
        if not ids:
            return
        with self._store.transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_attempt_ms = ? "
                f"WHERE id IN ({','.join('?' * len(ids))})",
                (to_ms(at), *ids),
            )

    def mark_delivered(self, keys: list[str], at: datetime, link: str) -> int:
        if not keys:
            return 0
        with self._store.transaction() as db:
            return db.execute(
                f"UPDATE outbox SET delivered_ms = ?, link = ? WHERE delivered_ms IS NULL AND "
                f"idempotency_key IN ({','.join('?' * len(keys))})",
                (to_ms(at), link, *keys),
            ).rowcount

    def depth_by_priority(self) -> dict[str, int]:
        rows = self._store.query(
            "SELECT priority, count(*) AS n FROM outbox WHERE delivered_ms IS NULL GROUP BY priority"
        )
        out = {p.name.lower(): 0 for p in Priority}
        for r in rows:
            out[Priority(r["priority"]).name.lower()] = int(r["n"])
        return out

    def oldest_undelivered(self) -> datetime | None:
        rows = self._store.query("SELECT min(created_ms) AS t FROM outbox WHERE delivered_ms IS NULL")
        return from_ms(rows[0]["t"]) if rows and rows[0]["t"] is not None else None

    def prune_delivered(self, before: datetime) -> int:
        with self._store.transaction() as db:
            return db.execute(
                "DELETE FROM outbox WHERE delivered_ms IS NOT NULL AND delivered_ms < ?", (to_ms(before),)
            ).rowcount
