"""Which link comes up when: windows, modem watts, failover with backoff, inbound callbacks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.clock import ManualClock
from appliance.config import ConfigError, LinkConfig, SunboxConfig, parse_config
from appliance.state import Event, EventKind, Severity
from appliance.store import Store
from appliance.sync import SyncService
from appliance.sync.hub import HubStore, create_hub_app
from appliance.sync.links import next_window_start, window_open
from appliance.sync.transports.base import Transport
from appliance.sync.transports.http import HttpTransport
from tests.conftest import free_port

BOX = "kakuma-5"
ZONE = "Africa/Nairobi"


def _config(links: list[dict[str, Any]], **sync: Any) -> SunboxConfig:
    return parse_config({"site": {"name": BOX, "tz": ZONE}, "links": links, "sync": sync})


def _alarm(at: datetime, text: str = "battery over-temperature") -> Event:
    return Event(at=at, kind=EventKind.ALARM, source="bms", severity=Severity.ALARM, message=text)


class Hub:
    """The real hub app, reached in process through httpx's ASGI transport."""

    def __init__(self, tmp: Path, clock: ManualClock) -> None:
        self.store = HubStore(tmp / "hub.db")
        self.app = create_hub_app(self.store, clock)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))

    def transport(self, link: LinkConfig) -> Transport:
        return HttpTransport(link, BOX, "box-secret", self.client)


def test_windows_across_midnight() -> None:
    link = LinkConfig(
        name="sat", kind="satellite_broadband", url="http://x", windows=[("22:00", "02:00")]
    )
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE)
    noon = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # 12:00 local
    assert not window_open(link, noon, zone)
    assert next_window_start(link, noon, zone) == datetime(2024, 1, 1, 22, 0, tzinfo=zone)
    assert window_open(link, datetime(2024, 1, 1, 20, 30, tzinfo=UTC), zone)  # 23:30 local
    assert window_open(link, datetime(2024, 1, 1, 22, 59, tzinfo=UTC), zone)  # 01:59 local
    assert not window_open(link, datetime(2024, 1, 1, 23, 0, tzinfo=UTC), zone)  # 02:00 local


def test_modem_watts_and_windows_gate_the_link(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))  # 12:00 local
    hub = Hub(tmp_path, clock)
    config = _config(
        [
            {
                "name": "starlink",
                "kind": "satellite_broadband",
                "url": "http://hub",
                "modem_power_w": 30,
                "windows": [["11:00", "14:00"]],
            }
        ]
    )
    store = Store(tmp_path / "box.db")
    service = SyncService(config, store, clock, transport_factory=hub.transport)
    service.enqueue_event(_alarm(clock.now()))

    report = asyncio.run(service.run_once(clock.now(), energy_allows_w=12.0))
    assert report.items_sent == 0
    assert report.links[0].reason == "modem needs 30 W, the energy plan affords 12 W"
    assert service.ledger.state("starlink").decision == report.links[0].reason

    clock.advance(3 * 3600)  # 15:00 local: window closed, even with watts to spare
    report = asyncio.run(service.run_once(clock.now(), energy_allows_w=100.0))
    assert report.links[0].reason == "window closed (opens 11:00 local)"

    clock.advance(20 * 3600)  # 11:00 local next day
    report = asyncio.run(service.run_once(clock.now(), energy_allows_w=30.0))
    assert report.items_sent == 2  # the alarm, and the summary of the day that ended meanwhile
    counts = hub.store.stream_counts(BOX)
    assert counts["alarm"]["items"] == 1 and counts["summary"]["items"] == 1
    store.close()


def test_failover_to_the_dearer_link_and_backoff(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))
    hub = Hub(tmp_path, clock)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    config = _config(
        [
            {"name": "cell", "kind": "cellular", "url": dead, "cost_per_mb": 0.5, "timeout_s": 2},
            {"name": "sat", "kind": "satellite_broadband", "url": "http://hub", "cost_per_mb": 8.0},
        ],
        backoff_min_s=60,
        backoff_max_s=600,
    )
    store = Store(tmp_path / "box.db")

    def factory(link: LinkConfig) -> Transport:
        return HttpTransport(link, BOX, None) if link.name == "cell" else hub.transport(link)

    service = SyncService(config, store, clock, transport_factory=factory, seed=9)
    service.enqueue_event(_alarm(clock.now()))
    report = asyncio.run(service.run_once(clock.now()))
    by_link = {r.link: r for r in report.links}
    assert by_link["cell"].error and "Connect" in by_link["cell"].error
    assert by_link["sat"].items_sent == 1
    cell = service.ledger.state("cell")
    assert cell.failures == 1 and cell.backoff_until is not None
    assert timedelta(seconds=30) <= cell.backoff_until - clock.now() <= timedelta(seconds=60)

    service.enqueue_event(_alarm(clock.now(), "second"))
    report = asyncio.run(service.run_once(clock.now()))
    assert report.links[0].reason.startswith("backing off after 1 failure(s)")
    assert report.links[1].items_sent == 1

    clock.advance(61)
    service.enqueue_event(_alarm(clock.now(), "third"))
    report = asyncio.run(service.run_once(clock.now()))
    assert service.ledger.state("cell").failures == 2  # tried again after its backoff
    backoff = service.ledger.state("cell").backoff_until
    assert backoff is not None and backoff - clock.now() >= timedelta(seconds=60)
    assert [r["seq"] for r in hub.store.items(BOX, "alarm")] == [1, 2, 3]
    store.close()


