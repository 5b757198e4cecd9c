"""The contract every transport keeps, so the service can budget and retry without knowing which.

A transport reports the bytes it put on the link, as the carrier would count them: the budget
is charged with ``cost_upper_bound`` before sending and corrected to the measured bytes after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from appliance.config import LinkConfig
from appliance.sync.wire import Batch, InboundItem


class TransportError(Exception):
    """The link failed this time. ``bytes_up``/``bytes_down`` are None when unknown (the
    pre-charged estimate then stands)."""

    def __init__(
        self, message: str, bytes_up: int | None = None, bytes_down: int | None = None
    ) -> None:
        super().__init__(message)
        self.bytes_up = bytes_up
        self.bytes_down = bytes_down


@dataclass(frozen=True)
class Delivery:
    """The hub's acknowledgement of a batch: per stream, the highest sequence number it holds."""

    acked: dict[str, int]
    bytes_up: int
    bytes_down: int
    new: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class InboundFetch:
    items: list[InboundItem] = field(default_factory=list)
    bytes_up: int = 0
    bytes_down: int = 0


class Transport(Protocol):
    link: LinkConfig

    async def open(self) -> None:
        """Bring the link up (connect, attach the modem)."""
        ...

    async def close(self) -> None: ...

    def cost_upper_bound(self, batch_bytes: int) -> int:
        """Most bytes (up + down) sending a batch of ``batch_bytes`` can cost on this link."""
        ...

    def inbound_cost_upper_bound(self, max_bytes: int) -> int: ...

    async def send(self, batch: Batch) -> Delivery: ...

    async def fetch_inbound(self, after_id: int, max_bytes: int) -> InboundFetch: ...
