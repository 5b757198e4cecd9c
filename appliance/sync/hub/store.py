"""The hub's SQLite: items from many boxes (deduplicated), their telemetry, and inbound items.

A batch is stored in one transaction, frame by frame in order, and acknowledged only after the
commit: the acknowledgement means "on disk", so a box may forget an item once acked. A frame
already held (same box, stream, sequence) is a retry after a lost acknowledgement; it is
acknowledged again and not stored twice.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance.store.core import from_ms, to_ms
from appliance.sync.codec import decode_block
from appliance.sync.varint import DecodeError
from appliance.sync.wire import Batch, InboundItem, encode_inbound

HUB_DB_FILENAME = "hub.db"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS boxes (box TEXT PRIMARY KEY, token_hash TEXT, "
    "first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, last_via TEXT NOT NULL, "
    "inbound_acked INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY AUTOINCREMENT, box TEXT NOT NULL, "
    "stream TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, flags INTEGER NOT NULL, "
    "created_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL, via TEXT NOT NULL, "
    "size_bytes INTEGER NOT NULL, payload BLOB NOT NULL, decode_error TEXT, "
    "UNIQUE (box, stream, seq))",
    "CREATE TABLE IF NOT EXISTS telemetry (box TEXT NOT NULL, channel TEXT NOT NULL, "
    "ts_ms INTEGER NOT NULL, value REAL, PRIMARY KEY (box, channel, ts_ms)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS inbound (id INTEGER PRIMARY KEY AUTOINCREMENT, box TEXT NOT NULL, "
    "kind TEXT NOT NULL, name TEXT NOT NULL, created_ms INTEGER NOT NULL, payload BLOB NOT NULL, "
    "size_bytes INTEGER NOT NULL, mqtt_sent_ms INTEGER)",
    "CREATE INDEX IF NOT EXISTS inbound_box ON inbound (box, id)",
    "CREATE TABLE IF NOT EXISTS sbd_devices (imei TEXT PRIMARY KEY, box TEXT NOT NULL)",
)


@dataclass(frozen=True)
class Ack:
    batch: int
    acked: dict[str, int]
    new: int
    dup: int

    def as_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "acked": self.acked, "new": self.new, "dup": self.dup}


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class HubStore:
    """Thread-safe: FastAPI worker threads and the MQTT bridge share one connection and lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(path), check_same_thread=False, timeout=10.0, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA busy_timeout = 10000")
        if str(path) != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._tx() as c:
            for ddl in _SCHEMA:
                c.execute(ddl)

    @classmethod
    def open_dir(cls, data_dir: Path | str) -> HubStore:
        return cls(Path(data_dir) / HUB_DB_FILENAME)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ boxes
    def check_token(self, box: str, token: str | None, now: datetime, via: str) -> bool:
        """Trust on first use: the first token a box presents is the one it must keep using."""
        with self._tx() as c:
            row = c.execute("SELECT token_hash FROM boxes WHERE box = ?", (box,)).fetchone()
            if row is None:
                c.execute(
                    "INSERT INTO boxes (box, token_hash, first_seen_ms, last_seen_ms, last_via) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (box, _hash_token(token) if token else None, to_ms(now), to_ms(now), via),
                )
                return True
            stored = row["token_hash"]
            if stored is not None and (
                token is None or not hmac.compare_digest(stored, _hash_token(token))
            ):
                return False
            c.execute(
                "UPDATE boxes SET last_seen_ms = ?, last_via = ? WHERE box = ?",
                (to_ms(now), via, box),
            )
            return True

    def boxes(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT b.box, b.first_seen_ms, b.last_seen_ms, b.last_via, b.inbound_acked, "
            "(SELECT count(*) FROM items i WHERE i.box = b.box) AS items "
            "FROM boxes b ORDER BY b.box"
        )
        return rows

    # ------------------------------------------------------------------ items
    def ingest(self, box: str, batch: Batch, via: str, now: datetime) -> Ack:
        """Store a batch in order, once; the ack names the highest seq held per stream."""
        acked: dict[str, int] = {}
        new = dup = 0
        with self._tx() as c:
            c.execute(
                "INSERT INTO boxes (box, first_seen_ms, last_seen_ms, last_via) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT(box) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, "
                "last_via = excluded.last_via",
                (box, to_ms(now), to_ms(now), via),
            )
            for f in batch.frames:
                error = None
                rows: list[tuple[str, str, int, float]] = []
                if f.kind == "telemetry":
                    try:
                        block = decode_block(f.payload)
                        rows = [
                            (box, s.channel, t, v)
                            for s in block.series
                            for t, v in zip(s.ts_ms, s.values, strict=True)
                        ]
                    except DecodeError as exc:
                        error = str(exc)
                cur = c.execute(
                    "INSERT OR IGNORE INTO items (box, stream, seq, kind, flags, created_ms, "
                    "received_ms, via, size_bytes, payload, decode_error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        box,
                        f.stream,
                        f.seq,
                        f.kind,
                        f.flags,
                        to_ms(f.created_at),
                        to_ms(now),
                        via,
                        len(f.payload),
                        f.payload,
                        error,
                    ),
                )
                if cur.rowcount:
                    new += 1
                    if rows:
                        c.executemany(
                            "INSERT OR REPLACE INTO telemetry (box, channel, ts_ms, value) "
                            "VALUES (?, ?, ?, ?)",
                            rows,
                        )
                else:
                    dup += 1
                acked[f.stream] = max(acked.get(f.stream, 0), f.seq)
        return Ack(batch.batch_id, acked, new, dup)

    def items(
        self, box: str, stream: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM items WHERE box = ? AND id > ?"
        params: tuple[Any, ...] = (box, after_id)
        if stream:
            sql += " AND stream = ?"
            params += (stream,)
        return self._query(sql + " ORDER BY id LIMIT ?", (*params, limit))

    def stream_counts(self, box: str) -> dict[str, dict[str, int]]:
        rows = self._query(
            "SELECT stream, count(*) AS n, max(seq) AS last_seq FROM items WHERE box = ? "
            "GROUP BY stream",
            (box,),
        )
        return {r["stream"]: {"items": r["n"], "last_seq": r["last_seq"]} for r in rows}

    def telemetry(
        self, box: str, channel: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, float]]:
        rows = self._query(
            "SELECT ts_ms, value FROM telemetry WHERE box = ? AND channel = ? AND ts_ms >= ? "
            "AND ts_ms < ? ORDER BY ts_ms",
            (box, channel, start_ms, end_ms),
        )
        return [(int(r["ts_ms"]), float(r["value"])) for r in rows]

    # ------------------------------------------------------------------ inbound
    def add_inbound(self, box: str, kind: str, name: str, payload: bytes, now: datetime) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO inbound (box, kind, name, created_ms, payload, size_bytes) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (box, kind, name, to_ms(now), payload, len(payload)),
            )
            return int(cur.lastrowid or 0)

    def _inbound_item(self, row: dict[str, Any]) -> InboundItem:
        created = from_ms(row["created_ms"])
        assert created is not None
        return InboundItem(row["id"], row["kind"], row["name"], created, bytes(row["payload"]))

    def inbound_for(self, box: str, after_id: int, max_bytes: int) -> list[bytes]:
        """Encoded items after ``after_id`` that fit ``max_bytes`` together (at least none).

        ``after_id`` is the box's cursor: everything up to it has been received."""
        with self._tx() as c:
            c.execute(
                "UPDATE boxes SET inbound_acked = max(inbound_acked, ?) WHERE box = ?",
                (after_id, box),
            )
        rows = self._query(
            "SELECT * FROM inbound WHERE box = ? AND id > ? ORDER BY id LIMIT 100", (box, after_id)
        )
        out: list[bytes] = []
        total = 4
        for row in rows:
            raw = encode_inbound(self._inbound_item(row))
            if total + len(raw) + 5 > max_bytes:
                break
            out.append(raw)
            total += len(raw) + 5
        return out

    def inbound_unsent_mqtt(self, box: str) -> list[InboundItem]:
        rows = self._query(
            "SELECT * FROM inbound WHERE box = ? AND mqtt_sent_ms IS NULL AND id > "
            "coalesce((SELECT inbound_acked FROM boxes WHERE box = ?), 0) ORDER BY id",
            (box, box),
        )
        return [self._inbound_item(r) for r in rows]

    def mark_inbound_mqtt_sent(self, item_id: int, now: datetime) -> None:
        with self._tx() as c:
            c.execute("UPDATE inbound SET mqtt_sent_ms = ? WHERE id = ?", (to_ms(now), item_id))

    def boxes_via(self, via: str) -> list[str]:
        return [r["box"] for r in self._query("SELECT box FROM boxes WHERE last_via = ?", (via,))]

    # ------------------------------------------------------------------ SBD
    def map_imei(self, imei: str, box: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO sbd_devices (imei, box) VALUES (?, ?)", (imei, box))

    def box_for_imei(self, imei: str) -> str:
        rows = self._query("SELECT box FROM sbd_devices WHERE imei = ?", (imei,))
        return str(rows[0]["box"]) if rows else f"imei-{imei}"
