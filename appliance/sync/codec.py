"""Compact telemetry blocks: columnar per channel, delta-of-delta times, delta or XOR values.

The shape follows Gorilla (Pelkonen et al., VLDB 2015): timestamps that tick regularly become
runs of zero delta-of-deltas, and slowly changing values become small deltas. Two changes suit
a metered link better than Gorilla's bit stream: values are quantised to each channel's
resolution (a 1 W step for power, 0.1 % for SoC: finer than any sensor here is accurate) so
deltas are small integers, and every number is a byte-aligned varint so that zlib or zstd can
then squeeze the repeats. Channels without a known resolution are kept exact with XOR of the
float bits. A block of one day, 21 channels at 1 min, comes to about one byte per point.

Layout (after the 2-byte header ``version, compression``), all integers varints::

    time_unit_ms step_ms n_axes {n t0 d1 dod...}* n_channels
    {code [name] axis mode [mantissa exponent] stream_len}*  stream*
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from appliance.sync.varint import DecodeError, Reader, put_str, put_svarint, put_uvarint

if TYPE_CHECKING:
    from appliance.store import Store

FORMAT_VERSION = 1
COMP_NONE, COMP_ZLIB, COMP_ZSTD = 0, 1, 2
MODE_XOR, MODE_DELTA, MODE_DOD = 0, 1, 2
MODE_DEFAULT_STEP = 0x04  # flag: the step is default_resolution(channel), not spelled out

# Channel names that travel as one byte (code = index + 1). Append only: a hub decodes blocks
# from boxes running older releases.
CHANNEL_CODES: tuple[str, ...] = (
    "soc_pct",
    "battery_power_w",
    "battery_voltage_v",
    "battery_current_a",
    "battery_temp_c",
    "battery_soh_pct",
    "battery_reserve_pct",
    "battery_charge_max_w",
    "battery_discharge_max_w",
    "pv_power_w",
    "pv_voltage_v",
    "pv_energy_wh",
    "ac_load_power_w",
    "inverter_power_w",
    "inverter_temp_c",
    "inverter_state",
    "ac_energy_wh",
    "compute_power_w",
    "room_temp_c",
    "outdoor_temp_c",
    "damper_pct",
)
_CODE_OF = {name: i + 1 for i, name in enumerate(CHANNEL_CODES)}

# Default quantisation step by unit suffix (longest suffix first: "_wh" before "_w"). Blocks
# say "default step" in one bit instead of spelling it, so this table is part of format 1:
# changing a step needs a new FORMAT_VERSION.
SUFFIX_STEPS: tuple[tuple[str, float], ...] = (
    ("_wh", 1.0),
    ("_w", 1.0),
    ("_pct", 0.1),
    ("_c", 0.1),
    ("_v", 0.01),
    ("_a", 0.01),
    ("_hz", 0.01),
    ("_state", 1.0),
    ("_m_s", 0.1),
    ("_w_m2", 1.0),
)
# Counters keep their last value when downsampled; everything else is averaged.
COUNTER_SUFFIXES = ("_wh",)


@dataclass(frozen=True)
class Series:
    """Samples of one channel, in time order (UTC milliseconds)."""

    channel: str
    ts_ms: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.ts_ms) != len(self.values):
            raise ValueError(
                f"{self.channel}: {len(self.ts_ms)} times but {len(self.values)} values"
            )


@dataclass(frozen=True)
class TelemetryBlock:
    """Several channels over one time window: the unit of telemetry in the outbox."""

    series: tuple[Series, ...]
    step_s: float = 0.0  # nominal sample step, 0 for raw samples

    @property
    def points(self) -> int:
        return sum(len(s.values) for s in self.series)

    def channel(self, name: str) -> Series | None:
        return next((s for s in self.series if s.channel == name), None)

    def span_ms(self) -> tuple[int, int] | None:
        starts = [s.ts_ms[0] for s in self.series if s.ts_ms]
        ends = [s.ts_ms[-1] for s in self.series if s.ts_ms]
        return (min(starts), max(ends)) if starts else None


Resolution = Callable[[str], float | None]


def default_resolution(channel: str) -> float | None:
    """Quantisation step for a channel from its unit suffix; None keeps it exact."""
    for suffix, step in SUFFIX_STEPS:
        if channel.endswith(suffix):
            return step
    return None


def resolution_from(overrides: Mapping[str, float], lossless: bool = False) -> Resolution:
    """The resolution rule of a [sync] config section."""

    def rule(channel: str) -> float | None:
        if lossless:
            return None
        if channel in overrides:
            return float(overrides[channel])
        return default_resolution(channel)

    return rule


# --------------------------------------------------------------------------- numbers


def _decimal_step(step: float) -> tuple[int, int] | None:
    """step = mantissa * 10**exponent with a small integer mantissa, or None."""
    if not (step > 0 and math.isfinite(step)):
        return None
    for exp in range(9, -10, -1):
        mant = round(step / 10.0**exp)
        if 1 <= mant < 100_000 and math.isclose(mant * 10.0**exp, step, rel_tol=1e-12):
            return mant, exp
    return None


def _step_value(mant: int, exp: int) -> float:
    return mant * 10.0**exp


def _digits(exp: int) -> int:
    return max(0, -exp) + 1


def _encode_ints(values: list[int], out: bytearray) -> int:
    """Write values as deltas or delta-of-deltas, whichever is smaller; return the mode."""
    deltas = bytearray()
    dods = bytearray()
    prev = 0
    prev_d = 0
    for i, v in enumerate(values):
        d = v - prev
        put_svarint(deltas, d)
        put_svarint(dods, d if i < 2 else d - prev_d)
        prev_d = d if i > 0 else 0
        prev = v
    if len(dods) < len(deltas):
        out += dods
        return MODE_DOD
    out += deltas
    return MODE_DELTA


def _decode_ints(reader: Reader, n: int, mode: int) -> list[int]:
    out: list[int] = []
    prev = 0
    prev_d = 0
    for i in range(n):
        raw = reader.svarint()
        d = raw if (mode == MODE_DELTA or i < 2) else raw + prev_d
        v = prev + d
        prev_d = d if i > 0 else 0
        prev = v
        out.append(v)
    return out


def _float_bits(x: float) -> int:
    return int.from_bytes(struct.pack(">d", x), "big")


def _bits_float(bits: int) -> float:
    return float(struct.unpack(">d", bits.to_bytes(8, "big"))[0])


def _encode_xor(values: Iterable[float], out: bytearray) -> None:
    prev = 0
    for v in values:
        bits = _float_bits(v)
        x = bits ^ prev
        prev = bits
        if x == 0:
            put_uvarint(out, 0)
            continue
        tz = (x & -x).bit_length() - 1
        put_uvarint(out, ((x >> tz) << 6) | tz)


def _decode_xor(reader: Reader, n: int) -> list[float]:
    out: list[float] = []
    prev = 0
    for _ in range(n):
        word = reader.uvarint()
        if word:
            prev ^= (word >> 6) << (word & 0x3F)
        if prev >> 64:
            raise DecodeError("XOR value wider than 64 bits")
        out.append(_bits_float(prev))
    return out


# --------------------------------------------------------------------------- compression


def _zstd_module():  # type: ignore[no-untyped-def]
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a dependency; zlib still works
        return None
    return zstandard


def _compress(body: bytes, compression: str) -> tuple[int, bytes]:
    options: list[tuple[int, bytes]] = []
    if compression in ("auto", "none"):
        options.append((COMP_NONE, body))
    if compression in ("auto", "zlib"):
        options.append((COMP_ZLIB, zlib.compress(body, 9)))
    zstd = _zstd_module()
    if compression in ("auto", "zstd") and zstd is not None:
        options.append((COMP_ZSTD, zstd.ZstdCompressor(level=19).compress(body)))
    if not options:
        raise ValueError(f"unknown or unavailable compression {compression!r}")
    return min(options, key=lambda o: len(o[1]))


def _decompress(kind: int, data: bytes) -> bytes:
    try:
        if kind == COMP_NONE:
            return data
        if kind == COMP_ZLIB:
            return zlib.decompress(data)
        if kind == COMP_ZSTD:
            zstd = _zstd_module()
            if zstd is None:
                raise DecodeError("block is zstd-compressed but zstandard is not installed")
            return bytes(zstd.ZstdDecompressor().decompress(data, max_output_size=64 << 20))
    except (zlib.error, ValueError) as exc:
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"corrupt compressed block ({exc})") from exc
    except Exception as exc:  # zstandard.ZstdError
        raise DecodeError(f"corrupt compressed block ({exc})") from exc
    raise DecodeError(f"unknown compression {kind}")


# --------------------------------------------------------------------------- blocks


def encode_block(
    block: TelemetryBlock, resolution: Resolution = default_resolution, compression: str = "auto"
) -> bytes:
    """Block -> bytes. Quantised channels come back within half a step; others exactly."""
    all_ts = [t for s in block.series for t in s.ts_ms]
    unit = 1000 if all(t % 1000 == 0 for t in all_ts) else 1
    step_ms = int(round(block.step_s * 1000))
    axes: list[tuple[int, ...]] = []
    axis_of: list[int] = []
    for s in block.series:
        if s.ts_ms in axes:
            axis_of.append(axes.index(s.ts_ms))
        else:
            axes.append(s.ts_ms)
            axis_of.append(len(axes) - 1)
    body = bytearray()
    put_uvarint(body, unit)
    put_uvarint(body, step_ms)
    put_uvarint(body, len(axes))
    for ts in axes:
        put_uvarint(body, len(ts))
        if not ts:
            continue
        ticks = [t // unit for t in ts]
        if any(b <= a for a, b in zip(ticks, ticks[1:], strict=False)):
            raise ValueError("timestamps must increase within a series")
        put_uvarint(body, ticks[0])
        prev_d = 0
        for i in range(1, len(ticks)):
            d = ticks[i] - ticks[i - 1]
            put_svarint(body, d if i == 1 else d - prev_d)
            prev_d = d
    put_uvarint(body, len(block.series))
    streams = bytearray()
    for s, axis in zip(block.series, axis_of, strict=True):
        code = _CODE_OF.get(s.channel, 0)
        put_uvarint(body, code)
        if code == 0:
            put_str(body, s.channel)
        put_uvarint(body, axis)
        stream = bytearray()
        step = resolution(s.channel)
        decimal = _decimal_step(step) if step is not None else None
        finite = all(math.isfinite(v) for v in s.values)
        if decimal is not None and finite:
            mant, exp = decimal
            q_step = _step_value(mant, exp)
            ints = [int(round(v / q_step)) for v in s.values]
            mode = _encode_ints(ints, stream)
            default = default_resolution(s.channel)
            if default is not None and _decimal_step(default) == decimal:
                body.append(mode | MODE_DEFAULT_STEP)
            else:
                body.append(mode)
                put_uvarint(body, mant)
                put_svarint(body, exp)
        else:
            _encode_xor(s.values, stream)
            body.append(MODE_XOR)
        put_uvarint(body, len(stream))
        streams += stream
    kind, packed = _compress(bytes(body + streams), compression)
    return bytes((FORMAT_VERSION, kind)) + packed


def decode_block(data: bytes) -> TelemetryBlock:
    """Bytes -> block; raises DecodeError on anything malformed."""
    if len(data) < 2:
        raise DecodeError("telemetry block shorter than its header")
    if data[0] != FORMAT_VERSION:
        raise DecodeError(f"telemetry block version {data[0]} (this box reads {FORMAT_VERSION})")
    r = Reader(_decompress(data[1], data[2:]))
    unit = r.uvarint()
    if unit not in (1, 1000):
        raise DecodeError(f"bad time unit {unit}")
    step_ms = r.uvarint()
    axes: list[tuple[int, ...]] = []
    for _ in range(r.uvarint()):
        n = r.uvarint()
        if n > 10_000_000:
            raise DecodeError("axis too long")
        ticks: list[int] = []
        if n:
            ticks.append(r.uvarint())
            prev_d = 0
            for i in range(1, n):
                raw = r.svarint()
                d = raw if i == 1 else raw + prev_d
                ticks.append(ticks[-1] + d)
                prev_d = d
        axes.append(tuple(t * unit for t in ticks))
    headers: list[tuple[str, int, int, int, int, int]] = []
    for _ in range(r.uvarint()):
        code = r.uvarint()
        if code == 0:
            name = r.str_()
        elif code <= len(CHANNEL_CODES):
            name = CHANNEL_CODES[code - 1]
        else:
            raise DecodeError(f"unknown channel code {code}")
        axis = r.uvarint()
        if axis >= len(axes):
            raise DecodeError(f"channel {name} names axis {axis} of {len(axes)}")
        flags = r.byte()
        mode = flags & ~MODE_DEFAULT_STEP
        mant, exp = 0, 0
        if mode not in (MODE_XOR, MODE_DELTA, MODE_DOD) or (mode == MODE_XOR and flags != mode):
            raise DecodeError(f"unknown value mode {flags}")
        if mode != MODE_XOR:
            if flags & MODE_DEFAULT_STEP:
                default = default_resolution(name)
                spelled = _decimal_step(default) if default is not None else None
                if spelled is None:
                    raise DecodeError(f"channel {name} has no default step")
                mant, exp = spelled
            else:
                mant, exp = r.uvarint(), r.svarint()
        headers.append((name, axis, mode, mant, exp, r.uvarint()))
    series: list[Series] = []
    for name, axis, mode, mant, exp, length in headers:
        sub = Reader(r.take(length))
        n = len(axes[axis])
        if mode == MODE_XOR:
            values = _decode_xor(sub, n)
        else:
            q_step = _step_value(mant, exp)
            digits = _digits(exp)
            values = [round(q * q_step, digits) for q in _decode_ints(sub, n, mode)]
        if sub.remaining():
            raise DecodeError(f"channel {name}: {sub.remaining()} stray bytes")
        series.append(Series(name, axes[axis], tuple(values)))
    if r.remaining():
        raise DecodeError(f"{r.remaining()} stray bytes after the last channel")
    return TelemetryBlock(tuple(series), step_ms / 1000.0)


# --------------------------------------------------------------------------- resampling


def downsample(block: TelemetryBlock, step_s: float) -> TelemetryBlock:
    """Means per ``step_s`` bucket (counters keep their last value), stamped at bucket start."""
    step_ms = int(round(step_s * 1000))
    if step_ms <= 0:
        raise ValueError("step_s must be positive")
    out: list[Series] = []
    for s in block.series:
        counter = s.channel.endswith(COUNTER_SUFFIXES)
        buckets: dict[int, list[float]] = {}
        for t, v in zip(s.ts_ms, s.values, strict=True):
            if math.isfinite(v):
                buckets.setdefault(t - t % step_ms, []).append(v)
        keys = sorted(buckets)
        vals = tuple(
            buckets[k][-1] if counter else math.fsum(buckets[k]) / len(buckets[k]) for k in keys
        )
        out.append(Series(s.channel, tuple(keys), vals))
    return TelemetryBlock(tuple(out), step_ms / 1000.0)


def block_from_store(store: Store, start: datetime, end: datetime, step_s: float) -> TelemetryBlock:
    """Every channel's samples in [start, end), averaged to ``step_s``."""
    from appliance.store import to_ms

    raw: list[Series] = []
    for channel in store.telemetry.channels():
        samples = store.telemetry.series(channel, start, end)
        if samples:
            raw.append(
                Series(channel, tuple(to_ms(t) for t, _ in samples), tuple(v for _, v in samples))
            )
    return downsample(TelemetryBlock(tuple(raw)), step_s)
