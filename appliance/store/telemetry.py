"""Telemetry: raw samples, rolled up into 1-minute and 15-minute tiers so a year fits an SD card.

Raw rows are kept ``raw_keep_h``; older ones become 1-minute mean/min/max rows, kept
``minute_keep_days``; older ones become 15-minute rows. With 25 channels every 10 s the file
stays near 60 MB for a year (see tests/test_store.py for the measured figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

import sqlite_utils

from appliance.store.core import from_ms, register_migration, to_ms

if TYPE_CHECKING:
    from appliance.store.core import Store

TIERS: tuple[tuple[str, int], ...] = (("telemetry", 0), ("telemetry_1m", 60_000), ("telemetry_15m", 900_000))


@register_migration("0002_telemetry")
def _schema(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE channels (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
    db.execute(
        "CREATE TABLE telemetry (channel_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL, "
        "PRIMARY KEY (channel_id, ts_ms)) WITHOUT ROWID"
    )
    for name in ("telemetry_1m", "telemetry_15m"):
        db.execute(
            f"CREATE TABLE {name} (channel_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL, "
            "min REAL, max REAL, n INTEGER, PRIMARY KEY (channel_id, ts_ms)) WITHOUT ROWID"
        )


class TelemetryTable:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._ids: dict[str, int] = {}

    def _channel_id(self, name: str) -> int:
        cid = self._ids.get(name)
        if cid is not None:
            return cid
        db = self._store.db
        db.execute("INSERT OR IGNORE INTO channels (name) VALUES (?)", (name,))
        cid = int(db.execute("SELECT id FROM channels WHERE name = ?", (name,)).fetchone()[0])
        self._ids[name] = cid
        return cid

    def record(self, at: datetime, values: Mapping[str, float | None]) -> int:
        """Store one sample per channel at ``at``; None values are skipped. Returns rows written."""
        ts = to_ms(at)
        with self._store.transaction() as db:
            rows = [(self._channel_id(k), ts, float(v)) for k, v in values.items() if v is not None]
            db.conn.executemany(
                "INSERT OR REPLACE INTO telemetry (channel_id, ts_ms, value) VALUES (?, ?, ?)", rows
            )
        return len(rows)

    def channels(self) -> list[str]:
        return [r["name"] for r in self._store.query("SELECT name FROM channels ORDER BY name")]

    def latest(self, channel: str) -> tuple[datetime, float] | None:
        for table, _ in TIERS:
            rows = self._store.query(
                f"SELECT t.ts_ms, t.value FROM {table} t JOIN channels c ON c.id = t.channel_id "
                "WHERE c.name = ? ORDER BY t.ts_ms DESC LIMIT 1",
                (channel,),
            )
            if rows:
                at = from_ms(rows[0]["ts_ms"])
                assert at is not None
                return at, float(rows[0]["value"])
        return None

    def series(self, channel: str, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
        """Samples in [start, end), finest tier available for each part of the range."""
        lo, hi = to_ms(start), to_ms(end)
        out: list[tuple[int, float]] = []
        covered_from = hi
        for table, _ in TIERS:
            rows = self._store.query(
                f"SELECT t.ts_ms, t.value FROM {table} t JOIN channels c ON c.id = t.channel_id "
                "WHERE c.name = ? AND t.ts_ms >= ? AND t.ts_ms < ? ORDER BY t.ts_ms",
                (channel, lo, covered_from),
            )
            if rows:
                out = [(r["ts_ms"], float(r["value"])) for r in rows] + out
                covered_from = rows[0]["ts_ms"]
            if covered_from <= lo:
                break
        result = []
        for ts, v in out:
            moment = from_ms(ts)
            assert moment is not None
            result.append((moment, v))
        return result

    def count(self, table: str = "telemetry") -> int:
        if table not in {t for t, _ in TIERS}:
            raise ValueError(table)
        return int(self._store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def rollup(self, now: datetime, raw_keep_s: float, minute_keep_s: float, quarter_keep_s: float) -> dict[str, int]:
        """Move old rows to the coarser tier (whole buckets only) and drop the oldest."""
        moved: dict[str, int] = {}
        now_ms = to_ms(now)
        plan = (
            ("telemetry", "telemetry_1m", 60_000, raw_keep_s),
            ("telemetry_1m", "telemetry_15m", 900_000, minute_keep_s),
        )
        with self._store.transaction() as db:
            for src, dst, bucket, keep_s in plan:
                cutoff = now_ms - int(keep_s * 1000)
                cutoff -= cutoff % bucket
                if src == "telemetry":
                    agg = "avg(value), min(value), max(value), count(*)"
                else:
                    agg = "sum(value * n) / sum(n), min(min), max(max), sum(n)"
                cur = db.execute(
                    f"INSERT OR REPLACE INTO {dst} (channel_id, ts_ms, value, min, max, n) "
                    f"SELECT channel_id, (ts_ms / {bucket}) * {bucket} AS b, {agg} FROM {src} "
                    "WHERE ts_ms < ? GROUP BY channel_id, b",
                    (cutoff,),
                )
                moved[dst] = cur.rowcount
                db.execute(f"DELETE FROM {src} WHERE ts_ms < ?", (cutoff,))
            db.execute("DELETE FROM telemetry_15m WHERE ts_ms < ?", (now_ms - int(quarter_keep_s * 1000),))
        return moved
