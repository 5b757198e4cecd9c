"""The connection, its lock, migrations and the small key-value table."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

DB_FILENAME = "sunbox.db"


def to_ms(moment: datetime) -> int:
    """UTC milliseconds since the epoch: how every time is stored."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime cannot be stored")
    return int(round(moment.timestamp() * 1000))


def from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000.0, tz=UTC)


Migration = Callable[[sqlite_utils.Database], None]
# Named migrations ("NNNN_area_what"). Parts register theirs via ``register_migration``; each
# name is applied once per database, in name order, inside one transaction.
MIGRATIONS: list[tuple[str, Migration]] = []


def register_migration(name: str) -> Callable[[Migration], Migration]:
    def deco(fn: Migration) -> Migration:
        if any(existing == name for existing, _ in MIGRATIONS):
            raise ValueError(f"migration {name!r} registered twice")
        MIGRATIONS.append((name, fn))
        return fn

    return deco


class Store:
    """Typed access to the box's database. Safe to share between tasks and threads."""

    def __init__(self, path: Path | str) -> None:
        from appliance.store import events, jobs, outbox, telemetry  # noqa: F401  (migrations)

        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0)
        conn.execute("PRAGMA busy_timeout = 10000")
        self.db = sqlite_utils.Database(conn)
        if str(path) != ":memory:":
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self._migrate()
        self.telemetry = telemetry.TelemetryTable(self)
        self.events = events.EventsTable(self)
        self.jobs: jobs.JobRepository = jobs.JobsTable(self)
        self.outbox = outbox.OutboxTable(self)

    @classmethod
    def open_dir(cls, data_dir: Path | str) -> Store:
        return cls(Path(data_dir) / DB_FILENAME)

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """Exclusive access and one transaction: commit on success, roll back on error."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:
                yield self.db
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    def _migrate(self) -> None:
        with self.transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_ms INTEGER)"
            )
            done = {r["name"] for r in db.query("SELECT name FROM schema_migrations")}
            for name, fn in sorted(MIGRATIONS, key=lambda m: m[0]):
                if name in done:
                    continue
                fn(db)
                db.execute(
                    "INSERT INTO schema_migrations (name, applied_ms) VALUES (?, ?)",
                    (name, to_ms(datetime.now(UTC))),
                )

    def applied_migrations(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM schema_migrations ORDER BY rowid")]

    # ------------------------------------------------------------------ key-value
    def put_kv(self, key: str, value: Any, at: datetime) -> None:
        """Latest state (site snapshot, plan, forecast...) for readers in other processes."""
        payload = json.dumps(value, default=str, separators=(",", ":"))
        with self.transaction() as db:
            db.execute(
                "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                (key, payload, to_ms(at)),
            )

    def get_kv(self, key: str) -> tuple[Any, datetime] | None:
        rows = self.query("SELECT value, updated_ms FROM kv WHERE key = ?", (key,))
        if not rows:
            return None
        at = from_ms(rows[0]["updated_ms"])
        assert at is not None
        return json.loads(rows[0]["value"]), at

    def size_bytes(self) -> int:
        rows = self.query("SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()")
        return int(rows[0]["n"])


@register_migration("0001_kv")
def _kv(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_ms INTEGER NOT NULL)")
