"""One poller per device: reads its registers, timestamps each value, backs off when it fails.

Home Assistant's coordinator pattern: one poller per device, many readers of its snapshot.
A failing device backs off exponentially (1 s, 2 s, 4 s … 60 s) on its own, so it never
stalls the others; its last good values stay in the snapshot with their old timestamps and
go stale by themselves, which is what puts the box in safe mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from appliance.clock import Clock
from appliance.config import DeviceConfig
from appliance.devices.codec import DecodeError
from appliance.devices.drivers import Driver, Points, Words, driver_for
from appliance.devices.link import ModbusIOError, ModbusLink
from appliance.devices.sunspec import NotSunSpec
from appliance.state import Alarm, Channel, DeviceHealth, Reading, Severity

# Values outside these ranges are garbage, not measurements: they are dropped (the channel
# then ages out) and reported.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    Channel.SOC_PCT: (0.0, 100.0),
    Channel.BATTERY_RESERVE_PCT: (0.0, 100.0),
    Channel.BATTERY_SOH_PCT: (0.0, 100.0),
    Channel.BATTERY_VOLTAGE_V: (0.0, 1500.0),
    Channel.BATTERY_CURRENT_A: (-5000.0, 5000.0),
    Channel.BATTERY_POWER_W: (-1e6, 1e6),
    Channel.PV_POWER_W: (-1000.0, 1e6),
    Channel.AC_LOAD_POWER_W: (-1000.0, 1e6),
    Channel.INVERTER_POWER_W: (-1e6, 1e6),
    Channel.INVERTER_TEMP_C: (-50.0, 150.0),
    Channel.BATTERY_TEMP_C: (-50.0, 100.0),
    Channel.ROOM_TEMP_C: (-40.0, 80.0),
    Channel.OUTDOOR_TEMP_C: (-60.0, 70.0),
    Channel.DAMPER_PCT: (0.0, 100.0),
    Channel.COMPUTE_POWER_W: (0.0, 1e5),
}

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
JUMP_CONFIRMATIONS = 3  # consistent readings that confirm a jump (battery swapped, BMS recalibrated)


@dataclass(frozen=True)
class RateLimit:
    """How fast a channel can physically move: ``per_s`` plus ``slack`` (resolution, noise)."""

    per_s: float
    slack: float


@dataclass
class _Accepted:
    value: float
    mono: float
    pending: list[float] = field(default_factory=list)


@dataclass
class DeviceSnapshot:
    """What one device said last, for the gateway and for diagnostics (TUI, API)."""

    name: str
    role: str
    readings: dict[str, Reading] = field(default_factory=dict)
    alarms: list[Alarm] = field(default_factory=list)
    points_fn: Callable[[], Points] = field(default=dict)
    points_at: datetime | None = None
    identity: dict[str, str] = field(default_factory=dict)
    model_ids: list[int] = field(default_factory=list)
    health: DeviceHealth | None = None

    @property
    def points(self) -> Points:
        """Every point of the device's map, decoded and scaled (for the register table)."""
        return self.points_fn()

    def to_dict(self) -> dict[str, Any]:
        """The device as diagnostics show it (``/api/devices``, the TUI's register table)."""
        h = self.health
        try:
            points = dict(self.points)
        except (ValueError, KeyError, IndexError, ArithmeticError):  # garbage the table cannot show
            points = {}
        return {
            "name": self.name,
            "role": self.role,
            "identity": dict(self.identity),
            "model_ids": list(self.model_ids),
            "health": None if h is None else {
                "connected": h.connected,
                "last_ok": h.last_ok.isoformat() if h.last_ok else None,
                "consecutive_failures": h.consecutive_failures,
                "backoff_s": h.backoff_s,
                "last_error": h.last_error,
                "requests": h.requests,
            },
            "readings": {ch: {"value": r.value, "at": r.at.isoformat() if r.at else None, "raw": r.raw}
                         for ch, r in self.readings.items()},
            "points": points,
            "points_at": self.points_at.isoformat() if self.points_at else None,
            "alarms": [{"code": a.code, "message": a.message, "severity": str(a.severity)} for a in self.alarms],
        }


