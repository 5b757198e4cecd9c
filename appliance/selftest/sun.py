"""Is the box where the config says it is? Measured PV timing against the sun.

A wrong longitude, a clock off by an hour or a time zone slip all show the same way: the
array's day is shifted against the sun the config describes. The measured PV of each day is
aligned with the modelled clear-sky power of the configured site and array (the one PV chain,
``appliance.solar.pvsystem``) by the shift that keeps the measurement under the clear-sky
envelope: clouds only ever take power away, so an afternoon storm does not drag the answer
the way a power-weighted centroid would. The sun moves 1 degree of longitude in 4 minutes,
so a shift of ``m`` minutes points to a longitude ``m / 4`` degrees west of the entered one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from appliance.config import ArrayConfig, SiteConfig
from appliance.solar.lazy_pvlib import pvlib
from appliance.solar.pvsystem import ac_power_w
from appliance.state import Channel, FloatArray
from appliance.store import Store

MINUTES_PER_DEG = 4.0
SHIFT_RANGE_MIN = 180  # search window either side of the sun the config describes
SHIFT_STEP_MIN = 2
GRID_S = 120.0  # model resolution the shifts are read from
SAMPLE_S = 300.0  # measured power is averaged to this step before fitting
MIN_COVERAGE = 0.6  # share of the modelled daylight a day's measurement must cover
MIN_PEAK_SHARE = 0.05  # a day whose best power stays under 5 % of the array's rating is too dark
PASS_MIN = 20.0
WARN_MIN = 45.0
NOON_LOCAL_RANGE_H = (10.0, 15.5)  # solar noon on the site's wall clock, in any sane time zone

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass(frozen=True)
class SunCheck:
    """How the measured PV day sits against the sun at the entered site."""

    status: Status
    detail: str
    solar_noon_utc: datetime
    solar_noon_local: str
    days_used: int = 0
    offset_min: float | None = None  # measured minus modelled; positive = PV comes later
    day_offsets_min: list[float] = field(default_factory=list)
    implied_lon: float | None = None

    def figures(self) -> dict[str, object]:
        return {
            "solar_noon_utc": self.solar_noon_utc.isoformat(),
            "solar_noon_local": self.solar_noon_local,
            "days_used": self.days_used,
            "offset_min": None if self.offset_min is None else round(self.offset_min, 1),
            "day_offsets_min": [round(x, 1) for x in self.day_offsets_min],
            "implied_lon": None if self.implied_lon is None else round(self.implied_lon, 2),
        }


def solar_noon(site: SiteConfig, day_utc: datetime) -> datetime:
    """UTC time of solar noon on the UTC day of ``day_utc`` (mean noon corrected by the
    equation of time, Spencer 1971: within a minute of SPA's transit)."""
    day = pd.Timestamp(day_utc).tz_convert("UTC").normalize()
    eot_min = float(pvlib.solarposition.equation_of_time_spencer71(day.day_of_year))
    noon = day + pd.Timedelta(hours=12.0 - site.lon / 15.0) - pd.Timedelta(minutes=eot_min)
    return noon.round("s").to_pydatetime()


def _means(series: list[tuple[datetime, float]], step_s: float) -> tuple[FloatArray, FloatArray]:
    """Mean power per ``step_s`` bucket, at the mean time of its samples (epoch seconds): sparse
    samples keep their own time instead of moving to a bucket centre."""
    if not series:
        return np.zeros(0), np.zeros(0)
    t = np.array([moment.timestamp() for moment, _ in series], dtype=float)
    p = np.array([value for _, value in series], dtype=float)
    keep = np.isfinite(p)
    t, p = t[keep], np.clip(p[keep], 0.0, None)
    if t.size == 0:
        return t, p
    bucket = np.floor(t / step_s)
    uniq, inverse = np.unique(bucket, return_inverse=True)
    sums = np.bincount(inverse, weights=p)
    counts = np.bincount(inverse)
    return np.bincount(inverse, weights=t) / counts, sums / counts


def _nearest_gap_s(sorted_t: FloatArray, at: FloatArray) -> FloatArray:
    idx = np.clip(np.searchsorted(sorted_t, at), 1, max(sorted_t.size - 1, 1))
    lo = sorted_t[np.clip(idx - 1, 0, sorted_t.size - 1)]
    hi = sorted_t[np.clip(idx, 0, sorted_t.size - 1)]
    return np.asarray(np.minimum(np.abs(at - lo), np.abs(hi - at)), dtype=float)


def day_offsets(
    site: SiteConfig, array: ArrayConfig, t_s: FloatArray, p_w: FloatArray
) -> list[float]:
    """Per solar day, the shift (minutes) that best fits the measurement under the clear sky."""
    if t_s.size == 0:
        return []
    margin = SHIFT_RANGE_MIN * 60.0 + 3600.0
    grid = np.arange(t_s.min() - margin, t_s.max() + margin, GRID_S)
    times = pd.DatetimeIndex(pd.to_datetime(grid, unit="s", utc=True))
    model = ac_power_w(site, array, times)
    shifts = np.arange(-SHIFT_RANGE_MIN, SHIFT_RANGE_MIN + 1, SHIFT_STEP_MIN) * 60.0
    solar_day = np.floor((t_s + site.lon / 15.0 * 3600.0) / 86400.0)
    out: list[float] = []
    rated = array.ac_limit_w
    # a lit slot counts as measured when a sample lies within one sampling step of it
    reach_s = max(SAMPLE_S, float(np.median(np.diff(t_s))) if t_s.size > 1 else SAMPLE_S)
    for day in np.unique(solar_day):
        sel = solar_day == day
        td, pd_w = t_s[sel], p_w[sel]
        if pd_w.max(initial=0.0) < MIN_PEAK_SHARE * rated:
            continue
        # daylight slots of this solar day, by the model at zero shift
        day_start = day * 86400.0 - site.lon / 15.0 * 3600.0
        slots = np.arange(day_start, day_start + 86400.0, SAMPLE_S) + SAMPLE_S / 2.0
        lit = np.interp(slots, grid, model) > 0.01 * rated
        if not lit.any():
            continue
        covered = float((_nearest_gap_s(td, slots[lit]) <= reach_s).mean())
        if covered < MIN_COVERAGE:
            continue
        # scale-free: the array may be larger or smaller than configured, only timing counts
        scale = float(pd_w.max()) / max(float(model.max()), 1.0)
        norm = pd_w / scale
        costs = np.array(
            [
                float(np.sum(np.maximum(norm - np.interp(td - s, grid, model), 0.0) ** 2))
                for s in shifts
            ]
        )
        # power above the clear sky is impossible, below it is clouds: the best shift leaves the
        # measurement under the envelope; of equally good shifts, the middle one
        best = np.flatnonzero(costs <= costs.min() + 1e-6 * float(np.sum(norm**2)))
        out.append(float(shifts[best[len(best) // 2]] / 60.0))
    return out


def check_site(
    site: SiteConfig, array: ArrayConfig, store: Store | None, now: datetime, days: float = 7.0
) -> SunCheck:
    """Compare the last ``days`` of measured PV (store channel ``pv_power_w``) with the sun at
    ``site``; the verdict carries the offset, the longitude it implies and solar noon."""
    noon = solar_noon(site, now)
    noon_local = noon.astimezone(site.zone)
    noon_label = noon_local.strftime("%H:%M %Z")
    local_h = noon_local.hour + noon_local.minute / 60.0
    tz_note = ""
    if not NOON_LOCAL_RANGE_H[0] <= local_h <= NOON_LOCAL_RANGE_H[1]:
        tz_note = (
            f"; solar noon falls at {noon_local:%H:%M} on the {site.tz} clock: "
            "is the time zone right?"
        )

    def result(status: Status, detail: str, **kw: object) -> SunCheck:
        if tz_note and status == "pass":
            status = "warn"
        return SunCheck(status, detail + tz_note, noon, noon_label, **kw)  # type: ignore[arg-type]

    if store is None:
        return result("skip", f"solar noon {noon_label}; no store to read measured PV from")
    series = store.telemetry.series(Channel.PV_POWER_W.value, now - timedelta(days=days), now)
    t_s, p_w = _means(series, SAMPLE_S)
    offsets = day_offsets(site, array, t_s, p_w)
    if not offsets:
        return result(
            "skip",
            f"solar noon {noon_label}; no day with enough measured PV in the last "
            f"{days:g} days to compare (check again after a sunny day)",
        )
    offset = float(np.median(offsets))
    implied = site.lon - offset / MINUTES_PER_DEG
    when = "later" if offset > 0 else "earlier"
    text = (
        f"PV comes {abs(offset):.0f} min {when} than the sun at lon {site.lon:g} "
        f"(median of {len(offsets)} day(s)); solar noon {noon_label}"
    )
    if abs(offset) <= PASS_MIN:
        status: Status = "pass"
    else:
        status = "warn" if abs(offset) <= WARN_MIN else "fail"
        text += (
            f"; the measurement points to lon {implied:.1f} (or a clock/time zone off by that much)"
        )
    return result(
        status,
        text,
        days_used=len(offsets),
        offset_min=offset,
        day_offsets_min=offsets,
        implied_lon=implied,
    )
