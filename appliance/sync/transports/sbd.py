"""Iridium short-burst data: one batch per ≤ 340-byte MO message, inbound as ≤ 270-byte MT.

A session is attempted only with signal (``+CSQ`` ≥ ``min_signal``): a session in a dead spot
costs energy and fails. A failed session (MO status ≥ 5) costs nothing on the bill and the
items stay in the outbox for the next try; a successful one is acknowledged by the Iridium
gateway, which forwards it to the hub (the hub deduplicates on stream and sequence).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from appliance.config import LinkConfig
from appliance.sync.sbd_modem import MT_MAX_BYTES, ModemError, SbdModem
from appliance.sync.transports.base import Delivery, InboundFetch, TransportError
from appliance.sync.varint import DecodeError
from appliance.sync.wire import Batch, InboundItem, decode_inbound, encode_batch

MAX_MAILBOX_CHECKS = 4


class SbdTransport:
    def __init__(
        self,
        link: LinkConfig,
        box: str,
        modem_factory: Callable[[], SbdModem] | None = None,
        min_signal: int = 1,
    ) -> None:
        if not link.serial_port and modem_factory is None:
            raise ValueError(f"link {link.name}: no serial_port")
        self.link = link
        self.box = box
        self.min_signal = min_signal
        port = link.serial_port or ""
        self._factory = modem_factory or (
            lambda: SbdModem(port, link.baudrate, session_timeout_s=link.timeout_s)
        )
        self._modem: SbdModem | None = None
        self._inbound: list[InboundItem] = []
        self._mt_queued = 0
        self.sessions = 0
        self.failed_sessions = 0
        self.errors: list[str] = []

    async def open(self) -> None:
        modem = self._factory()
        try:
            await asyncio.to_thread(modem.open)
        except ModemError as exc:
            await asyncio.to_thread(modem.close)
            raise TransportError(str(exc), 0, 0) from exc
        self._modem = modem

    async def close(self) -> None:
        if self._modem is not None:
            await asyncio.to_thread(self._modem.close)
            self._modem = None

    def cost_upper_bound(self, batch_bytes: int) -> int:
        # The session may also bring down one MT message.
        return (
            batch_bytes
            + (self.link.max_inbound_bytes or MT_MAX_BYTES)
            + self.link.overhead_bytes_per_request
        )

    def inbound_cost_upper_bound(self, max_bytes: int) -> int:
        return min(max_bytes, MAX_MAILBOX_CHECKS * (self.link.max_inbound_bytes or MT_MAX_BYTES))

    def _take_mt(self, modem: SbdModem) -> int:
        data = modem.read_mt()
        try:
            self._inbound.append(decode_inbound(data))
        except DecodeError as exc:
            self.errors.append(f"unreadable MT message: {exc}")
        return len(data)

    def _send_blocking(self, body: bytes) -> tuple[int, int]:
        modem = self._modem
        if modem is None:
            raise TransportError("modem not open", 0, 0)
        try:
            csq = modem.signal()
            if csq < self.min_signal:
                raise TransportError(f"no Iridium signal (CSQ {csq})", 0, 0)
            modem.write_mo(body)
            self.sessions += 1
            result = modem.session()
            if not result.mo_ok:
                self.failed_sessions += 1
                modem.clear_mo()
                raise TransportError(
                    f"SBD session failed: MO status {result.mo_status} ({result.describe()})", 0, 0
                )
            modem.clear_mo()
            down = 0
            self._mt_queued = result.mt_queued
            if result.mt_status == 1:
                down = self._take_mt(modem)
            return len(body), down
        except ModemError as exc:
            raise TransportError(f"modem: {exc}") from exc

    async def send(self, batch: Batch) -> Delivery:
        body = encode_batch(batch)
        if len(body) > self.link.max_message_bytes:
            raise TransportError(
                f"batch of {len(body)} bytes exceeds {self.link.max_message_bytes}", 0, 0
            )
        up, down = await asyncio.to_thread(self._send_blocking, body)
        acked: dict[str, int] = {}
        for f in batch.frames:
            acked[f.stream] = max(acked.get(f.stream, 0), f.seq)
        return Delivery(acked, up, down)

    def _mailbox_blocking(self, max_bytes: int) -> int:
        modem = self._modem
        if modem is None:
            return 0
        down = 0
        checks = 0
        per = self.link.max_inbound_bytes or MT_MAX_BYTES
        try:
            while self._mt_queued > 0 and checks < MAX_MAILBOX_CHECKS and down + per <= max_bytes:
                checks += 1
                modem.clear_mo()
                result = modem.session()
                self._mt_queued = result.mt_queued
                if result.mt_status == 1:
                    down += self._take_mt(modem)
                elif result.mt_status == 2:
                    break
        except ModemError as exc:
            self.errors.append(f"mailbox check: {exc}")
        return down

    async def fetch_inbound(self, after_id: int, max_bytes: int) -> InboundFetch:
        down = await asyncio.to_thread(self._mailbox_blocking, max_bytes)
        items, self._inbound = self._inbound, []
        return InboundFetch([i for i in items if i.id > after_id], 0, down)
