"""The daemon's published view of the box, for readers in other processes.

The daemon owns state; ``sunbox status``, the API and the TUI read what it publishes here
(the store's kv table, key ``box``), so they agree with each other and never poll devices
behind the daemon's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from appliance.clock import ScaledClock
from appliance.state import Mode, SiteState
from appliance.store import Store

KEY = "box"


@dataclass
class BoxSnapshot:
    at: datetime
    mode: Mode
    mode_reason: str
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarms: list[dict[str, str]] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    daemon: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self, channel: str) -> float | None:
        r = self.readings.get(channel)
        return None if r is None else r.get("value")

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(), "mode": str(self.mode), "mode_reason": self.mode_reason,
            "readings": self.readings, "alarms": self.alarms, "devices": self.devices,
            "daemon": self.daemon, **self.extra,
        }


def from_state(state: SiteState, mode: Mode, mode_reason: str, daemon: dict[str, Any],
               extra: dict[str, Any] | None = None) -> BoxSnapshot:
    readings = {
        ch: {
            "value": r.value,
            "at": r.at.isoformat() if r.at else None,
            "age_s": round(r.age_s(state.at) or 0.0, 1) if r.at else None,
            "fresh": r.is_fresh(state.at),
            "source": r.source,
        }
        for ch, r in state.readings.items()
    }
    alarms = [{"source": a.source, "code": a.code, "message": a.message, "severity": str(a.severity)}
              for a in state.alarms]
    devices = {
        name: {
            "connected": h.connected, "last_ok": h.last_ok.isoformat() if h.last_ok else None,
            "consecutive_failures": h.consecutive_failures, "backoff_s": round(h.backoff_s, 1),
            "last_error": h.last_error, "requests": h.requests,
        }
        for name, h in state.devices.items()
    }
    return BoxSnapshot(at=state.at, mode=mode, mode_reason=mode_reason, readings=readings, alarms=alarms,
                       devices=devices, daemon=daemon, extra=dict(extra or {}))


def publish(store: Store, snap: BoxSnapshot, wall_at: datetime | None = None) -> None:
    """Store the snapshot; ``wall_at`` (the wall clock at publication) lets other processes
    follow a daemon whose clock runs faster than the wall (``sunbox demo --speed``)."""
    data = snap.to_dict()
    if wall_at is not None:
        data["daemon"] = {**data.get("daemon", {}), "wall_at": wall_at.isoformat()}
    store.put_kv(KEY, data, snap.at)


DAEMON_ALIVE_S = 30.0  # a snapshot older than this (wall clock) means no daemon is running


def daemon_clock(store: Store, wall_now: datetime) -> ScaledClock | None:
    """The running daemon's clock, for processes that must agree with it (the jobs CLI decides
    admission on the daemon's time, also when a demo runs N times faster). None when no daemon
    has published within ``DAEMON_ALIVE_S`` of wall time."""
    got = store.get_kv(KEY)
    if got is None:
        return None
    data, box_at = got
    daemon = data.get("daemon", {})
    try:
        wall_at = datetime.fromisoformat(daemon["wall_at"])
        speed = float(daemon.get("speed", 1.0))
    except (KeyError, TypeError, ValueError):
        return None
    age_s = (wall_now - wall_at).total_seconds()
    if not 0 <= age_s <= DAEMON_ALIVE_S or speed <= 0 or speed == float("inf"):
        return None
    return ScaledClock(box_at + timedelta(seconds=age_s * speed), speed)


def load(store: Store) -> BoxSnapshot | None:
    got = store.get_kv(KEY)
    if got is None:
        return None
    data, _ = got
    known = {"at", "mode", "mode_reason", "readings", "alarms", "devices", "daemon"}
    return BoxSnapshot(
        at=datetime.fromisoformat(data["at"]), mode=Mode(data["mode"]), mode_reason=data["mode_reason"],
        readings=data.get("readings", {}), alarms=data.get("alarms", []), devices=data.get("devices", {}),
        daemon=data.get("daemon", {}), extra={k: v for k, v in data.items() if k not in known},
    )
