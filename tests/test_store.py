"""Store: migrations, telemetry tiers and retention, events, jobs, outbox durability."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.state import Event, EventKind, Job, JobKind, JobState, Severity
from appliance.store import Store
from appliance.store.outbox import Priority

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_migrations_apply_once_and_wal(tmp_path: Path) -> None:
    s = Store.open_dir(tmp_path)
    first = s.applied_migrations()
    assert "0002_telemetry" in first and "0005_outbox" in first
    s.close()
    s2 = Store.open_dir(tmp_path)
    assert s2.applied_migrations() == first
    assert s2.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"


def test_telemetry_rollup_keeps_means_and_drops_raw(tmp_path: Path) -> None:
    s = Store.open_dir(tmp_path)
    for i in range(3 * 360):  # 3 hours at 10 s
        s.telemetry.record(T0 + timedelta(seconds=10 * i), {"soc_pct": float(i % 60), "pv_power_w": 100.0})
    now = T0 + timedelta(hours=3)
    moved = s.telemetry.rollup(now, raw_keep_s=3600, minute_keep_s=1800 * 3, quarter_keep_s=10 * 86400)
    assert moved["telemetry_1m"] > 0
    # raw kept for the last hour (2 channels x 360), minutes for the next 30 min, quarters before
    assert s.telemetry.count("telemetry") == 2 * 360
    assert s.telemetry.count("telemetry_1m") == 2 * 30
    assert s.telemetry.count("telemetry_15m") == 2 * 6
    # the whole range is still readable, from the mixed tiers: quarters, then minutes, then raw
    series = s.telemetry.series("pv_power_w", T0, now)
    assert series[0][0] == T0 and series[-1][0] == now - timedelta(seconds=10)
    assert all(v == 100.0 for _, v in series)
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(series, series[1:], strict=False)]
    assert gaps[:5] == [900.0] * 5 and set(gaps[-300:]) == {10.0}
    assert 60.0 in gaps
    # minute means of a sawtooth 0..59 sampled every 10 s within each minute
    m = s.query("SELECT value, min, max, n FROM telemetry_1m t JOIN channels c ON c.id=t.channel_id "
                "WHERE c.name='soc_pct' ORDER BY ts_ms LIMIT 1")[0]
    assert m["n"] == 6 and m["min"] == 0 and m["max"] == 5 and abs(m["value"] - 2.5) < 1e-9


def test_year_of_telemetry_fits_an_sd_card(tmp_path: Path) -> None:
    """25 channels every 10 s for a year, after retention: measured size must stay small."""
    s = Store.open_dir(tmp_path)
    channels = {f"ch{i:02d}_w": float(i) for i in range(25)}
    # write rolled-up tiers directly at their steady-state size: 31 days of minutes, the rest quarters
    rows_15m = 365 * 96
    with s.transaction() as db:
        for name in channels:
            db.execute("INSERT INTO channels (name) VALUES (?)", (name,))
        ids = [r[0] for r in db.execute("SELECT id FROM channels")]
        t0 = int(T0.timestamp() * 1000)
        db.conn.executemany(
            "INSERT INTO telemetry_15m VALUES (?, ?, ?, ?, ?, ?)",
            ((cid, t0 + k * 900_000, 1.5, 1.0, 2.0, 90) for cid in ids for k in range(rows_15m)),
        )
        db.conn.executemany(
            "INSERT INTO telemetry_1m VALUES (?, ?, ?, ?, ?, ?)",
            ((cid, t0 + k * 60_000, 1.5, 1.0, 2.0, 6) for cid in ids for k in range(31 * 1440)),
        )
        db.conn.executemany(
            "INSERT INTO telemetry VALUES (?, ?, ?)",
            ((cid, t0 + k * 10_000, 1.5) for cid in ids for k in range(2 * 8640)),
        )
    s.db.execute("VACUUM")
    size_mb = s.size_bytes() / 1e6
    print(f"year of 25 channels after retention: {size_mb:.1f} MB")
    assert size_mb < 200


def test_events_jobs_outbox_roundtrip(tmp_path: Path) -> None:
    s = Store.open_dir(tmp_path)
    seen: list[Event] = []
    s.events.subscribe(seen.append)
    e = s.events.add(Event(T0, EventKind.MODE, "safe: soc stale", "safety", Severity.WARNING, {"soc": None}))
    assert e.id is not None and seen[0].id == e.id
    assert s.events.list(kinds=["mode"])[0].message == "safe: soc stale"
    assert s.events.list(min_severity=Severity.ALARM) == []

    job = Job(id="j1", name="render", kind=JobKind.DEFERRABLE, power_w=200, energy_wh=400,
              deadline=T0 + timedelta(hours=8), submitted_at=T0, cmd="sleep 1")
    s.jobs.save(job)
    seq = s.jobs.change_seq()
    job.state, job.reason = JobState.ADMITTED, "admitted: planned 10:15–12:40 on sun"
    s.jobs.save(job)
    assert s.jobs.change_seq() > seq
    back = s.jobs.get("j1")
    assert back is not None and back.state == JobState.ADMITTED and back.deadline == job.deadline
    assert [j.id for j in s.jobs.active()] == ["j1"]

    a = s.outbox.put("telemetry", Priority.TELEMETRY, "telemetry", b"x" * 10, T0, "box")
    b = s.outbox.put("alarms", Priority.ALARM, "alarm", b"y", T0, "box")
    c = s.outbox.put("telemetry", Priority.TELEMETRY, "telemetry", b"z", T0, "box")
    assert (a.seq, b.seq, c.seq) == (1, 1, 2)
    assert [i.idempotency_key for i in s.outbox.pending()] == ["box:alarms:1", "box:telemetry:1", "box:telemetry:2"]
    assert s.outbox.mark_delivered(["box:telemetry:1", "box:telemetry:1"], T0, "cellular") == 1
    assert s.outbox.depth_by_priority()["telemetry"] == 1
    s.outbox.prune_delivered(T0 + timedelta(days=1))
    d = s.outbox.put("telemetry", Priority.TELEMETRY, "telemetry", b"w", T0, "box")
    assert d.seq == 3  # sequence numbers never restart after pruning


def test_store_shared_by_threads(tmp_path: Path) -> None:
    s = Store.open_dir(tmp_path)
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(200):
                s.telemetry.record(T0 + timedelta(seconds=i, milliseconds=k), {f"t{k}": float(i)})
                s.put_kv(f"k{k}", {"i": i}, T0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert s.telemetry.count() == 800
    assert s.get_kv("k3") is not None and s.get_kv("k3")[0] == {"i": 199}  # type: ignore[index]


def test_memory_jobs_list_like_the_jobs_table(tmp_path: Path) -> None:
    """Replay's in-memory jobs table answers as the SQLite one does, newest first, as jobs move
    between states; its lists are kept between saves but follow every move, and ``get``
    hands out a copy the caller may change without changing the table."""
    from appliance.store.jobs import MemoryJobs

    disk, mem = Store.open_dir(tmp_path).jobs, MemoryJobs()
    jobs = [Job(id=f"j{i}", name=f"n{i}", kind=JobKind.DEFERRABLE if i % 3 else JobKind.SPONGE,
                power_w=100.0, energy_wh=200.0, deadline=T0 + timedelta(hours=9),
                submitted_at=T0 + timedelta(minutes=(7 * i) % 11)) for i in range(9)]
    moves = [(0, JobState.ADMITTED), (4, JobState.RUNNING), (0, JobState.RUNNING), (2, JobState.DONE),
             (4, JobState.SUSPENDED), (7, JobState.REJECTED), (0, JobState.MISSED), (5, JobState.ADMITTED)]
    asks: list[list[JobState] | None] = [None, [JobState.PENDING], [JobState.RUNNING, JobState.SUSPENDED],
                                         [JobState.DONE, JobState.MISSED, JobState.REJECTED]]

    def same() -> None:
        for states in asks:
            for limit in (3, 500):
                assert [j.id for j in mem.list(states, limit)] == [j.id for j in disk.list(states, limit)]
        assert [j.id for j in mem.active()] == [j.id for j in disk.active()]

    for job in jobs:
        disk.save(job)
        mem.save(job)
        same()
    assert [j.id for j in mem.list(limit=3)] == ["j3", "j6", "j1"]  # submitted at +10, +9, +7 min
    for i, state in moves:
        moved = replace(jobs[i], state=state, energy_used_wh=50.0)
        disk.save(moved)
        mem.save(moved)
        same()
        assert mem.get(jobs[i].id).state is state  # type: ignore[union-attr]
    copy = mem.get("j4")
    assert copy is not None
    copy.energy_used_wh = 999.0
    assert mem.get("j4").energy_used_wh == 50.0  # type: ignore[union-attr]
    listed = mem.list([JobState.SUSPENDED])[0]
    mem.save(replace(listed, state=JobState.RUNNING))
    assert listed.state is JobState.SUSPENDED  # a listed row is not changed by a later save
    assert [j.id for j in mem.list([JobState.SUSPENDED])] == []
