"""Variable-length integers (LEB128 / protobuf style) and zig-zag signed mapping.

Every byte on a metered link is paid for, so small numbers take one byte and only large
numbers take more. Python ints are unbounded; so are these varints.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that do not parse as what they claim to be (truncated, corrupt, wrong version)."""


def zigzag(n: int) -> int:
    """Signed -> unsigned so that small magnitudes stay small: 0,-1,1,-2 -> 0,1,2,3."""
    return n * 2 if n >= 0 else -n * 2 - 1


def unzigzag(n: int) -> int:
    return n // 2 if n % 2 == 0 else -(n + 1) // 2


def put_uvarint(out: bytearray, n: int) -> None:
    if n < 0:
        raise ValueError(f"uvarint cannot hold a negative number ({n})")
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def put_svarint(out: bytearray, n: int) -> None:
    put_uvarint(out, zigzag(n))


def put_bytes(out: bytearray, data: bytes) -> None:
    put_uvarint(out, len(data))
    out += data


def put_str(out: bytearray, text: str) -> None:
    put_bytes(out, text.encode("utf-8"))


def uvarint_size(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


class Reader:
    """Sequential reader over bytes; every read checks bounds and raises DecodeError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise DecodeError("truncated: expected a byte")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uvarint(self) -> int:
        shift = 0
        result = 0
        data = self.data
        while True:
            if self.pos >= len(data):
                raise DecodeError("truncated varint")
            b = data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7
            if shift > 7 * 20:
                raise DecodeError("varint too long")

    def svarint(self) -> int:
        return unzigzag(self.uvarint())

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"truncated: expected {n} bytes, {self.remaining()} left")
        chunk = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return chunk

    def bytes_(self) -> bytes:
        return self.take(self.uvarint())

    def str_(self) -> str:
        raw = self.bytes_()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("invalid UTF-8 text") from exc
