"""Offline diagnostics: no API answers, so the TUI reads the store and talks to the devices.

The daemon's last published state (store kv ``box``) gives the mode and why, with its age;
the devices are polled through the same gateway the daemon uses (unless ``poll`` is off: a
database copied from a dead box), and their readings replace the published ones. Writes go
through the same bounded writer with the limits of the config, are read back, and are logged
as events like the daemon's own writes. Safe mode is the daemon's to hold, so offline it is
refused with the reason.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from appliance import snapshot
from appliance.api.view_jobs import jobs_view
from appliance.api.view_links import links_view
from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.devices.gateway import ModbusGateway
from appliance.devices.poller import DeviceSnapshot
from appliance.selftest.evidence import daemon_alive
from appliance.state import Channel, Event, EventKind, Mode, Severity, WriteRequest
from appliance.store import Store
from ui.tui.backend import BackendError
from ui.tui.views import BoxState, DeviceView, EventView, JobView, LinksView, Setpoint, WriteOutcome


def device_doc(snap: DeviceSnapshot) -> dict[str, Any]:
    """A device as ``/api/devices`` shows it."""
    return snap.to_dict()


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def state_doc(
    config: SunboxConfig,
    store: Store,
    published: snapshot.BoxSnapshot | None,
    live: snapshot.BoxSnapshot | None,
    now: datetime,
) -> dict[str, Any]:
    """``/api/state`` as the API would build it, from the live poll (else the published state);
    the mode is the daemon's last word, with its age in the reason."""
    bat = config.battery
    site = {
        "name": config.site.name,
        "tz": config.site.tz,
        "lat": config.site.lat,
        "lon": config.site.lon,
    }
    battery: dict[str, Any] = {
        "reserve_pct": bat.reserve_pct,
        "soc_min_pct": bat.soc_min_pct,
        "soc_max_pct": bat.soc_max_pct,
        "capacity_wh": bat.capacity_wh,
    }
    from appliance.api.view_state import job_counts

    jobs = job_counts(store)
    view = live or published
    if view is None:
        return {
            "ready": False,
            "site": site,
            "at": None,
            "mode": None,
            "mode_reason": "",
            "battery": battery,
            "flow": {},
            "heat": {},
            "jobs": jobs,
            "readings": {},
            "alarms": [],
            "devices": {},
            "daemon": {},
            "stale": [],
        }

    def v(ch: Channel) -> float | None:
        return view.value(ch.value) if view is not None else None

    compute = v(Channel.COMPUTE_POWER_W)
    if compute is None and published is not None:
        compute = published.extra.get("node_power_w")
    ac = v(Channel.AC_LOAD_POWER_W)
    if published is None:
        mode, reason = None, "no daemon has published a state in this store"
    else:
        mode = str(published.mode)
        speed = published.daemon.get("speed", 1.0)
        if isinstance(speed, int | float) and speed != 1.0:  # a demo clock: no age to tell
            reason = published.mode_reason + f" (daemon's last word, demo clock x{speed:g})"
        else:
            age = _age(abs((now - published.at).total_seconds()))
            reason = published.mode_reason + f" (daemon's last word, {age} ago)"
    battery.update(
        {
            "soc_pct": _r(v(Channel.SOC_PCT)),
            "power_w": _r(v(Channel.BATTERY_POWER_W)),
            "voltage_v": _r(v(Channel.BATTERY_VOLTAGE_V), 2),
        }
    )
    return {
        "ready": True,
        "site": site,
        "at": view.at.isoformat(),
        "mode": mode,
        "mode_reason": reason,
        "battery": battery,
        "flow": {
            "pv_w": _r(v(Channel.PV_POWER_W)),
            "battery_w": _r(v(Channel.BATTERY_POWER_W)),
            "compute_w": _r(compute),
            "ac_load_w": _r(ac),
            "base_load_w": None if ac is None or compute is None else _r(max(0.0, ac - compute)),
        },
        "heat": {
            "room_temp_c": _r(v(Channel.ROOM_TEMP_C)),
            "damper_pct": _r(v(Channel.DAMPER_PCT)),
        },
        "jobs": jobs,
        "readings": view.readings,
        "alarms": view.alarms,
        "devices": view.devices,
        "daemon": published.daemon if published is not None else {},
        "stale": sorted(ch for ch, r in view.readings.items() if not r.get("fresh")),
    }


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


