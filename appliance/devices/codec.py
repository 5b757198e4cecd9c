"""Register words <-> engineering values.

SunSpec and Victron both send big-endian 16-bit words; 32/64-bit values are high word first.
"Not implemented" sentinels become None, never a number: 0x8000 (int16, sunssf), 0xFFFF
(uint16, enum16, bitfield16), 0x80000000 (int32), 0xFFFFFFFF (uint32, bitfield32), 0 for
acc32/acc64 is a valid count. Strings are NUL-padded ASCII/UTF-8.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

Value = int | float | str | None

# Register count of each type (strings: from the point's size).
TYPE_SIZES: dict[str, int] = {
    "int16": 1, "uint16": 1, "count": 1, "acc16": 1, "enum16": 1, "bitfield16": 1, "sunssf": 1,
    "pad": 1, "raw16": 1, "int32": 2, "uint32": 2, "acc32": 2, "enum32": 2, "bitfield32": 2,
    "float32": 2, "ipaddr": 2, "int64": 4, "uint64": 4, "acc64": 4, "float64": 4, "ipv6addr": 8,
    "eui48": 4,
}

_NOT_IMPLEMENTED: dict[str, int] = {
    "int16": 0x8000, "sunssf": 0x8000, "uint16": 0xFFFF, "count": 0xFFFF, "enum16": 0xFFFF,
    "bitfield16": 0xFFFF, "int32": 0x80000000, "uint32": 0xFFFFFFFF, "enum32": 0xFFFFFFFF,
    "bitfield32": 0xFFFFFFFF, "int64": 0x8000000000000000, "uint64": 0xFFFFFFFFFFFFFFFF,
    "acc16": 0x10000, "acc32": 0x100000000, "acc64": 0x10000000000000000,  # never match: counters
}

_SIGNED = {"int16", "sunssf", "int32", "int64"}


class DecodeError(ValueError):
    """The words cannot be a value of this type (wrong count, bad string bytes)."""


def word_count(type_name: str, size: int | None = None) -> int:
    if type_name == "string":
        if not size:
            raise DecodeError("string needs a size")
        return size
    try:
        return TYPE_SIZES[type_name]
    except KeyError:
        raise DecodeError(f"unknown type {type_name!r}") from None


def _as_uint(words: Sequence[int]) -> int:
    value = 0
    for w in words:
        if not 0 <= int(w) <= 0xFFFF:
            raise DecodeError(f"register word {w!r} out of 0..65535")
        value = (value << 16) | int(w)
    return value


def decode(words: Sequence[int], type_name: str, size: int | None = None) -> Value:
    """Decode raw words; returns None for the type's not-implemented sentinel."""
    n = word_count(type_name, size)
    if len(words) != n:
        raise DecodeError(f"{type_name} needs {n} words, got {len(words)}")
    if type_name == "string":
        raw = b"".join(int(w).to_bytes(2, "big") for w in words)
        text = raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace").strip()
        return text or None
    if type_name == "pad":
        return None
    if type_name in ("float32", "float64"):
        fmt = ">f" if type_name == "float32" else ">d"
        value = struct.unpack(fmt, _as_uint(words).to_bytes(2 * n, "big"))[0]
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if type_name in ("ipaddr", "ipv6addr", "eui48"):
        return _as_uint(words)
    unsigned = _as_uint(words)
    if unsigned == _NOT_IMPLEMENTED.get(type_name, -1):
        return None
    if type_name in _SIGNED:
        bits = 16 * n
        if unsigned >= 1 << (bits - 1):
            return unsigned - (1 << bits)
    return unsigned


def encode(value: Value, type_name: str, size: int | None = None) -> list[int]:
    """Encode a value (already in register units, i.e. unscaled) as words; None -> sentinel."""
    n = word_count(type_name, size)
    if type_name == "string":
        raw = ("" if value is None else str(value)).encode("utf-8")[: 2 * n].ljust(2 * n, b"\x00")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2 * n, 2)]
    if type_name in ("float32", "float64"):
        fmt = ">f" if type_name == "float32" else ">d"
        raw = struct.pack(fmt, float("nan") if value is None else float(value))
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, 2 * n, 2)]
    if value is None:
        sentinel = _NOT_IMPLEMENTED.get(type_name, 0)
        unsigned = 0 if sentinel >= 1 << (16 * n) else sentinel
    else:
        iv = int(round(float(value))) if not isinstance(value, int) else value
        bits = 16 * n
        lo = -(1 << (bits - 1)) if type_name in _SIGNED else 0
        hi = (1 << (bits - 1)) - 1 if type_name in _SIGNED else (1 << bits) - 1
        if not lo <= iv <= hi:
            raise DecodeError(f"{iv} does not fit {type_name}")
        unsigned = iv & ((1 << bits) - 1)
    return [(unsigned >> (16 * (n - 1 - i))) & 0xFFFF for i in range(n)]


def apply_scale(raw: Value, sf: int | None) -> float | None:
    """SunSpec scale factor: value * 10**sf. A missing sf (None) leaves the value as is."""
    if raw is None or isinstance(raw, str):
        return None
    return float(raw) * (10.0 ** sf) if sf is not None else float(raw)
