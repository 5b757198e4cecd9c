"""Daily byte budget over two simulated days against the real hub app (in process, ASGI).

A short budget: alarms still go (from the reserve), telemetry is held back to share requests and
downsampled, logs wait; the day's bytes never exceed the budget, and an independent count of
what crossed the wire agrees. When the budget is raised, everything that waited arrives, once,
in order.
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from appliance.clock import ManualClock
from appliance.config import SunboxConfig, parse_config
from appliance.state import Event, EventKind, Job, JobKind, JobState, Severity
from appliance.store import Store
from appliance.sync import SyncService
from appliance.sync.codec import CHANNEL_CODES
from appliance.sync.hub import HubStore, create_hub_app
from appliance.sync.transports.http import HttpTransport
from appliance.sync.wire import FLAG_DOWNSAMPLED

BOX = "lodwar-3"
START = datetime(2024, 2, 1, 21, 0, tzinfo=UTC)  # local midnight (Africa/Nairobi, UTC+3)


class WireCounter:
    """ASGI middleware counting body bytes each way: an independent check of the ledger."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.up = 0
        self.down = 0
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1

        async def counting_receive() -> Any:
            msg = await receive()
            self.up += len(msg.get("body", b""))
            return msg

        async def counting_send(msg: Any) -> None:
            if msg["type"] == "http.response.body":
                self.down += len(msg.get("body", b""))
            await send(msg)

        await self.app(scope, counting_receive, counting_send)


def _config(budget: int) -> SunboxConfig:
    return parse_config(
        {
            "site": {"name": BOX, "tz": "Africa/Nairobi"},
            "links": [
                {
                    "name": "cell",
                    "kind": "cellular",
                    "transport": "http",
                    "url": "http://hub",
                    "daily_budget_bytes": budget,
                    "alarm_reserve_pct": 10,
                    "overhead_bytes_per_request": 200,
                }
            ],
            "sync": {
                "interval_s": 300,
                "telemetry_interval_s": 300,
                "telemetry_step_s": 60,
                "log_min_severity": "warning",
                "telemetry_max_delay_s": 3600,
            },
        }
    )


def _sample(t: datetime, rng: random.Random) -> dict[str, float]:
    hour = (t.hour + 3) % 24 + t.minute / 60
    sun = max(0.0, math.sin(math.pi * (hour - 6.5) / 12.5))
    pv = 2800 * sun * (0.7 + 0.3 * rng.random())
    load = 120 + 180 * (rng.random() > 0.3)
    values = {name: 20.0 + rng.random() for name in CHANNEL_CODES}
    values.update(
        pv_power_w=round(pv),
        ac_load_power_w=round(load),
        battery_power_w=round(pv - load),
        soc_pct=round(30 + 50 * sun, 1),
        inverter_state=4.0,
    )
    return values


def _simulate(
    service: SyncService,
    store: Store,
    clock: ManualClock,
    days: int,
    rng: random.Random,
    produce: bool,
) -> dict[str, list[Any]]:
    made: dict[str, list[Any]] = {"alarms": [], "logs": [], "jobs": []}
    alarm_minutes = set(rng.sample(range(1440), 6)) | {1430}  # one alarm just before midnight
    job_minutes = set(rng.sample(range(1440), 12))
    log_minutes = set(rng.sample(range(1440), 80))

    async def run() -> None:
        for minute in range(days * 1440):
            now = clock.now()
            store.telemetry.record(now, _sample(now, rng))
            m = minute % 1440
            if produce and m in alarm_minutes:
                ev = Event(
                    at=now,
                    kind=EventKind.ALARM,
                    source="bms",
                    severity=Severity.ALARM,
                    message=f"cell over-voltage {minute}",
                )
                made["alarms"].append(service.enqueue_event(ev))
            if produce and m in job_minutes:
                job = Job(
                    id=f"j{minute}",
                    name="batch render",
                    kind=JobKind.DEFERRABLE,
                    power_w=150,
                    energy_wh=80,
                    deadline=None,
                    state=JobState.DONE,
                    finished_at=now,
                )
                made["jobs"].append(service.enqueue_job_result(job))
            if produce and m in log_minutes:
                ev = Event(
                    at=now,
                    kind=EventKind.DEVICE,
                    source="inverter",
                    severity=Severity.WARNING,
                    message=f"Modbus timeout on unit 1, retry {minute} " + "x" * 80,
                )
                made["logs"].append(service.enqueue_event(ev))
            if minute % 5 == 0 or (produce and m in alarm_minutes):
                await service.run_once(now)
            clock.advance(60)

    asyncio.run(run())
    return made


def test_short_budget_alarms_go_telemetry_downsampled_rest_waits(tmp_path: Path) -> None:
    rng = random.Random(42)
    budget = 60_000
    clock = ManualClock(START)
    store = Store(tmp_path / "box.db")
    hub = HubStore(tmp_path / "hub.db")
    wire = WireCounter(create_hub_app(hub, clock))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=wire))
    config = _config(budget)
    service = SyncService(
        config,
        store,
        clock,
        transports={"cell": HttpTransport(config.links[0], BOX, None, client)},
        seed=1,
    )

    made = _simulate(service, store, clock, 2, rng, produce=True)

    days = service.ledger.history("cell")
    assert len(days) >= 2
    for usage in days:
        assert usage.bytes_total <= budget, usage
    assert max(u.bytes_total for u in days) > 0.8 * budget  # the budget was really the limit
    # the ledger counts at least what crossed the wire (bodies), plus headers and overhead
    assert sum(u.bytes_total for u in days) >= wire.up + wire.down
    assert sum(u.requests for u in days) >= wire.requests

    # every alarm reached the hub, including the one a minute before midnight
    alarms = hub.items(BOX, "alarm")
    assert [r["seq"] for r in alarms] == [a.seq for a in made["alarms"]]
    assert len(alarms) == 14
    jobs = hub.items(BOX, "job")
    assert len(jobs) == len(made["jobs"])  # job results go before telemetry

    # telemetry was downsampled and held back, yet arrived in order
    tel = hub.items(BOX, "telemetry", limit=10_000)
    assert tel and [r["seq"] for r in tel] == list(range(1, len(tel) + 1))
    assert any(r["flags"] & FLAG_DOWNSAMPLED for r in tel)
    points = hub.telemetry(BOX, "pv_power_w", 0, 2**62)
    steps = {b - a for (a, _), (b, _) in zip(points, points[1:], strict=False)}
    assert 300_000 in steps
    # logs waited: fewer reached the hub than were written
    logs = hub.items(BOX, "log", limit=10_000)
    assert len(logs) < len(made["logs"])
    assert store.outbox.depth_by_priority()["log"] > 0
    decision = service.ledger.state("cell").decision
    assert "budget short" in decision or "waits" in decision, decision

    # the plan is topped up: everything that waited goes, once, in order
    rich = _config(5_000_000)
    service2 = SyncService(
        rich,
        store,
        clock,
        transports={"cell": HttpTransport(rich.links[0], BOX, None, client)},
        seed=2,
    )
    asyncio.run(service2.run_once(clock.now()))
    assert sum(store.outbox.depth_by_priority().values()) == 0
    logs = hub.items(BOX, "log", limit=10_000)
    assert [r["seq"] for r in logs] == list(range(1, len(made["logs"]) + 1))
    asyncio.run(client.aclose())
    store.close()
