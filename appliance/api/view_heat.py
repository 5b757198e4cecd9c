"""Heat for the household: room vs setpoint, when heat is wanted, where the compute heat went."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from appliance.api.series import bucket_means
from appliance.config import SunboxConfig
from appliance.heat.schedule import ComfortSchedule
from appliance.state import Channel
from appliance.store import Store

HISTORY_H = 24.0
STEP_S = 300.0


def wanted_spans(
    schedule: ComfortSchedule, start: datetime, end: datetime, step_s: float = 300.0
) -> list[tuple[datetime, datetime]]:
    """The comfort windows between start and end, as UTC spans (sampled every ``step_s``)."""
    spans: list[tuple[datetime, datetime]] = []
    t = start
    open_at: datetime | None = None
    while t < end:
        if schedule.wanted(t):
            open_at = open_at or t
        elif open_at is not None:
            spans.append((open_at, t))
            open_at = None
        t += timedelta(seconds=step_s)
    if open_at is not None:
        spans.append((open_at, end))
    return spans


def room_history(
    store: Store, now: datetime, hours: float = HISTORY_H
) -> dict[str, list[tuple[datetime, float]]]:
    start = now - timedelta(hours=hours)
    out = {}
    for ch in (Channel.ROOM_TEMP_C.value, Channel.OUTDOOR_TEMP_C.value, Channel.DAMPER_PCT.value):
        out[ch] = bucket_means(
            store.telemetry.series(ch, start, now + timedelta(seconds=1)), start, STEP_S
        )
    return out


def heat_view(
    config: SunboxConfig, store: Store, state: dict[str, Any], now: datetime
) -> dict[str, Any]:
    heat = config.heat
    schedule = ComfortSchedule.from_config(heat, config.site.tz)
    hist = room_history(store, now)
    return {
        **(state.get("heat") or {}),
        "enabled": heat.enabled,
        "setpoint_c": heat.setpoint_c,
        "band_c": heat.band_c,
        "comfort_floor_c": schedule.comfort_floor_c,
        "wanted_windows_local": [list(w) for w in heat.wanted],
        "wanted_now": heat.enabled and schedule.wanted(now),
        "history": {ch: [[t.isoformat(), round(v, 2)] for t, v in pts] for ch, pts in hist.items()},
    }
