"""What the screens show, as plain dataclasses built from the API's JSON documents.

The TUI speaks the dashboard's API (same documents, same auth); offline it builds the same
documents itself from the store and the devices (ui/tui/offline.py). Everything is parsed
defensively: a field the daemon does not send yet shows as missing, never as a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass
class BoxState:
    """The box at a glance (``/api/state``)."""

    ready: bool
    site: str
    tz: str
    at: datetime | None
    mode: str | None
    mode_reason: str
    soc_pct: float | None = None
    reserve_pct: float | None = None
    soc_min_pct: float | None = None
    capacity_wh: float | None = None
    battery_w: float | None = None
    pv_w: float | None = None
    load_w: float | None = None
    compute_w: float | None = None
    base_w: float | None = None
    room_temp_c: float | None = None
    damper_pct: float | None = None
    alarms: list[dict[str, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    daemon: dict[str, Any] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict)  # as received, for the self-test

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BoxState:
        site = _map(doc.get("site"))
        bat = _map(doc.get("battery"))
        flow = _map(doc.get("flow"))
        heat = _map(doc.get("heat"))
        mode = doc.get("mode")
        return cls(
            ready=bool(doc.get("ready")),
            site=str(site.get("name") or "?"),
            tz=str(site.get("tz") or "UTC"),
            at=when(doc.get("at")),
            mode=str(mode) if mode else None,
            mode_reason=str(doc.get("mode_reason") or ""),
            soc_pct=num(bat.get("soc_pct")),
            reserve_pct=num(bat.get("reserve_pct")),
            soc_min_pct=num(bat.get("soc_min_pct")),
            capacity_wh=num(bat.get("capacity_wh")),
            battery_w=num(flow.get("battery_w")),
            pv_w=num(flow.get("pv_w")),
            load_w=num(flow.get("ac_load_w")),
            compute_w=num(flow.get("compute_w")),
            base_w=num(flow.get("base_load_w")),
            room_temp_c=num(heat.get("room_temp_c")),
            damper_pct=num(heat.get("damper_pct")),
            alarms=[
                {str(k): str(v) for k, v in a.items()}
                for a in doc.get("alarms") or []
                if isinstance(a, Mapping)
            ],
            stale=[str(s) for s in doc.get("stale") or []],
            devices={
                str(k): dict(v)
                for k, v in _map(doc.get("devices")).items()
                if isinstance(v, Mapping)
            },
            readings={
                str(k): dict(v)
                for k, v in _map(doc.get("readings")).items()
                if isinstance(v, Mapping)
            },
            jobs={str(k): int(v) for k, v in _map(doc.get("jobs")).items() if isinstance(v, int)},
            daemon=dict(_map(doc.get("daemon"))),
            doc=dict(doc),
        )

    def devices_answering(self) -> tuple[int, int]:
        ok = sum(1 for d in self.devices.values() if d.get("connected"))
        return ok, len(self.devices)


@dataclass
class DeviceView:
    """One device for diagnostics (``/api/devices``): identity, health, its register table."""

    name: str
    role: str
    identity: dict[str, str] = field(default_factory=dict)
    model_ids: list[int] = field(default_factory=list)
    connected: bool = False
    last_ok: datetime | None = None
    failures: int = 0
    last_error: str = ""
    readings: dict[str, tuple[float | None, datetime | None]] = field(default_factory=dict)
    points: dict[str, Any] = field(default_factory=dict)
    points_at: datetime | None = None
    alarms: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> DeviceView:
        health = _map(doc.get("health"))
        readings = {
            str(ch): (num(r.get("value")), when(r.get("at")))
            for ch, r in _map(doc.get("readings")).items()
            if isinstance(r, Mapping)
        }
        return cls(
            name=str(doc.get("name") or "?"),
            role=str(doc.get("role") or ""),
            identity={str(k): str(v) for k, v in _map(doc.get("identity")).items()},
            model_ids=[int(m) for m in doc.get("model_ids") or [] if isinstance(m, int)],
            connected=bool(health.get("connected")),
            last_ok=when(health.get("last_ok")),
            failures=int(health.get("consecutive_failures") or 0),
            last_error=str(health.get("last_error") or ""),
            readings=readings,
            points=dict(_map(doc.get("points"))),
            points_at=when(doc.get("points_at")),
            alarms=[
                {str(k): str(v) for k, v in a.items()}
                for a in doc.get("alarms") or []
                if isinstance(a, Mapping)
            ],
        )


@dataclass(frozen=True)
class EventView:
    id: int | None
    at: datetime | None
    kind: str
    severity: str
    source: str
    message: str

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> EventView:
        raw_id = doc.get("id")
        return cls(
            raw_id if isinstance(raw_id, int) else None,
            when(doc.get("at")),
            str(doc.get("kind") or ""),
            str(doc.get("severity") or "info"),
            str(doc.get("source") or ""),
            str(doc.get("message") or ""),
        )


@dataclass(frozen=True)
class JobView:
    id: str
    name: str
    kind: str
    state: str
    power_w: float | None
    progress_pct: float | None
    why: str

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> JobView:
        why = str(doc.get("waiting") or doc.get("reason") or "")
        return cls(
            str(doc.get("id") or ""),
            str(doc.get("name") or ""),
            str(doc.get("kind") or ""),
            str(doc.get("state") or ""),
            num(doc.get("power_w")),
            num(doc.get("progress_pct")),
            why,
        )


@dataclass(frozen=True)
class LinkView:
    name: str
    kind: str
    enabled: bool
    used_pct: float | None
    last_success: datetime | None
    decision: str

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LinkView:
        return cls(
            str(doc.get("name") or ""),
            str(doc.get("kind") or ""),
            bool(doc.get("enabled", True)),
            num(doc.get("budget_used_pct")),
            when(doc.get("last_success")),
            str(doc.get("decision") or doc.get("last_error") or ""),
        )


@dataclass
class LinksView:
    links: list[LinkView]
    queue: dict[str, int]
    oldest_age_s: float | None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> LinksView:
        return cls(
            [LinkView.from_doc(lk) for lk in doc.get("links") or [] if isinstance(lk, Mapping)],
            {str(k): int(v) for k, v in _map(doc.get("queue")).items() if isinstance(v, int)},
            num(doc.get("oldest_undelivered_age_s")),
        )


@dataclass(frozen=True)
class Setpoint:
    """A point a technician may write, with its configured limits (``/api/setpoints``)."""

    device: str
    role: str
    point: str
    min: float
    max: float

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Setpoint:
        lo, hi = num(doc.get("min")), num(doc.get("max"))
        if lo is None or hi is None:
            raise ValueError(f"setpoint without limits: {dict(doc)}")
        return cls(
            str(doc.get("device")), str(doc.get("role") or ""), str(doc.get("point")), lo, hi
        )

    @property
    def key(self) -> str:
        return f"{self.device}.{self.point}"

    def refusal(self, value: float) -> str | None:
        """The bounded writer's words for a value outside the limits (None when inside)."""
        if not self.min <= value <= self.max:
            return (
                f"refused: {self.key} = {value:g} is outside its limits {self.min:g}..{self.max:g}"
            )
        return None


@dataclass(frozen=True)
class WriteOutcome:
    written: bool
    read_back: float | None
    reason: str
