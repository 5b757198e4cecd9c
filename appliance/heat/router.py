"""Heat router: each control cycle, send the compute's heat to the room or vent it.

The decision is a damper position (0 = all vented, 100 = all to the room; in between only for
a modulating damper) with its reason, evcc-style. Rules, in order:

1. heat disabled in the config -> vent;
2. room sensor missing or older than ``heat.sensor_stale_after_s`` -> vent (the safe default:
   a blind router must not cook the room), with a WARNING event once per stale episode;
3. heat not wanted now (schedule) -> vent;
4. room at or above setpoint + band -> vent at once (overheat, ignores dwell);
5. on/off damper: hysteresis of total width ``band_c`` centred on the setpoint (room below
   setpoint - band/2, vent above setpoint + band/2, hold in between), and a flip caused by
   hysteresis waits out ``heat.min_dwell_s`` since the last change (not after the schedule
   starts or the sensor recovers: those start afresh);
   modulating damper: the share of the compute's power the 1R1C model says the room needs to
   reach the setpoint within ``approach_s`` (proportional across the band when outdoor
   temperature or compute power is unknown), moved only in steps of ``step_pct`` or more.

The router is pure apart from its small memory (last position, when it changed, whether the
sensor was stale); the control cycle writes ``damper_pct`` through the bounded writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from appliance.clock import as_utc
from appliance.config import HeatConfig
from appliance.heat.room import RoomModel
from appliance.heat.schedule import ComfortSchedule
from appliance.state import Channel, Event, EventKind, Reading, Severity, WriteRequest

Route = Literal["room", "vent", "mixed"]


@dataclass(frozen=True)
class HeatDecision:
    at: datetime
    damper_pct: float
    reason: str
    wanted: bool
    room_temp_c: float | None
    events: tuple[Event, ...] = ()

    @property
    def route(self) -> Route:
        if self.damper_pct <= 0.0:
            return "vent"
        return "room" if self.damper_pct >= 100.0 else "mixed"

    def heat_to_room_w(self, compute_power_w: float) -> float:
        return max(0.0, compute_power_w) * self.damper_pct / 100.0

    def write_request(self, device: str, point: str = Channel.DAMPER_PCT.value) -> WriteRequest:
        """What the control cycle hands the bounded writer."""
        return WriteRequest(device=device, point=point, value=self.damper_pct, reason=self.reason)


class HeatRouter:
    """Decides room or vent each control cycle; one instance per box (it keeps hysteresis)."""

    def __init__(self, heat: HeatConfig, schedule: ComfortSchedule, model: RoomModel | None = None,
                 *, modulating: bool | None = None, approach_s: float = 1800.0,
                 step_pct: float = 5.0, source: str = "heat.router") -> None:
        if approach_s <= 0 or step_pct < 0:
            raise ValueError("approach_s must be > 0 and step_pct >= 0")
        self.heat = heat
        self.schedule = schedule
        self.model = model or RoomModel.from_config(heat)
        self.modulating = heat.damper_modulating if modulating is None else modulating
        self.approach_s = approach_s
        self.step_pct = step_pct
        self.source = source
        self._pct: float | None = None
        self._changed_at: datetime | None = None
        self._stale = False
        self._wanted: bool | None = None

    @classmethod
    def from_config(cls, heat: HeatConfig, tz: str) -> HeatRouter:
        return cls(heat, ComfortSchedule.from_config(heat, tz))

    @property
    def damper_pct(self) -> float | None:
        """The position last decided (None before the first cycle)."""
        return self._pct

    def decide(self, now: datetime, room: Reading | None, outdoor_c: float | None,
               compute_power_w: float) -> HeatDecision:
        now = as_utc(now)
        wanted = self.schedule.wanted(now)
        schedule_changed = self._wanted is not None and wanted != self._wanted
        self._wanted = wanted
        events: list[Event] = []

        if not self.heat.enabled:
            return self._commit(now, 0.0, "heat routing disabled in config: vent", wanted, None,
                                events, force=True)

        temp_c, stale_why = self._room_temp(now, room)
        if temp_c is None:
            if not self._stale:
                events.append(Event(
                    at=now, kind=EventKind.HEAT, source=self.source, severity=Severity.WARNING,
                    message=f"room sensor {stale_why}: venting compute heat (safe default)",
                    data={"reason": stale_why, "age_s": None if room is None else room.age_s(now),
                          "stale_after_s": self.heat.sensor_stale_after_s},
                ))
            self._stale = True
            return self._commit(now, 0.0, f"room sensor {stale_why}: vent (safe default)", wanted,
                                None, events, force=True)
        recovered = self._stale
        if self._stale:
            self._stale = False
            events.append(Event(
                at=now, kind=EventKind.HEAT, source=self.source,
                message=f"room sensor fresh again ({temp_c:.1f} °C): routing resumes",
                data={"room_temp_c": temp_c}))

        sp, band = self.schedule.setpoint_c, self.schedule.band_c
        if not wanted:
            local = self.schedule.local_time(now).strftime("%H:%M")
            return self._commit(now, 0.0, f"heat not wanted at {local} local: vent", wanted, temp_c,
                                events, force=True)
        if temp_c >= sp + band:
            return self._commit(now, 0.0, f"room {temp_c:.1f} °C at/above {sp + band:.1f} °C "
                                "(setpoint + band): vent", wanted, temp_c, events, force=True)
        if self.modulating:
            pct, why = self._modulate(temp_c, outdoor_c, compute_power_w)
            if (self._pct is not None and not schedule_changed and pct not in (0.0, 100.0)
                    and abs(pct - self._pct) < self.step_pct):
                why = f"{why}; held at {self._pct:.0f} % (change < {self.step_pct:g} %)"
                pct = self._pct
            return self._commit(now, pct, why, wanted, temp_c, events, force=True)

        on_below, off_above = sp - band / 2.0, sp + band / 2.0
        if temp_c <= on_below:
            pct, why = 100.0, f"room {temp_c:.1f} °C at/below {on_below:.1f} °C: heat to room"
        elif temp_c >= off_above:
            pct, why = 0.0, f"room {temp_c:.1f} °C at/above {off_above:.1f} °C: vent"
        elif self._pct is None or schedule_changed or recovered:
            pct = 100.0 if temp_c < sp else 0.0
            side, action = ("below", "heat to room") if pct else ("at/above", "vent")
            why = f"room {temp_c:.1f} °C {side} setpoint {sp:.1f} °C: {action}"
        else:
            pct = self._pct
            why = (f"room {temp_c:.1f} °C inside {on_below:.1f}–{off_above:.1f} °C: hold "
                   f"{'room' if pct else 'vent'}")
        # A new evening or a sensor back from the dead starts afresh: no dwell to wait out.
        return self._commit(now, pct, why, wanted, temp_c, events,
                            force=schedule_changed or recovered)

    # ------------------------------------------------------------------ internals

    def _room_temp(self, now: datetime, room: Reading | None) -> tuple[float | None, str]:
        if room is None or room.value is None or room.at is None:
            return None, "has no value"
        age = (now - room.at).total_seconds()
        if age > self.heat.sensor_stale_after_s:
            return None, f"stale ({age:.0f} s old > {self.heat.sensor_stale_after_s:g} s)"
        return float(room.value), ""

    def _modulate(self, temp_c: float, outdoor_c: float | None,
                  compute_power_w: float) -> tuple[float, str]:
        sp, band = self.schedule.setpoint_c, self.schedule.band_c
        if outdoor_c is not None and compute_power_w > 0.0:
            need_w = self.model.heat_for(temp_c, sp, outdoor_c, self.approach_s)
            pct = min(100.0, max(0.0, need_w / compute_power_w * 100.0))
            return round(pct, 1), (f"room {temp_c:.1f} °C needs {max(0.0, need_w):.0f} W to reach "
                                   f"{sp:.1f} °C in {self.approach_s / 60:.0f} min; compute gives "
                                   f"{compute_power_w:.0f} W: {pct:.0f} % to room")
        pct = min(100.0, max(0.0, (sp + band / 2.0 - temp_c) / band * 100.0))
        return round(pct, 1), (f"room {temp_c:.1f} °C, proportional across the band "
                               f"(no outdoor temperature or compute power): {pct:.0f} % to room")

    def _commit(self, now: datetime, pct: float, reason: str, wanted: bool, temp_c: float | None,
                events: list[Event], *, force: bool) -> HeatDecision:
        previous = self._pct
        if (not force and previous is not None and pct != previous
                and self._changed_at is not None):
            held_s = (now - self._changed_at).total_seconds()
            if held_s < self.heat.min_dwell_s:
                left = self.heat.min_dwell_s - held_s
                reason = (f"{reason} — deferred: minimum dwell, {left:.0f} s left; "
                          f"holding {previous:.0f} %")
                pct = previous
        if previous is None or pct != previous:
            self._changed_at = now
            was_open = previous is not None and previous > 0.0
            if previous is None or was_open != (pct > 0.0):
                events.append(Event(at=now, kind=EventKind.HEAT, source=self.source,
                                    message=reason,
                                    data={"damper_pct": pct, "room_temp_c": temp_c,
                                          "wanted": wanted}))
        self._pct = pct
        return HeatDecision(at=now, damper_pct=pct, reason=reason, wanted=wanted,
                            room_temp_c=temp_c, events=tuple(events))
