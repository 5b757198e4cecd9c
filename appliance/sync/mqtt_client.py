"""A small asyncio face on paho-mqtt: persistent MQTT 5 session, QoS 1 both ways.

Both ends keep a session on the broker (clean_start False, session expiry of days), so messages
published while one side is away are queued by the broker and delivered when it comes back.
paho runs its network loop in its own thread; results come back to asyncio through futures.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600


class MqttError(Exception):
    pass


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"not an mqtt:// url: {url}")
    tls = parsed.scheme == "mqtts"
    if not parsed.hostname:
        raise ValueError(f"no host in {url}")
    return BrokerAddress(
        parsed.hostname,
        parsed.port or (8883 if tls else 1883),
        tls,
        unquote(parsed.username) if parsed.username else None,
        unquote(parsed.password) if parsed.password else None,
    )


def publish_packet_bytes(topic: str, payload_len: int, qos: int = 1) -> int:
    """Bytes of an MQTT 5 PUBLISH on the wire (fixed header, topic, packet id, no properties)."""
    remaining = 2 + len(topic.encode()) + (2 if qos else 0) + 1 + payload_len
    size_len = 1
    n = remaining
    while n >= 128:
        n >>= 7
        size_len += 1
    return 1 + size_len + remaining


PUBACK_BYTES = 4


class MqttSession:
    """One persistent session. ``on_message(topic, payload)`` runs in paho's thread."""

    def __init__(
        self,
        url: str,
        client_id: str,
        subscriptions: list[str],
        on_message: Callable[[str, bytes], None],
        *,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
    ) -> None:
        self.address = parse_broker_url(url)
        self.client_id = client_id
        self._subscriptions = subscriptions
        self._on_message = on_message
        self._timeout_s = timeout_s
        self._expiry_s = session_expiry_s
        self._username = username or self.address.username
        self._password = password or self.address.password
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._error = ""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _build(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        if self._username:
            client.username_pw_set(self._username, self._password)
        if self.address.tls:
            client.tls_set()
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_subscribe = self._handle_subscribe
        client.on_message = self._handle_message
        client.max_inflight_messages_set(1)  # keeps a stream in order through redeliveries
        return client

    def _handle_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self._error = f"broker refused: {reason}"
            return
        self._connected.set()
        if self._subscriptions:
            client.subscribe([(t, 1) for t in self._subscriptions])
        else:
            self._subscribed.set()

    def _handle_subscribe(self, *_args: object) -> None:
        self._subscribed.set()

    def _handle_disconnect(self, *_args: object) -> None:
        self._connected.clear()

    def _handle_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._on_message(msg.topic, bytes(msg.payload))

    def _connect_blocking(self) -> None:
        client = self._build()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._expiry_s
        try:
            client.connect(
                self.address.host,
                self.address.port,
                keepalive=30,
                clean_start=False,
                properties=props,
            )
        except OSError as exc:
            raise MqttError(
                f"cannot reach broker {self.address.host}:{self.address.port}: {exc}"
            ) from exc
        self._client = client
        client.loop_start()
        if not self._connected.wait(self._timeout_s) or not self._subscribed.wait(self._timeout_s):
            client.loop_stop()
            client.disconnect()
            self._client = None
            raise MqttError(self._error or "no CONNACK/SUBACK from broker in time")

    async def connect(self) -> None:
        await asyncio.to_thread(self._connect_blocking)

    def _publish_blocking(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None or not self._connected.is_set():
            raise MqttError("not connected")
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise MqttError(f"publish failed: {mqtt.error_string(info.rc)}")
        try:
            info.wait_for_publish(self._timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise MqttError(f"publish failed: {exc}") from exc
        if not info.is_published():
            raise MqttError("no PUBACK from broker in time")

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        await asyncio.to_thread(self._publish_blocking, topic, payload)

    def publish_nowait(self, topic: str, payload: bytes) -> None:
        """From paho's own thread (callbacks): queue a QoS 1 publish without waiting."""
        if self._client is not None:
            self._client.publish(topic, payload, qos=1)

    def _close_blocking(self) -> None:
        client = self._client
        self._client = None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._connected.clear()
        self._subscribed.clear()

    async def close(self) -> None:
        await asyncio.to_thread(self._close_blocking)

    def close_blocking(self) -> None:
        self._close_blocking()
