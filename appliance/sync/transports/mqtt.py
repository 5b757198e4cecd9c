"""MQTT to a broker the hub listens on: batches up with QoS 1, acknowledgements and inbound down.

A PUBACK only says the broker has the batch; an item counts as delivered when the hub's own
acknowledgement arrives on ``<prefix>/<box>/ack``, so a broker restart without persistence
cannot lose anything. Inbound items arrive on ``<prefix>/<box>/in`` and wait in the broker
session while the modem is off.
"""

from __future__ import annotations

import asyncio
import json
import threading

from appliance.config import LinkConfig
from appliance.sync.mqtt_client import PUBACK_BYTES, MqttError, MqttSession, publish_packet_bytes
from appliance.sync.transports.base import Delivery, InboundFetch, TransportError
from appliance.sync.varint import DecodeError
from appliance.sync.wire import Batch, InboundItem, decode_inbound, encode_batch

ACK_RESERVE_BYTES = 300  # hub's ack PUBLISH (topic + small JSON) and our PUBACK for it
CONNECT_RESERVE_BYTES = 200  # CONNECT/CONNACK/SUBSCRIBE/SUBACK when the link comes up


def topics(prefix: str, box: str) -> dict[str, str]:
    return {"up": f"{prefix}/{box}/up", "ack": f"{prefix}/{box}/ack", "in": f"{prefix}/{box}/in"}


class MqttTransport:
    def __init__(self, link: LinkConfig, box: str, token: str | None = None) -> None:
        if not link.url:
            raise ValueError(f"link {link.name}: no url")
        self.link = link
        self.box = box
        self.topics = topics(link.topic_prefix, box)
        self._session = MqttSession(
            link.url,
            f"sunbox-box-{box}",
            [self.topics["ack"], self.topics["in"]],
            self._on_message,
            username=box if token else None,
            password=token,
            timeout_s=link.timeout_s,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[dict[str, object]]] = {}
        self._inbound: list[InboundItem] = []
        self._inbound_bytes = 0
        self._ack_bytes = 0
        self.errors: list[str] = []

    def _on_message(self, topic: str, payload: bytes) -> None:
        wire = publish_packet_bytes(topic, len(payload)) + PUBACK_BYTES
        if topic == self.topics["ack"]:
            try:
                ack = json.loads(payload)
                batch_id = int(ack["batch"])
            except (ValueError, KeyError, TypeError):
                self.errors.append("unreadable ack")
                return
            with self._lock:
                self._ack_bytes += wire
                fut = self._waiting.pop(batch_id, None)
            if fut is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(_resolve, fut, ack)
        elif topic == self.topics["in"]:
            try:
                item = decode_inbound(payload)
            except DecodeError as exc:
                self.errors.append(f"unreadable inbound item: {exc}")
                return
            with self._lock:
                self._inbound.append(item)
                self._inbound_bytes += wire

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self._session.connect()
        except MqttError as exc:
            raise TransportError(str(exc), CONNECT_RESERVE_BYTES, 0) from exc

    async def close(self) -> None:
        await self._session.close()

    def cost_upper_bound(self, batch_bytes: int) -> int:
        return (
            publish_packet_bytes(self.topics["up"], batch_bytes)
            + PUBACK_BYTES
            + ACK_RESERVE_BYTES
            + self.link.overhead_bytes_per_request
        )

    def inbound_cost_upper_bound(self, max_bytes: int) -> int:
        return 0  # inbound arrives on its own while connected; counted when drained

    async def send(self, batch: Batch) -> Delivery:
        assert self._loop is not None, "open() first"
        body = encode_batch(batch)
        up = (
            publish_packet_bytes(self.topics["up"], len(body))
            + self.link.overhead_bytes_per_request
        )
        fut: asyncio.Future[dict[str, object]] = self._loop.create_future()
        with self._lock:
            self._waiting[batch.batch_id] = fut
            self._ack_bytes = 0
        try:
            await self._session.publish(self.topics["up"], body)
            ack = await asyncio.wait_for(fut, self.link.timeout_s)
        except (MqttError, TimeoutError) as exc:
            with self._lock:
                self._waiting.pop(batch.batch_id, None)
            raise TransportError(str(exc) or "no acknowledgement from hub in time") from exc
        with self._lock:
            down = PUBACK_BYTES + self._ack_bytes
        try:
            acked = {str(k): int(v) for k, v in dict(ack["acked"]).items()}  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError) as exc:
            raise TransportError(f"bad acknowledgement from hub: {exc}", up, down) from exc
        return Delivery(acked, up, down, int(ack.get("new", 0)), int(ack.get("dup", 0)))  # type: ignore[call-overload]

    async def fetch_inbound(self, after_id: int, max_bytes: int) -> InboundFetch:
        await asyncio.sleep(0)
        with self._lock:
            items, self._inbound = self._inbound, []
            down, self._inbound_bytes = self._inbound_bytes, 0
        return InboundFetch([i for i in items if i.id > after_id], 0, down)


def _resolve(fut: asyncio.Future[dict[str, object]], value: dict[str, object]) -> None:
    if not fut.done():
        fut.set_result(value)
