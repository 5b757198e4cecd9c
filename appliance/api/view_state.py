"""The box at a glance: one JSON document per control cycle, built once, served many times.

It is made from what the daemon publishes (store kv ``box``, see appliance/snapshot.py), so
the dashboard, the TUI and ``sunbox status`` tell the same story. Under load (100 phones
refreshing) the document is rebuilt at most once per control cycle.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from appliance import snapshot
from appliance.config import SunboxConfig
from appliance.heat.schedule import ComfortSchedule
from appliance.state import Channel
from appliance.store import Store

FLOW_CHANNELS = (
    Channel.PV_POWER_W,
    Channel.BATTERY_POWER_W,
    Channel.COMPUTE_POWER_W,
    Channel.AC_LOAD_POWER_W,
    Channel.SOC_PCT,
)


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def job_counts(store: Store) -> dict[str, int]:
    from appliance.state import JobState

    counts = {s.value: 0 for s in JobState}
    for row in store.query("SELECT state, count(*) AS n FROM jobs GROUP BY state"):
        counts[str(row["state"])] = int(row["n"])
    return counts


class StateView:
    def __init__(self, config: SunboxConfig, store: Store, cycles: Callable[[], int]) -> None:
        self.config = config
        self.store = store
        self.cycles = cycles
        self.schedule = ComfortSchedule.from_config(config.heat, config.site.tz)
        self._key: int | None = None
        self._payload: dict[str, Any] = {}
        self._json = ""
        self._bytes = b""
        self._lock = threading.Lock()

    def payload(self) -> dict[str, Any]:
        self._refresh()
        return self._payload

    def json(self) -> str:
        self._refresh()
        return self._json

    def body(self) -> bytes:
        self._refresh()
        return self._bytes

    def _refresh(self) -> None:
        # Called from the event loop (hot path, SSE) and from route threads (heat, metrics).
        with self._lock:
            key = self.cycles()
            if key == self._key and self._json:
                return
            self._payload = self.build()
            self._json = json.dumps(self._payload, separators=(",", ":"), default=str)
            self._bytes = self._json.encode()
            self._key = key

    def site(self) -> dict[str, Any]:
        s = self.config.site
        return {"name": s.name, "tz": s.tz, "lat": s.lat, "lon": s.lon}

    def build(self) -> dict[str, Any]:
        cfg = self.config
        bat = cfg.battery
        snap = snapshot.load(self.store)
        battery_static = {
            "reserve_pct": bat.reserve_pct,
            "soc_min_pct": bat.soc_min_pct,
            "soc_max_pct": bat.soc_max_pct,
            "capacity_wh": bat.capacity_wh,
        }
        if snap is None:
            return {
                "ready": False,
                "site": self.site(),
                "at": None,
                "mode": None,
                "mode_reason": "",
                "battery": battery_static,
                "flow": {},
                "heat": {},
                "jobs": job_counts(self.store),
                "readings": {},
                "alarms": [],
                "devices": {},
                "daemon": {},
                "stale": [],
            }
        v = snap.value
        soc = v(Channel.SOC_PCT.value)
        compute_w = v(Channel.COMPUTE_POWER_W.value)
        if compute_w is None:
            compute_w = snap.extra.get("node_power_w")
        ac_load = v(Channel.AC_LOAD_POWER_W.value)
        damper = v(Channel.DAMPER_PCT.value)
        if damper is None:
            damper = snap.extra.get("damper_pct")
        to_room = None if compute_w is None or damper is None else compute_w * damper / 100.0
        base = None if ac_load is None or compute_w is None else max(0.0, ac_load - compute_w)
        battery: dict[str, float | None] = dict(battery_static)
        battery.update(
            {
                "soc_pct": _r(soc),
                "power_w": _r(v(Channel.BATTERY_POWER_W.value)),
                "voltage_v": _r(v(Channel.BATTERY_VOLTAGE_V.value), 2),
                "temp_c": _r(v(Channel.BATTERY_TEMP_C.value)),
                "energy_wh": _r(None if soc is None else soc / 100.0 * bat.capacity_wh, 0),
                "above_reserve_wh": _r(
                    None if soc is None else (soc - bat.reserve_pct) / 100.0 * bat.capacity_wh, 0
                ),
            }
        )
        heat = cfg.heat
        return {
            "ready": True,
            "site": self.site(),
            "at": snap.at.isoformat(),
            "mode": str(snap.mode),
            "mode_reason": snap.mode_reason,
            "critical_allowed": snap.extra.get("critical_allowed"),
            "battery": battery,
            "flow": {
                "pv_w": _r(v(Channel.PV_POWER_W.value)),
                "battery_w": _r(v(Channel.BATTERY_POWER_W.value)),
                "compute_w": _r(compute_w),
                "heat_to_room_w": _r(to_room),
                "heat_vented_w": _r(
                    None if to_room is None or compute_w is None else compute_w - to_room
                ),
                "base_load_w": _r(base),
                "ac_load_w": _r(ac_load),
            },
            "heat": {
                "enabled": heat.enabled,
                "room_temp_c": _r(v(Channel.ROOM_TEMP_C.value)),
                "outdoor_temp_c": _r(v(Channel.OUTDOOR_TEMP_C.value)),
                "setpoint_c": heat.setpoint_c,
                "band_c": heat.band_c,
                "wanted": heat.enabled and self.schedule.wanted(snap.at),
                "damper_pct": _r(damper),
                "ledger": {k: _r(x, 3) for k, x in (snap.extra.get("heat") or {}).items()},
            },
            "jobs": job_counts(self.store),
            "readings": snap.readings,
            "stale": sorted(ch for ch, r in snap.readings.items() if not r.get("fresh")),
            "alarms": snap.alarms,
            "devices": snap.devices,
            "daemon": snap.daemon,
        }


def local_label(moment: datetime, config: SunboxConfig) -> str:
    """A moment as the people at the site read it (their wall clock), for server-made text."""
    return moment.astimezone(config.site.zone).strftime("%a %H:%M")