class DevicePoller:
    def __init__(self, dev: DeviceConfig, link: ModbusLink, clock: Clock,
                 rate_limits: dict[str, RateLimit] | None = None) -> None:
        self.dev = dev
        self.rate_limits = rate_limits or {}
        self._accepted: dict[str, _Accepted] = {}
        self.link = link
        self.clock = clock
        self.driver: Driver = driver_for(dev)
        self.snapshot = DeviceSnapshot(name=dev.name, role=dev.role)
        self._failures = 0
        self._next_try = float("-inf")
        self._last_ok: datetime | None = None
        self._last_success_mono = float("-inf")
        self._last_error = ""
        self._fingerprint: tuple[int, ...] | None = None
        self._fingerprint_since = 0.0
        self._requests = 0
        self._health()

    def _health(self) -> None:
        backoff = max(0.0, self._next_try - self.clock.monotonic()) if self._failures else 0.0
        self.snapshot.health = DeviceHealth(
            name=self.dev.name, connected=self._failures == 0 and self._last_ok is not None,
            last_ok=self._last_ok, consecutive_failures=self._failures, backoff_s=backoff,
            last_error=self._last_error, requests=self._requests,
        )

    def due(self) -> bool:
        mono = self.clock.monotonic()
        if self._failures:
            return mono >= self._next_try
        return mono - self._last_success_mono >= self.dev.poll_interval_s * 0.95

    async def poll(self) -> DeviceSnapshot:
        """Read the device if it is due; never raises."""
        if not self.due():
            self._health()
            return self.snapshot
        before = self.link.requests
        try:
            if not self.driver.prepared:
                await self.driver.prepare(self.link)
                self.snapshot.identity = dict(self.driver.identity)
                self.snapshot.model_ids = self.driver.model_ids()
            words: Words = {}
            for r in self.driver.reads():
                if r.kind == "holding":
                    data = await self.link.read_holding(r.unit, r.start, r.count)
                elif r.kind == "input":
                    data = await self.link.read_input(r.unit, r.start, r.count)
                else:
                    data = [int(b) for b in await self.link.read_coils(r.unit, r.start, r.count)]
                words.setdefault((r.kind, r.unit), {})[r.start] = data
            decoded = self.driver.decode(words)
        except (ModbusIOError, DecodeError, NotSunSpec, ValueError, IndexError, KeyError) as exc:
            self._fail(str(exc) or type(exc).__name__)
            return self.snapshot
        finally:
            self._requests += self.link.requests - before
        now = self.clock.now()
        mono = self.clock.monotonic()
        self._failures = 0
        self._last_error = ""
        self._last_ok = now
        self._last_success_mono = mono
        frozen = self._frozen(decoded.fingerprint, mono)
        alarms = list(decoded.alarms)
        if frozen:
            alarms.append(Alarm(self.dev.name, "FROZEN", f"{self.dev.name}: values unchanged for "
                                f"{mono - self._fingerprint_since:.0f} s", Severity.WARNING))
        else:
            for channel, value in decoded.channels.items():
                lo, hi = PLAUSIBLE.get(channel, (float("-inf"), float("inf")))
                if not lo <= value <= hi:
                    alarms.append(Alarm(self.dev.name, "IMPLAUSIBLE",
                                        f"{self.dev.name}: {channel} = {value:g} outside {lo:g}..{hi:g}",
                                        Severity.WARNING))
                    continue
                if not self._physical(channel, value, mono):
                    alarms.append(Alarm(self.dev.name, "IMPLAUSIBLE_JUMP",
                                        f"{self.dev.name}: {channel} jumped to {value:g}, faster than "
                                        "the battery can move it", Severity.WARNING))
                    continue
                self.snapshot.readings[channel] = Reading(
                    value=value, at=now, stale_after_s=self.dev.stale_after_s, source=self.dev.name,
                )
        self.snapshot.alarms = alarms
        self.snapshot.points_fn = decoded.points_fn
        self.snapshot.points_at = now
        self._health()
        return self.snapshot

    def _physical(self, channel: str, value: float, mono: float) -> bool:
        """False for a jump no battery can make (garbage that happens to look plausible);
        a jump confirmed by consistent readings is accepted as the new truth."""
        limit = self.rate_limits.get(channel)
        if limit is None:
            return True
        last = self._accepted.get(channel)
        if last is None or abs(value - last.value) <= limit.per_s * (mono - last.mono) + limit.slack:
            self._accepted[channel] = _Accepted(value, mono)
            return True
        last.pending = [*last.pending[-(JUMP_CONFIRMATIONS - 1):], value]
        if len(last.pending) >= JUMP_CONFIRMATIONS and max(last.pending) - min(last.pending) <= limit.slack:
            self._accepted[channel] = _Accepted(value, mono)
            return True
        return False

    def _frozen(self, fingerprint: tuple[int, ...], mono: float) -> bool:
        if not fingerprint or self.dev.frozen_after_s <= 0:
            return False
        if fingerprint != self._fingerprint:
            self._fingerprint = fingerprint
            self._fingerprint_since = mono
            return False
        return mono - self._fingerprint_since > self.dev.frozen_after_s

    def _fail(self, error: str) -> None:
        self._failures += 1
        self._last_error = error
        delay = min(BACKOFF_BASE_S * 2 ** (self._failures - 1), BACKOFF_MAX_S)
        self._next_try = self.clock.monotonic() + delay
        if self._failures >= 3:
            # after repeated failures rediscover: the device may have been replaced or reset
            self.driver.prepared = False
        self._health()
