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
from datetime import datetime, time
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
        return np.array([self.wanted(t) for t in times], dtype=bool)


def _inside(now: time, start: time, end: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= now < end
    return now >= start or now < end
