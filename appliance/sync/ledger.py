"""What the links cost and how they fared: bytes per link per local day, link state, inbound log.

Bytes are charged *before* a request leaves (the transport's upper-bound estimate) and
corrected to the measured figure after it returns, in the same transaction as the delivery
marks. A box killed mid-request therefore over-counts a little and never under-counts: the
daily budget holds through SIGKILL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlite_utils

from appliance.store.core import from_ms, register_migration, to_ms

if TYPE_CHECKING:
    from appliance.store import Store

_DDL = (
    "CREATE TABLE IF NOT EXISTS sync_link_usage (link TEXT NOT NULL, day TEXT NOT NULL, "
    "bytes_up INTEGER NOT NULL DEFAULT 0, bytes_down INTEGER NOT NULL DEFAULT 0, "
    "requests INTEGER NOT NULL DEFAULT 0, items INTEGER NOT NULL DEFAULT 0, "
    "modem_on_s REAL NOT NULL DEFAULT 0, PRIMARY KEY (link, day))",
    "CREATE TABLE IF NOT EXISTS sync_link_state (link TEXT PRIMARY KEY, last_attempt_ms INTEGER, "
    "last_success_ms INTEGER, last_error TEXT NOT NULL DEFAULT '', "
    "failures INTEGER NOT NULL DEFAULT 0, "
    "backoff_until_ms INTEGER, decision TEXT NOT NULL DEFAULT '', decision_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS sync_inbound (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, "
    "name TEXT NOT NULL, received_ms INTEGER NOT NULL, link TEXT NOT NULL, "
    "size_bytes INTEGER NOT NULL, "
    "status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '')",
)


@register_migration("0060_sync_links")
def _schema(db: sqlite_utils.Database) -> None:
    for ddl in _DDL:
        db.execute(ddl)


def ensure_schema(store: Store) -> None:
    """Create the tables even if this module was imported after the Store was opened."""
    with store.transaction() as db:
        for ddl in _DDL:
            db.execute(ddl)


@dataclass(frozen=True)
class LinkUsage:
    link: str
    day: date
    bytes_up: int = 0
    bytes_down: int = 0
    requests: int = 0
    items: int = 0
    modem_on_s: float = 0.0

    @property
    def bytes_total(self) -> int:
        return self.bytes_up + self.bytes_down


@dataclass(frozen=True)
class LinkState:
    link: str
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str = ""
    failures: int = 0
    backoff_until: datetime | None = None
    decision: str = ""
    decision_at: datetime | None = None


class SyncLedger:
    def __init__(self, store: Store) -> None:
        self._store = store
        ensure_schema(store)

    # ------------------------------------------------------------------ usage
    def usage(self, link: str, day: date) -> LinkUsage:
        rows = self._store.query(
            "SELECT * FROM sync_link_usage WHERE link = ? AND day = ?", (link, day.isoformat())
        )
        if not rows:
            return LinkUsage(link, day)
        r = rows[0]
        return LinkUsage(
            link, day, r["bytes_up"], r["bytes_down"], r["requests"], r["items"], r["modem_on_s"]
        )

    def add_usage(
        self,
        link: str,
        day: date,
        *,
        bytes_up: int = 0,
        bytes_down: int = 0,
        requests: int = 0,
        items: int = 0,
        modem_on_s: float = 0.0,
    ) -> None:
        """Add (or with negative numbers, give back) usage; never below zero."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO sync_link_usage "
                "(link, day, bytes_up, bytes_down, requests, items, modem_on_s) "
                "VALUES (?, ?, max(0, ?), max(0, ?), max(0, ?), max(0, ?), max(0, ?)) "
                "ON CONFLICT(link, day) DO UPDATE SET bytes_up = max(0, bytes_up + ?), "
                "bytes_down = max(0, bytes_down + ?), requests = max(0, requests + ?), "
                "items = max(0, items + ?), modem_on_s = max(0, modem_on_s + ?)",
                (
                    link,
                    day.isoformat(),
                    bytes_up,
                    bytes_down,
                    requests,
                    items,
                    modem_on_s,
                    bytes_up,
                    bytes_down,
                    requests,
                    items,
                    modem_on_s,
                ),
            )

    def history(self, link: str, limit: int = 31) -> list[LinkUsage]:
        rows = self._store.query(
            "SELECT * FROM sync_link_usage WHERE link = ? ORDER BY day DESC LIMIT ?", (link, limit)
        )
        return [
            LinkUsage(
                link,
                date.fromisoformat(r["day"]),
                r["bytes_up"],
                r["bytes_down"],
                r["requests"],
                r["items"],
                r["modem_on_s"],
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ state
    def state(self, link: str) -> LinkState:
        rows = self._store.query("SELECT * FROM sync_link_state WHERE link = ?", (link,))
        if not rows:
            return LinkState(link)
        r = rows[0]
        return LinkState(
            link,
            from_ms(r["last_attempt_ms"]),
            from_ms(r["last_success_ms"]),
            r["last_error"],
            r["failures"],
            from_ms(r["backoff_until_ms"]),
            r["decision"],
            from_ms(r["decision_ms"]),
        )

    def _upsert_state(self, link: str, **cols: object) -> None:
        names = list(cols)
        with self._store.transaction() as db:
            db.execute(
                f"INSERT INTO sync_link_state (link, {', '.join(names)}) "
                f"VALUES (?, {', '.join('?' * len(names))}) "
                "ON CONFLICT(link) DO UPDATE SET "
                + ", ".join(f"{n} = excluded.{n}" for n in names),
                (link, *cols.values()),
            )

    def record_decision(self, link: str, reason: str, at: datetime) -> None:
        self._upsert_state(link, decision=reason, decision_ms=to_ms(at))

    def record_success(self, link: str, at: datetime) -> None:
        self._upsert_state(
            link,
            last_attempt_ms=to_ms(at),
            last_success_ms=to_ms(at),
            last_error="",
            failures=0,
            backoff_until_ms=None,
        )

    def record_failure(self, link: str, at: datetime, error: str, backoff_until: datetime) -> int:
        failures = self.state(link).failures + 1
        self._upsert_state(
            link,
            last_attempt_ms=to_ms(at),
            last_error=error[:500],
            failures=failures,
            backoff_until_ms=to_ms(backoff_until),
        )
        return failures

    # ------------------------------------------------------------------ inbound
    def inbound_cursor(self) -> int:
        rows = self._store.query("SELECT coalesce(max(id), 0) AS n FROM sync_inbound")
        return int(rows[0]["n"])

    def inbound_seen(self, item_id: int) -> bool:
        return bool(self._store.query("SELECT 1 FROM sync_inbound WHERE id = ?", (item_id,)))

    def record_inbound(
        self,
        item_id: int,
        kind: str,
        name: str,
        at: datetime,
        link: str,
        size_bytes: int,
        status: str,
        error: str = "",
    ) -> None:
        with self._store.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO sync_inbound "
                "(id, kind, name, received_ms, link, size_bytes, status, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (item_id, kind, name, to_ms(at), link, size_bytes, status, error[:500]),
            )

    def inbound_log(self, limit: int = 20) -> list[dict[str, object]]:
        return self._store.query(
            "SELECT id, kind, name, received_ms, link, size_bytes, status, error FROM sync_inbound "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
