"""MQTT against a real Mosquitto on 127.0.0.1 (started here): QoS 1, persistent MQTT 5 sessions.

The hub's bridge goes away while the box publishes; the broker keeps the batch in the hub's
session and delivers it when the bridge returns. The box, not having heard an acknowledgement,
sends again; the hub stores each item once. Inbound items published while the box's modem is
off wait in the box's session and arrive on its next connection.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.clock import ManualClock
from appliance.config import parse_config
from appliance.state import Event, EventKind, Severity
from appliance.store import Store
from appliance.sync import SyncService
from appliance.sync.hub import HubStore
from appliance.sync.hub.mqtt_bridge import HubMqttBridge
from appliance.sync.messages import decode_event
from tests.conftest import free_port
from tests.system_packages import require


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    mosquitto = require("mosquitto")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    import socket

    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, (
                proc.stderr.read().decode() if proc.stderr else "mosquitto died"
            )
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(5)


def test_mqtt_qos1_persistent_sessions_exactly_once(broker: str, tmp_path: Path) -> None:
    config = parse_config(
        {
            "site": {"name": "mbita-2", "tz": "Africa/Nairobi"},
            "links": [
                {
                    "name": "lte",
                    "kind": "cellular",
                    "transport": "mqtt",
                    "url": broker,
                    "daily_budget_bytes": 5_000_000,
                    "timeout_s": 1.5,
                    "batch_max_items": 50,
                }
            ],
            "sync": {"backoff_min_s": 30, "backoff_max_s": 60, "inbound_interval_s": 1},
        }
    )
    clock = ManualClock(datetime(2024, 5, 1, 8, 0, tzinfo=UTC))
    store = Store(tmp_path / "box.db")
    hub = HubStore(tmp_path / "hub.db")
    service = SyncService(config, store, clock, seed=5)
    patches: list[dict[str, object]] = []
    service.on_config(patches.append)

    def alarms(start: int, n: int) -> None:
        for i in range(start, start + n):
            service.enqueue_event(
                Event(
                    at=clock.now(),
                    kind=EventKind.ALARM,
                    source="bms",
                    severity=Severity.ALARM,
                    message=f"alarm {i}",
                )
            )

    async def scenario() -> None:
        bridge = HubMqttBridge(hub, broker, clock, push_interval_s=0.1)
        await bridge.start()
        alarms(1, 120)
        service.enqueue_log(["first log line"])
        report = await service.run_once(clock.now())
        assert report.items_sent == 121, report
        assert hub.stream_counts("mbita-2") == {
            "alarm": {"items": 120, "last_seq": 120},
            "log": {"items": 1, "last_seq": 1},
        }

        # the hub goes away; its session stays on the broker
        await bridge.stop()
        alarms(121, 30)
        report = await service.run_once(clock.now())
        assert report.items_sent == 0 and "acknowledgement" in report.links[0].error
        assert store.outbox.depth_by_priority()["alarm"] == 30
        hub.add_inbound(
            "mbita-2",
            "config",
            "reserve",
            json.dumps({"battery": {"reserve_pct": 35}}).encode(),
            clock.now(),
        )

        # the hub returns: the broker hands it the batch it kept (the box is offline now)
        bridge = HubMqttBridge(hub, broker, clock, push_interval_s=0.1)
        await bridge.start()
        deadline = time.monotonic() + 10
        while hub.stream_counts("mbita-2")["alarm"]["items"] < 150:
            assert time.monotonic() < deadline, "queued batch never reached the hub"
            await asyncio.sleep(0.05)
        assert await bridge.push_inbound() == 1  # into the box's session while it is away

        # the box comes back after its backoff, resends, is acknowledged; gets the inbound item
        clock.advance(120)
        report = await service.run_once(clock.now())
        assert report.items_sent == 30, report
        assert store.outbox.depth_by_priority()["alarm"] == 0
        assert patches == [{"battery": {"reserve_pct": 35}}]
        await bridge.stop()

    asyncio.run(scenario())

    rows = hub.items("mbita-2", "alarm", limit=1000)
    assert [r["seq"] for r in rows] == list(range(1, 151))  # once each, in order
    assert [decode_event(bytes(r["payload"])).message for r in rows] == [
        f"alarm {i}" for i in range(1, 151)
    ]
    assert all(r["via"] == "mqtt" for r in rows)
    usage = service.ledger.usage("lte", clock.now().astimezone(config.site.zone).date())
    assert usage.items == 151 and usage.bytes_up > 150 * 10
    store.close()
    hub.close()
