"""What travels on the link: frames (one outbox item each), batches, and inbound items.

One binary framing for every transport, so an alarm costs the same bytes over HTTP, MQTT or
an Iridium short-burst message, and the hub decodes them all with one function. A frame
carries its stream and sequence number: the hub deduplicates on (box, stream, seq), which is
what makes retries after lost acknowledgements safe.

    frame   = kind flags stream:str seq created_s payload:bytes
    batch   = VERSION batch_id count frame*
    inbound = VERSION kind id name:str created_s flags payload:bytes
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from appliance.sync.varint import DecodeError, Reader, put_bytes, put_str, put_uvarint

WIRE_VERSION = 1

# Outbox item kinds on the wire (append only).
KIND_CODES: dict[str, int] = {
    "alarm": 1,
    "event": 2,
    "job_result": 3,
    "daily_summary": 4,
    "telemetry": 5,
    "log": 6,
}
_KIND_NAMES = {v: k for k, v in KIND_CODES.items()}

# Frame flags.
FLAG_DOWNSAMPLED = 0x01  # telemetry re-encoded at a coarser step because the budget was short

# Inbound (hub -> box) item kinds (append only).
INBOUND_CODES: dict[str, int] = {"config": 1, "job": 2, "weather": 3, "message": 4}
_INBOUND_NAMES = {v: k for k, v in INBOUND_CODES.items()}
INBOUND_ZLIB = 0x01


@dataclass(frozen=True)
class Frame:
    kind: str
    stream: str
    seq: int
    created_at: datetime
    payload: bytes
    flags: int = 0

    @property
    def key_suffix(self) -> str:
        return f"{self.stream}:{self.seq}"


@dataclass(frozen=True)
class Batch:
    batch_id: int
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class InboundItem:
    """Something the hub sends a box: a config patch, a job spec, a weather file."""

    id: int
    kind: str
    name: str
    created_at: datetime
    payload: bytes


def _secs(moment: datetime) -> int:
    return max(0, int(moment.timestamp()))


def _from_secs(secs: int) -> datetime:
    try:
        return datetime.fromtimestamp(secs, tz=UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise DecodeError(f"timestamp out of range: {secs}") from exc


def encode_frame(frame: Frame, out: bytearray | None = None) -> bytes:
    buf = bytearray() if out is None else out
    start = len(buf)
    code = KIND_CODES.get(frame.kind)
    if code is None:
        raise ValueError(f"unknown item kind {frame.kind!r}")
    buf.append(code)
    buf.append(frame.flags & 0xFF)
    put_str(buf, frame.stream)
    put_uvarint(buf, frame.seq)
    put_uvarint(buf, _secs(frame.created_at))
    put_bytes(buf, frame.payload)
    return bytes(buf[start:])


def frame_size(frame: Frame) -> int:
    return len(encode_frame(frame))


def read_frame(r: Reader) -> Frame:
    code = r.byte()
    kind = _KIND_NAMES.get(code)
    if kind is None:
        raise DecodeError(f"unknown item kind code {code}")
    flags = r.byte()
    stream = r.str_()
    if not stream or len(stream) > 64:
        raise DecodeError("bad stream name")
    seq = r.uvarint()
    if seq < 1:
        raise DecodeError("sequence numbers start at 1")
    created = _from_secs(r.uvarint())
    payload = r.bytes_()
    return Frame(kind, stream, seq, created, payload, flags)


BATCH_HEADER_MAX = 1 + 5 + 5  # version + batch id + count, as varints


def encode_batch(batch: Batch) -> bytes:
    buf = bytearray((WIRE_VERSION,))
    put_uvarint(buf, batch.batch_id)
    put_uvarint(buf, len(batch.frames))
    for f in batch.frames:
        encode_frame(f, buf)
    return bytes(buf)


def decode_batch(data: bytes) -> Batch:
    r = Reader(data)
    version = r.byte()
    if version != WIRE_VERSION:
        raise DecodeError(f"batch version {version} (this side reads {WIRE_VERSION})")
    batch_id = r.uvarint()
    count = r.uvarint()
    if count > 100_000:
        raise DecodeError("too many frames")
    frames = tuple(read_frame(r) for _ in range(count))
    if r.remaining():
        raise DecodeError(f"{r.remaining()} stray bytes after the last frame")
    return Batch(batch_id, frames)


def encode_inbound(item: InboundItem, compress: bool = True) -> bytes:
    code = INBOUND_CODES.get(item.kind)
    if code is None:
        raise ValueError(f"unknown inbound kind {item.kind!r}")
    payload, flags = item.payload, 0
    if compress:
        packed = zlib.compress(item.payload, 9)
        if len(packed) < len(payload):
            payload, flags = packed, INBOUND_ZLIB
    buf = bytearray((WIRE_VERSION, code))
    put_uvarint(buf, item.id)
    put_str(buf, item.name)
    put_uvarint(buf, _secs(item.created_at))
    buf.append(flags)
    put_bytes(buf, payload)
    return bytes(buf)


def read_inbound(r: Reader) -> InboundItem:
    version = r.byte()
    if version != WIRE_VERSION:
        raise DecodeError(f"inbound version {version} (this side reads {WIRE_VERSION})")
    code = r.byte()
    kind = _INBOUND_NAMES.get(code)
    if kind is None:
        raise DecodeError(f"unknown inbound kind code {code}")
    item_id = r.uvarint()
    name = r.str_()
    created = _from_secs(r.uvarint())
    flags = r.byte()
    payload = r.bytes_()
    if flags & INBOUND_ZLIB:
        try:
            payload = zlib.decompress(payload)
        except zlib.error as exc:
            raise DecodeError(f"corrupt inbound payload ({exc})") from exc
    return InboundItem(item_id, kind, name, created, payload)


def decode_inbound(data: bytes) -> InboundItem:
    r = Reader(data)
    item = read_inbound(r)
    if r.remaining():
        raise DecodeError(f"{r.remaining()} stray bytes after an inbound item")
    return item


def encode_inbound_list(items: list[bytes]) -> bytes:
    """Several encoded inbound items in one body (HTTP), each length-prefixed."""
    buf = bytearray()
    put_uvarint(buf, len(items))
    for raw in items:
        put_bytes(buf, raw)
    return bytes(buf)


def decode_inbound_list(data: bytes) -> list[InboundItem]:
    r = Reader(data)
    items = [decode_inbound(r.bytes_()) for _ in range(r.uvarint())]
    if r.remaining():
        raise DecodeError(f"{r.remaining()} stray bytes after the inbound list")
    return items
