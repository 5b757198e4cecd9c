"""What the self-test looks at: the box's state, from whoever knows it best right now.

A running daemon owns the devices (on an RS485 bus nobody else may talk), so its view is
used when it is alive: the API's ``/api/state`` or the snapshot it publishes in the store.
Only when no daemon is running are the devices polled directly, once, through the same
gateway the daemon uses. All three sources have the same shape (appliance/snapshot.py):
readings with their age, device health, and the alarms the devices raised.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from appliance import snapshot
from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.devices.gateway import ModbusGateway
from appliance.state import Mode
from appliance.store import Store


@dataclass(frozen=True)
class ReadingEvidence:
    value: float | None
    age_s: float | None
    fresh: bool
    source: str = ""


@dataclass(frozen=True)
class DeviceEvidence:
    name: str
    connected: bool
    last_ok: datetime | None
    failures: int = 0
    last_error: str = ""


@dataclass
class Evidence:
    """One view of the box for the checks; ``source`` says where it came from."""

    at: datetime
    source: str
    readings: dict[str, ReadingEvidence] = field(default_factory=dict)
    devices: dict[str, DeviceEvidence] = field(default_factory=dict)
    alarms: list[dict[str, str]] = field(default_factory=list)
    mode: str | None = None
    mode_reason: str = ""

    def value(self, channel: str) -> float | None:
        r = self.readings.get(channel)
        return None if r is None else r.value


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def from_state_doc(doc: Mapping[str, Any], source: str) -> Evidence:
    """Evidence from a state document: ``/api/state``, or a published snapshot's ``to_dict``.

    Raises ValueError when the document has no time (the daemon has not published yet)."""
    at = _time(doc.get("at"))
    if at is None:
        raise ValueError(f"{source}: no state published yet")
    readings = {}
    for channel, r in (doc.get("readings") or {}).items():
        if isinstance(r, Mapping):
            readings[str(channel)] = ReadingEvidence(
                _float(r.get("value")),
                _float(r.get("age_s")),
                bool(r.get("fresh")),
                str(r.get("source") or ""),
            )
    devices = {}
    for name, d in (doc.get("devices") or {}).items():
        if isinstance(d, Mapping):
            devices[str(name)] = DeviceEvidence(
                str(name),
                bool(d.get("connected")),
                _time(d.get("last_ok")),
                int(d.get("consecutive_failures") or 0),
                str(d.get("last_error") or ""),
            )
    alarms = [
        {k: str(v) for k, v in a.items()}
        for a in (doc.get("alarms") or [])
        if isinstance(a, Mapping)
    ]
    mode = doc.get("mode")
    return Evidence(
        at=at,
        source=source,
        readings=readings,
        devices=devices,
        alarms=alarms,
        mode=str(mode) if mode else None,
        mode_reason=str(doc.get("mode_reason") or ""),
    )


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True


def daemon_alive(snap: snapshot.BoxSnapshot, now: datetime, stale_after_s: float) -> bool:
    """Did the daemon publish within ``stale_after_s``? A demo clock (``--speed``) cannot be
    compared with this console's, so there the daemon's process on this machine decides."""
    speed = snap.daemon.get("speed", 1.0)
    if isinstance(speed, int | float) and speed != 1.0:
        return _pid_alive(snap.daemon.get("pid"))
    heartbeat = _time(snap.daemon.get("heartbeat")) or snap.at
    return abs((now - heartbeat).total_seconds()) <= stale_after_s


def published(store: Store, now: datetime, stale_after_s: float) -> Evidence | None:
    """The daemon's own view, if it is alive and publishing."""
    snap = snapshot.load(store)
    if snap is None or not daemon_alive(snap, now, stale_after_s):
        return None
    return from_state_doc(snap.to_dict(), "the daemon's published state (store)")


async def poll_devices(config: SunboxConfig, clock: Clock) -> Evidence:
    """Poll every configured device once, directly (no daemon is running)."""
    gateway = ModbusGateway(config, clock)
    try:
        state = await gateway.poll()
    finally:
        await gateway.close()
    snap = snapshot.from_state(state, Mode.NORMAL, "", daemon={})
    evidence = from_state_doc(snap.to_dict(), "a direct poll of the devices")
    evidence.mode = None  # nobody decided a mode: no daemon
    return evidence
