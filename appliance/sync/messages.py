"""Compact payloads of alarms, job results and daily summaries.

Each must fit one Iridium SBD message (340 bytes with its frame), so they are binary records of
varints, and text is cut at a byte limit rather than dropped: an alarm whose message is cut
still says which device raised what.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from appliance.state import Event, EventKind, Job, JobKind, JobState, Severity
from appliance.sync.varint import DecodeError, Reader, put_bytes, put_str, put_svarint, put_uvarint

PAYLOAD_VERSION = 1
# An SBD message is 340 bytes; a frame header takes at most ~30 of them.
SMALL_PAYLOAD_BYTES = 300

_SEVERITIES = (Severity.INFO, Severity.WARNING, Severity.ALARM)
_EVENT_KINDS = tuple(EventKind)  # append-only enum
_JOB_KINDS = tuple(JobKind)
_JOB_STATES = tuple(JobState)


def cut_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 at a character boundary."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    return raw[: max(0, max_bytes)].decode("utf-8", errors="ignore")


def _secs(moment: datetime | None) -> int:
    return 0 if moment is None else max(0, int(moment.timestamp()))


def _moment(secs: int) -> datetime | None:
    if secs == 0:
        return None
    try:
        return datetime.fromtimestamp(secs, tz=UTC)
    except (OverflowError, ValueError, OSError) as exc:
        raise DecodeError(f"timestamp out of range: {secs}") from exc


# --------------------------------------------------------------------------- events


def encode_event(event: Event, max_bytes: int = SMALL_PAYLOAD_BYTES) -> bytes:
    """An event in at most ``max_bytes``: data is dropped first, then the message is cut."""
    data_json = (
        json.dumps(dict(event.data), default=str, separators=(",", ":")) if event.data else ""
    )

    def build(source: str, message: str, data: str) -> bytes:
        buf = bytearray((PAYLOAD_VERSION,))
        put_uvarint(buf, _secs(event.at))
        buf.append(_SEVERITIES.index(event.severity))
        buf.append(_EVENT_KINDS.index(event.kind))
        put_str(buf, source)
        put_str(buf, message)
        put_str(buf, data)
        return bytes(buf)

    source = cut_utf8(event.source, 48)
    out = build(source, event.message, data_json)
    if len(out) <= max_bytes:
        return out
    out = build(source, event.message, "")
    if len(out) <= max_bytes:
        return out
    room = max_bytes - (len(out) - len(event.message.encode("utf-8")))
    return build(source, cut_utf8(event.message, room - 2), "")


def decode_event(payload: bytes) -> Event:
    r = Reader(payload)
    if r.byte() != PAYLOAD_VERSION:
        raise DecodeError("unknown event payload version")
    at = _moment(r.uvarint()) or datetime.fromtimestamp(0, tz=UTC)
    sev = r.byte()
    kind = r.byte()
    if sev >= len(_SEVERITIES) or kind >= len(_EVENT_KINDS):
        raise DecodeError("bad severity or event kind")
    source, message, data = r.str_(), r.str_(), r.str_()
    try:
        parsed = json.loads(data) if data else {}
    except json.JSONDecodeError as exc:
        raise DecodeError("bad event data") from exc
    return Event(
        at=at,
        kind=_EVENT_KINDS[kind],
        message=message,
        source=source,
        severity=_SEVERITIES[sev],
        data=parsed,
    )


# --------------------------------------------------------------------------- jobs


def _tenths(x: float | None) -> int:
    return 0 if x is None or not math.isfinite(x) else int(round(max(0.0, x) * 10)) + 1


def _from_tenths(n: int) -> float | None:
    return None if n == 0 else (n - 1) / 10.0


def encode_job_result(job: Job, max_bytes: int = SMALL_PAYLOAD_BYTES) -> bytes:
    def build(reason: str) -> bytes:
        buf = bytearray((PAYLOAD_VERSION,))
        put_str(buf, cut_utf8(job.id, 64))
        put_str(buf, cut_utf8(job.name, 64))
        buf.append(_JOB_KINDS.index(job.kind))
        buf.append(_JOB_STATES.index(job.state))
        put_svarint(
            buf, 0 if job.exit_code is None else job.exit_code + (1 if job.exit_code >= 0 else 0)
        )
        put_uvarint(buf, _tenths(job.energy_used_wh))
        put_uvarint(buf, _tenths(job.energy_wh))
        put_uvarint(buf, _tenths(job.cpu_s))
        put_uvarint(buf, _secs(job.started_at))
        put_uvarint(buf, _secs(job.finished_at))
        put_str(buf, reason)
        return bytes(buf)

    out = build(job.reason)
    if len(out) > max_bytes:
        out = build(cut_utf8(job.reason, max(0, len(job.reason.encode()) - (len(out) - max_bytes))))
    return out


def decode_job_result(payload: bytes) -> dict[str, Any]:
    r = Reader(payload)
    if r.byte() != PAYLOAD_VERSION:
        raise DecodeError("unknown job payload version")
    job_id, name = r.str_(), r.str_()
    kind, state = r.byte(), r.byte()
    if kind >= len(_JOB_KINDS) or state >= len(_JOB_STATES):
        raise DecodeError("bad job kind or state")
    code = r.svarint()
    exit_code = None if code == 0 else (code - 1 if code > 0 else code)
    used, energy, cpu = (
        _from_tenths(r.uvarint()),
        _from_tenths(r.uvarint()),
        _from_tenths(r.uvarint()),
    )
    started, finished = _moment(r.uvarint()), _moment(r.uvarint())
    reason = r.str_()
    return {
        "id": job_id,
        "name": name,
        "kind": str(_JOB_KINDS[kind]),
        "state": str(_JOB_STATES[state]),
        "exit_code": exit_code,
        "energy_used_wh": used or 0.0,
        "energy_wh": energy,
        "cpu_s": cpu or 0.0,
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat() if finished else None,
        "reason": reason,
    }


# --------------------------------------------------------------------------- daily summary


@dataclass(frozen=True)
class DailySummary:
    """One local day of the box in a few dozen bytes: energy, battery, room, jobs, alarms."""

    day: date
    pv_energy_wh: float | None = None
    load_energy_wh: float | None = None
    compute_energy_wh: float | None = None
    battery_charge_wh: float | None = None
    battery_discharge_wh: float | None = None
    soc_min_pct: float | None = None
    soc_max_pct: float | None = None
    soc_end_pct: float | None = None
    room_temp_min_c: float | None = None
    room_temp_max_c: float | None = None
    telemetry_coverage_pct: float | None = None
    jobs_done: int = 0
    jobs_failed: int = 0
    jobs_missed: int = 0
    alarms: int = 0
    warnings: int = 0
    outbox_depth: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["day"] = self.day.isoformat()
        return out


# (field, scale): stored as round(value * scale) zig-zag varints; None via a presence bitmap.
_SUMMARY_FIELDS: tuple[tuple[str, float], ...] = (
    ("pv_energy_wh", 1),
    ("load_energy_wh", 1),
    ("compute_energy_wh", 1),
    ("battery_charge_wh", 1),
    ("battery_discharge_wh", 1),
    ("soc_min_pct", 10),
    ("soc_max_pct", 10),
    ("soc_end_pct", 10),
    ("room_temp_min_c", 10),
    ("room_temp_max_c", 10),
    ("telemetry_coverage_pct", 10),
    ("jobs_done", 1),
    ("jobs_failed", 1),
    ("jobs_missed", 1),
    ("alarms", 1),
    ("warnings", 1),
    ("outbox_depth", 1),
)
_EPOCH = date(1970, 1, 1)


def encode_daily_summary(summary: DailySummary) -> bytes:
    buf = bytearray((PAYLOAD_VERSION,))
    put_uvarint(buf, (summary.day - _EPOCH).days)
    present = 0
    values = bytearray()
    for i, (name, scale) in enumerate(_SUMMARY_FIELDS):
        value = getattr(summary, name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        present |= 1 << i
        put_svarint(values, int(round(float(value) * scale)))
    put_uvarint(buf, present)
    return bytes(buf + values)


def decode_daily_summary(payload: bytes) -> DailySummary:
    r = Reader(payload)
    if r.byte() != PAYLOAD_VERSION:
        raise DecodeError("unknown summary payload version")
    days = r.uvarint()
    try:
        day = _EPOCH + timedelta(days=days)
    except (OverflowError, ValueError) as exc:
        raise DecodeError(f"summary day out of range: {days}") from exc
    present = r.uvarint()
    kwargs: dict[str, Any] = {}
    for i, (name, scale) in enumerate(_SUMMARY_FIELDS):
        if present & (1 << i):
            raw = r.svarint()
            kwargs[name] = (
                raw
                if scale == 1 and name.startswith(("jobs", "alarms", "warnings", "outbox"))
                else raw / scale
            )
    if r.remaining():
        raise DecodeError("stray bytes after a daily summary")
    return DailySummary(day=day, **kwargs)


# --------------------------------------------------------------------------- logs


def encode_log(lines: list[str]) -> bytes:
    buf = bytearray((PAYLOAD_VERSION,))
    put_bytes(buf, "\n".join(lines).encode("utf-8"))
    return bytes(buf)


def decode_log(payload: bytes) -> list[str]:
    r = Reader(payload)
    if r.byte() != PAYLOAD_VERSION:
        raise DecodeError("unknown log payload version")
    text = r.bytes_().decode("utf-8", errors="replace")
    return text.split("\n") if text else []


def describe_payload(kind: str, payload: bytes) -> dict[str, Any]:
    """Decoded JSON view of a payload (hub API, `sync status --json`); raises DecodeError."""
    from appliance.sync.codec import decode_block

    if kind in ("alarm", "event"):
        ev = decode_event(payload)
        return {
            "at": ev.at.isoformat(),
            "kind": str(ev.kind),
            "severity": str(ev.severity),
            "source": ev.source,
            "message": ev.message,
            "data": dict(ev.data),
        }
    if kind == "job_result":
        return decode_job_result(payload)
    if kind == "daily_summary":
        return decode_daily_summary(payload).as_dict()
    if kind == "telemetry":
        block = decode_block(payload)
        span = block.span_ms()
        return {
            "channels": [s.channel for s in block.series],
            "points": block.points,
            "step_s": block.step_s,
            "start_ms": span[0] if span else None,
            "end_ms": span[1] if span else None,
        }
    if kind == "log":
        return {"lines": decode_log(payload)}
    raise DecodeError(f"unknown kind {kind}")
