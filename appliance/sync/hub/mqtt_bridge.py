"""The hub's MQTT side: stores batches boxes publish, acknowledges them, pushes inbound items.

The bridge keeps a persistent broker session (``sunbox-hub``), so batches published while the
hub is down wait at the broker and arrive when it returns; the store deduplicates them like
HTTP retries.
"""

from __future__ import annotations

import asyncio
import json
import logging

from appliance.clock import Clock
from appliance.sync.hub.store import HubStore
from appliance.sync.mqtt_client import MqttSession
from appliance.sync.varint import DecodeError
from appliance.sync.wire import decode_batch, encode_inbound

log = logging.getLogger(__name__)


class HubMqttBridge:
    def __init__(
        self,
        store: HubStore,
        url: str,
        clock: Clock,
        prefix: str = "sunbox",
        client_id: str = "sunbox-hub",
        push_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.prefix = prefix
        self.push_interval_s = push_interval_s
        self.session = MqttSession(url, client_id, [f"{prefix}/+/up"], self._on_message)
        self.received = 0
        self.errors: list[str] = []

    def _on_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != 3 or parts[2] != "up":
            return
        box = parts[1]
        try:
            batch = decode_batch(payload)
        except DecodeError as exc:
            self.errors.append(f"{box}: bad batch: {exc}")
            return
        ack = self.store.ingest(box, batch, "mqtt", self.clock.now())
        self.received += 1
        self.session.publish_nowait(
            f"{self.prefix}/{box}/ack", json.dumps(ack.as_dict(), separators=(",", ":")).encode()
        )

    async def start(self) -> None:
        await self.session.connect()

    async def stop(self) -> None:
        await self.session.close()

    async def push_inbound(self) -> int:
        """Publish inbound items not yet handed to the broker for boxes that speak MQTT."""
        sent = 0
        for box in self.store.boxes_via("mqtt"):
            for item in self.store.inbound_unsent_mqtt(box):
                await self.session.publish(f"{self.prefix}/{box}/in", encode_inbound(item))
                self.store.mark_inbound_mqtt_sent(item.id, self.clock.now())
                sent += 1
        return sent

    async def push_loop(self) -> None:
        while True:
            try:
                await self.push_inbound()
            except Exception:  # broker hiccup: try again next round
                log.exception("pushing inbound items over MQTT")
            await asyncio.sleep(self.push_interval_s)