class OfflineBackend:
    """The store and (unless ``poll`` is False) the devices, directly."""

    online = False

    def __init__(
        self, config: SunboxConfig, store: Store, clock: Clock, *, poll: bool = True, why: str = ""
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.why = why
        self.gateway = ModbusGateway(config, clock) if poll and config.devices else None
        self._lock = asyncio.Lock()
        self._live: snapshot.BoxSnapshot | None = None
        self._polled_mono: float | None = None

    def describe(self) -> str:
        what = "store + devices" if self.gateway is not None else "store only"
        return f"OFFLINE ({what})" + (f": {self.why}" if self.why else "")

    async def _poll(self) -> snapshot.BoxSnapshot | None:
        """One poll per refresh at most (the screens ask several questions per refresh)."""
        if self.gateway is None:
            return None
        async with self._lock:
            mono = self.clock.monotonic()
            if self._polled_mono is None or mono - self._polled_mono >= 0.5:
                state = await self.gateway.poll()
                self._live = snapshot.from_state(state, Mode.NORMAL, "", daemon={})
                self._polled_mono = mono
            return self._live

    def _published(self) -> snapshot.BoxSnapshot | None:
        try:
            return snapshot.load(self.store)
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"the store's published state is unreadable: {exc}") from None

    async def state(self) -> BoxState:
        live = await self._poll()
        return BoxState.from_doc(
            state_doc(self.config, self.store, self._published(), live, self.clock.now())
        )

    async def devices(self) -> list[DeviceView]:
        if self.gateway is None:
            published = self._published()
            roles = {d.name: d.role for d in self.config.devices}
            if published is None:
                return []
            return [
                DeviceView.from_doc({"name": n, "role": roles.get(n, ""), "health": h})
                for n, h in published.devices.items()
            ]
        await self._poll()
        return [DeviceView.from_doc(device_doc(s)) for s in self.gateway.snapshots()]

    async def events(self, limit: int = 50) -> list[EventView]:
        return [
            EventView(e.id, e.at, str(e.kind), str(e.severity), e.source, e.message)
            for e in self.store.events.list(limit=limit)
        ]

    async def jobs(self, limit: int = 50) -> list[JobView]:
        jobs = self.store.jobs.list(limit=limit)
        return [
            JobView.from_doc(j) for j in jobs_view(self.store, jobs, self.clock.now(), self.config)
        ]

    async def links(self) -> LinksView:
        return LinksView.from_doc(links_view(self.config, self.store, self.clock.now()))

    async def setpoints(self) -> list[Setpoint]:
        return [
            Setpoint(d.name, d.role, p, lim.min, lim.max)
            for d in self.config.devices
            for p, lim in d.limits.items()
        ]

    async def write_setpoint(
        self, device: str, point: str, value: float, reason: str
    ) -> WriteOutcome:
        if self.gateway is None:
            raise BackendError("store-only mode: no device access, nothing can be written")
        known = {(s.device, s.point): s for s in await self.setpoints()}
        sp = known.get((device, point))
        if sp is None:
            raise BackendError(
                f"{device}.{point} is not a writable point with limits in the config"
            )
        if (why := sp.refusal(value)) is not None:
            return WriteOutcome(False, None, why)
        why_text = f"{reason or 'set from the TUI'} (by the technician at the console, offline)"
        result = await self.gateway.write(WriteRequest(device, point, value, why_text))
        verb = "wrote" if result.written else "did not write"
        self.store.events.add(
            Event(
                self.clock.now(),
                EventKind.WRITE,
                f"{verb} {device}.{point} = {value:g}: {result.reason}",
                device,
                Severity.INFO if result.written else Severity.WARNING,
                {
                    "point": point,
                    "requested": value,
                    "read_back": result.read_back,
                    "written": result.written,
                },
            )
        )
        return WriteOutcome(result.written, result.read_back, result.reason)

    async def set_safe_mode(self, on: bool) -> str:
        raise BackendError(
            "offline: safe mode is held by the daemon, and no daemon answers; "
            "start it (sunbox run) or reach its API"
        )

    async def evidence(self) -> tuple[dict[str, Any] | None, str]:
        """The daemon's published state when it is alive; else this console's own poll."""
        published = self._published()
        now = self.clock.now()
        if published is not None and daemon_alive(
            published, now, self.config.selftest.daemon_stale_after_s
        ):
            return published.to_dict(), "the daemon's published state (store)"
        live = await self._poll()
        if live is None:  # store only: the last word the daemon left is all there is
            if published is None:
                raise BackendError("store only, and the store holds no published state to test")
            age = _age((now - published.at).total_seconds())
            return published.to_dict(), f"the daemon's last published state ({age} old)"
        doc = live.to_dict()
        doc["mode"] = None  # no daemon decides anything
        return doc, "this console's poll of the devices"

    async def close(self) -> None:
        if self.gateway is not None:
            await self.gateway.close()
