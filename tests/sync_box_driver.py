"""A box that only produces outbox items and syncs them: run as a subprocess by
tests/test_sync_exactly_once.py, which SIGKILLs and restarts it at random moments.

Virtual time (ManualClock) is persisted in the store, so a restarted box continues its day;
every produced item carries its own ordinal (= its stream sequence number) so the test can
check content as well as counts and order at the hub.

usage: python tests/sync_box_driver.py DATA_DIR HUB_URL ITEMS_PER_STREAM SEED
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from appliance.clock import ManualClock
from appliance.config import parse_config
from appliance.state import Event, EventKind, Job, JobKind, JobState, Severity
from appliance.store import Store
from appliance.sync import SyncService

STREAMS = ("alarm", "job", "log")
KV_CLOCK = "driver.clock_ms"


def last_seqs(store: Store) -> dict[str, int]:
    rows = store.query("SELECT stream, last_seq FROM outbox_streams")
    got = {r["stream"]: int(r["last_seq"]) for r in rows}
    return {s: got.get(s, 0) for s in STREAMS}


def produce(service: SyncService, stream: str, n: int, at: datetime) -> None:
    if stream == "alarm":
        service.enqueue_event(
            Event(
                at=at,
                kind=EventKind.ALARM,
                message=f"alarm {n}",
                source="bms",
                severity=Severity.ALARM,
            )
        )
    elif stream == "job":
        service.enqueue_job_result(
            Job(
                id=f"job-{n}",
                name=f"render {n}",
                kind=JobKind.DEFERRABLE,
                power_w=100.0,
                energy_wh=50.0,
                deadline=None,
                state=JobState.DONE,
                finished_at=at,
                energy_used_wh=49.5,
            )
        )
    else:
        service.enqueue_log([f"log {n}"])


async def main(data_dir: Path, hub_url: str, per_stream: int, seed: int) -> int:
    config = parse_config(
        {
            "site": {"name": "box-under-test", "tz": "Africa/Nairobi"},
            "links": [
                {
                    "name": "cell",
                    "kind": "cellular",
                    "transport": "http",
                    "url": hub_url,
                    "daily_budget_bytes": 1_000_000_000,
                    "timeout_s": 2.0,
                    "batch_max_items": 30,
                }
            ],
            "sync": {"backoff_min_s": 60, "backoff_max_s": 1800, "interval_s": 120},
        }
    )
    store = Store.open_dir(data_dir)
    got = store.get_kv(KV_CLOCK)
    start = (
        datetime.fromtimestamp(int(got[0]) / 1000, tz=UTC)
        if got
        else datetime(2024, 3, 1, tzinfo=UTC)
    )
    clock = ManualClock(start)
    service = SyncService(config, store, clock)
    rng = random.Random(seed + int(start.timestamp()))
    while True:
        seqs = last_seqs(store)
        for _ in range(rng.randint(5, 30)):
            open_streams = [s for s in STREAMS if seqs[s] < per_stream]
            if not open_streams:
                break
            stream = rng.choice(open_streams)
            seqs[stream] += 1
            produce(service, stream, seqs[stream], clock.now())
        await service.run_once(clock.now())
        clock.advance(120)
        store.put_kv(KV_CLOCK, int(clock.now().timestamp() * 1000), clock.now())
        done = all(v >= per_stream for v in last_seqs(store).values())
        if done and sum(store.outbox.depth_by_priority().values()) == 0:
            await service.close()
            print(f"done at {clock.now().isoformat()}", flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