def test_inbound_items_reach_callbacks_once_and_bad_ones_are_kept_out(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))
    hub = Hub(tmp_path, clock)
    config = _config(
        [{"name": "cell", "kind": "cellular", "url": "http://hub"}], inbound_interval_s=600
    )
    store = Store(tmp_path / "box.db")
    service = SyncService(config, store, clock, transport_factory=hub.transport)
    weather: list[tuple[str, bytes]] = []
    jobs: list[dict[str, Any]] = []
    patches: list[dict[str, Any]] = []
    service.on_weather(lambda name, data: weather.append((name, data)))
    service.on_job(jobs.append)
    service.on_config(patches.append)
    rows = [
        f"2024-01-0{1 + h // 24}T{h % 24:02d}:00Z,{max(0, 800 - abs(h % 24 - 12) * 130)},24"
        for h in range(48)
    ]
    csv = ("time,ghi_w_m2,temp_air_c\n" + "\n".join(rows) + "\n").encode()
    hub.store.add_inbound(BOX, "weather", "icon-48h.csv", csv, clock.now())
    hub.store.add_inbound(
        BOX, "job", "render", json.dumps({"name": "render", "energy_wh": 120}).encode(), clock.now()
    )
    hub.store.add_inbound(BOX, "config", "broken", b"{not json", clock.now())
    hub.store.add_inbound(BOX, "message", "hello", b"hi", clock.now())

    report = asyncio.run(service.run_once(clock.now()))
    assert [(i, k, s) for i, k, s in report.inbound] == [
        (1, "weather", "ok"),
        (2, "job", "ok"),
        (3, "config", "rejected"),
        (4, "message", "unhandled"),
    ]
    assert weather == [("icon-48h.csv", csv)]
    assert jobs == [{"name": "render", "energy_wh": 120}]
    assert patches == []
    warnings = store.events.list(kinds=["sync"])
    assert any("rejected" in e.message and "not JSON" in e.message for e in warnings)

    hub.store.add_inbound(
        BOX, "config", "reserve", b'{"battery": {"reserve_pct": 35}}', clock.now()
    )
    assert asyncio.run(service.run_once(clock.now())).inbound == []  # not due yet (600 s)
    clock.advance(600)
    report = asyncio.run(service.run_once(clock.now()))
    assert report.inbound == [(5, "config", "ok")]
    assert patches == [{"battery": {"reserve_pct": 35}}] and len(weather) == 1
    assert hub.store.boxes()[0]["inbound_acked"] == 4  # the box's cursor, as the hub saw it
    store.close()


def test_items_larger_than_a_link_message_wait_for_another_link(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))
    hub = Hub(tmp_path, clock)
    config = _config(
        [{"name": "tiny", "kind": "cellular", "url": "http://hub", "max_message_bytes": 200}]
    )
    store = Store(tmp_path / "box.db")
    service = SyncService(config, store, clock, transport_factory=hub.transport)
    service.enqueue_log(["x" * 400])
    service.enqueue_event(_alarm(clock.now()))
    report = asyncio.run(service.run_once(clock.now()))
    assert report.items_sent == 1
    assert "larger than the link's messages" in report.links[0].reason
    assert store.outbox.depth_by_priority()["log"] == 1


def test_link_config_errors_are_one_line() -> None:
    bad = [
        (
            {
                "name": "s",
                "kind": "satellite_sbd",
                "transport": "sbd",
                "serial_port": "/dev/ttyUSB0",
                "max_message_bytes": 400,
            },
            "exceeds the SBD limit of 340",
        ),
        ({"name": "s", "kind": "satellite_sbd", "transport": "sbd"}, "needs serial_port"),
        ({"name": "c", "kind": "cellular", "transport": "http"}, "needs url"),
        ({"name": "c", "kind": "cellular", "url": "ftp://x"}, "http:// or https://"),
        (
            {"name": "c", "kind": "cellular", "url": "http://x", "windows": [["25:00", "02:00"]]},
            "HH:MM",
        ),
        (
            {"name": "c", "kind": "cellular", "url": "http://x", "max_priority": "urgent"},
            "max_priority",
        ),
    ]
    for link, text in bad:
        with pytest.raises(ConfigError, match=text) as info:
            parse_config({"links": [link]})
        assert "\n" not in str(info.value)
    sbd = parse_config(
        {
            "links": [
                {
                    "name": "s",
                    "kind": "satellite_sbd",
                    "transport": "sbd",
                    "serial_port": "/dev/ttyUSB0",
                }
            ]
        }
    ).links[0]
    assert (sbd.max_message_bytes, sbd.max_inbound_bytes, sbd.overhead_bytes_per_request) == (
        340,
        270,
        0,
    )


def test_run_loop_sends_store_alarms_and_asks_the_plan_for_watts(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2024, 1, 1, 9, 0, tzinfo=UTC))
    hub = Hub(tmp_path, clock)
    config = _config(
        [{"name": "cell", "kind": "cellular", "url": "http://hub", "modem_power_w": 6}]
    )
    store = Store(tmp_path / "box.db")
    service = SyncService(config, store, clock, transport_factory=hub.transport)
    service.watch_events()
    watts_asked: list[float] = []

    def affordable_w() -> float:
        watts_asked.append(clock.now().timestamp())
        return 0.0 if len(watts_asked) < 3 else 10.0  # the plan affords the modem on pass 3

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop, affordable_w))
        store.events.add(_alarm(clock.now(), "fire in the battery room"))
        store.events.add(
            Event(at=clock.now(), kind=EventKind.SYNC, message="ours", severity=Severity.ALARM)
        )
        for _ in range(2000):
            if hub.store.stream_counts(BOX).get("alarm"):
                break
            await asyncio.sleep(0.001)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    alarms = hub.store.items(BOX, "alarm")
    assert len(alarms) == 1 and len(watts_asked) >= 3
    store.close()
