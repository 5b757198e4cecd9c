"""Comfort schedule: when the household wants heat, and how warm.

Windows are local wall-clock times at the site (``wanted = [["18:00", "07:00"]]``); a window
whose end is not after its start crosses midnight, and one whose start equals its end covers
the whole day. Everything is compared on the local wall clock of the instant asked about, so
the evening still starts at 18:00 on the days the clocks change (DST) and the hour that does
not exist (or happens twice) is handled by the time zone database, not by arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from appliance.clock import as_utc
from appliance.config import HeatConfig


@dataclass(frozen=True)
class ComfortSchedule:
    windows: tuple[tuple[time, time], ...]
    zone: ZoneInfo
    setpoint_c: float = 20.0
    band_c: float = 1.0

    @classmethod
    def from_config(cls, heat: HeatConfig, tz: str | ZoneInfo) -> ComfortSchedule:
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        windows = tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in heat.wanted)
        return cls(windows=windows, zone=zone, setpoint_c=heat.setpoint_c, band_c=heat.band_c)

    @property
    def comfort_floor_c(self) -> float:
        """Below this, while heat is wanted, the comfort deficit counts (setpoint - band)."""
        return self.setpoint_c - self.band_c

    def local_time(self, at: datetime) -> time:
        """Wall-clock time at the site (naive, for comparison and display)."""
        return as_utc(at).astimezone(self.zone).time().replace(tzinfo=None)

    def wanted(self, at: datetime) -> bool:
        """Is heat wanted at ``at`` (aware; any zone)?"""
        now = self.local_time(at)
        return any(_inside(now, start, end) for start, end in self.windows)

    def wanted_mask(self, times: Iterable[datetime]) -> npt.NDArray[np.bool_]:
        """``wanted`` for many times; while the zone's offset does not change over them (no DST
        switch inside, the usual case for a 48 h horizon) by arithmetic on local minutes."""
        seq = [as_utc(t) for t in times]
        if not seq:
            return np.zeros(0, dtype=bool)
        first, last = seq[0].astimezone(self.zone), seq[-1].astimezone(self.zone)
        if first.utcoffset() != last.utcoffset():
            return np.array([self.wanted(t) for t in seq], dtype=bool)
        offset_s = (first.utcoffset() or timedelta(0)).total_seconds()
        return self._mask_minutes(np.array([((t.timestamp() + offset_s) % 86400.0) / 60.0 for t in seq]))

    def wanted_grid(self, start: datetime, step_s: float, n: int) -> npt.NDArray[np.bool_]:
        """``wanted`` at ``start + (i + 0.5) * step_s`` for i < n (slot midpoints of a plan)."""
        first = as_utc(start) + timedelta(seconds=0.5 * step_s)
        last = first + timedelta(seconds=(n - 1) * step_s)
        if n <= 0:
            return np.zeros(0, dtype=bool)
        if first.astimezone(self.zone).utcoffset() != last.astimezone(self.zone).utcoffset():
            return self.wanted_mask(first + timedelta(seconds=i * step_s) for i in range(n))
        offset_s = (first.astimezone(self.zone).utcoffset() or timedelta(0)).total_seconds()
        t = first.timestamp() + offset_s + np.arange(n) * float(step_s)
        return self._mask_minutes((t % 86400.0) / 60.0)

    def _mask_minutes(self, minute: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.bool_]:
        out = np.zeros(minute.shape[0], dtype=bool)
        for start, end in self.windows:
            a, b = start.hour * 60 + start.minute, end.hour * 60 + end.minute
            if a == b:
                out[:] = True
            elif a < b:
                out |= (minute >= a) & (minute < b)
            else:
                out |= (minute >= a) | (minute < b)
        return out

def _inside(now: time, start: time, end: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= now < end
    return now >= start or now < end
