"""The planning grid: slots from now to the horizon, and the forecast averaged onto them.

The first slot starts at ``now`` (it is the rest of the current 15-min slot). The plan handed
to the control loop is always on the uniform 15-min grid; internally the far part of the
horizon may be planned in hourly slots (``planner.fine_h``), and its last day in two-hourly
ones (``planner.coarse_h``), so replay can afford many plans: that far ahead the plan is made
again many times before it is followed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from appliance.clock import as_utc, floor_time
from appliance.state import FloatArray, PowerForecast

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Horizon:
    now: datetime
    start: datetime  # start of the fine grid (the current slot's start)
    step_s: int  # fine slot length
    bounds_s: FloatArray  # planning slot boundaries, seconds after ``start`` (n + 1 values)
    fine_to_slot: IntArray  # for each fine slot, the planning slot that holds it

    @property
    def n(self) -> int:
        return int(self.bounds_s.shape[0] - 1)

    @property
    def n_fine(self) -> int:
        return int(self.fine_to_slot.shape[0])

    @property
    def dt_h(self) -> FloatArray:
        return np.diff(self.bounds_s) / 3600.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=float(self.bounds_s[-1]))

    def slot_start(self, k: int) -> datetime:
        return self.start + timedelta(seconds=float(self.bounds_s[k]))

    def slot_end(self, k: int) -> datetime:
        return self.start + timedelta(seconds=float(self.bounds_s[k + 1]))

    def offset_s(self, moment: datetime) -> float:
        return (as_utc(moment) - self.start).total_seconds()

    def usable_fraction(self, until: datetime) -> FloatArray:
        """Per slot, the fraction of it that lies before ``until`` (a deadline)."""
        cut = self.offset_s(until)
        lo, hi = self.bounds_s[:-1], self.bounds_s[1:]
        return np.clip((cut - lo) / (hi - lo), 0.0, 1.0)

    def fine_before(self, frac: FloatArray) -> FloatArray:
        """Per fine slot, 1.0 where it starts within the usable ``frac`` of its planning slot (a
        deadline part way through an hourly slot: the quarters after it are 0.0)."""
        k = self.fine_to_slot
        lo, hi = self.bounds_s[k], self.bounds_s[k + 1]
        starts = np.maximum(np.arange(self.n_fine) * float(self.step_s), lo)
        return np.asarray(starts < lo + np.asarray(frac)[k] * (hi - lo), dtype=float)

    def to_fine(self, per_slot: FloatArray) -> FloatArray:
        """Spread per-slot powers onto the fine grid (a coarse slot's power holds throughout)."""
        return np.asarray(per_slot, dtype=float)[self.fine_to_slot]

    def soc_to_fine(self, soc0: float, soc_end: FloatArray) -> FloatArray:
        """End-of-slot SoC on the fine grid, linear inside coarse slots."""
        starts = np.concatenate(([soc0], soc_end[:-1]))
        fine_end_s = (np.arange(self.n_fine) + 1.0) * self.step_s
        k = self.fine_to_slot
        lo, hi = self.bounds_s[k], self.bounds_s[k + 1]
        frac = np.clip((fine_end_s - lo) / (hi - lo), 0.0, 1.0)
        return np.asarray(starts[k] + frac * (soc_end[k] - starts[k]), dtype=float)


def build_horizon(
    now: datetime,
    horizon_h: float,
    step_s: int,
    fine_h: float,
    covered_until: datetime | None = None,
    coarse_h: float | None = None,
) -> Horizon:
    """Slots from ``now``: fine (``step_s``) for ``fine_h`` hours, then hourly (whole fine
    slots), from ``coarse_h`` hours on (if given) two-hourly, truncated to ``covered_until``
    (the end of the forecast)."""
    now = as_utc(now)
    start = floor_time(now, step_s)
    n_fine = int(round(horizon_h * 3600 / step_s))
    if covered_until is not None:
        n_fine = min(n_fine, int((as_utc(covered_until) - start).total_seconds() // step_s))
    if n_fine < 1:
        raise ValueError("the forecast does not cover the current slot")
    n_keep = min(n_fine, max(1, math.ceil(fine_h * 3600 / step_s)))
    group = max(1, 3600 // step_s)
    n_hourly = n_fine  # fine slots up to the end of the hourly tier
    if coarse_h is not None:  # whole hourly slots until coarse_h, two-hourly after
        hourly = max(0, math.ceil((coarse_h * 3600 / step_s - n_keep) / group) * group)
        n_hourly = min(n_fine, n_keep + hourly)
    first_2h = n_keep + -(-(n_hourly - n_keep) // group)  # the first two-hourly planning slot
    fine_to_slot = np.empty(n_fine, dtype=np.int64)
    fine_to_slot[:n_keep] = np.arange(n_keep)
    fine_to_slot[n_keep:n_hourly] = n_keep + np.arange(n_hourly - n_keep) // group
    fine_to_slot[n_hourly:] = first_2h + np.arange(n_fine - n_hourly) // (2 * group)
    n = int(fine_to_slot[-1]) + 1
    bounds = np.empty(n + 1)
    bounds[:n_keep] = np.arange(n_keep) * float(step_s)
    bounds[n_keep:first_2h] = (n_keep + np.arange(first_2h - n_keep) * group) * float(step_s)
    bounds[first_2h:n] = (n_hourly + np.arange(n - first_2h) * 2 * group) * float(step_s)
    bounds[n] = n_fine * float(step_s)
    bounds[0] = (now - start).total_seconds()
    if bounds[1] - bounds[0] < 1.0:  # now is at the very end of a slot: skip the sliver
        bounds[0] = bounds[1] - 1.0
    return Horizon(now=now, start=start, step_s=step_s, bounds_s=bounds, fine_to_slot=fine_to_slot)


def forecast_end(forecast: PowerForecast) -> datetime:
    return forecast.start + timedelta(seconds=len(forecast) * forecast.step_s)


def average_onto(horizon: Horizon, forecast: PowerForecast, values_w: FloatArray) -> FloatArray:
    """Mean power of a piecewise-constant forecast series over each planning slot."""
    values = np.nan_to_num(np.maximum(np.asarray(values_w, dtype=float), 0.0), nan=0.0)
    f0 = (forecast.start - horizon.start).total_seconds()
    edges = f0 + np.arange(len(values) + 1) * float(forecast.step_s)
    cum_wh = np.concatenate(([0.0], np.cumsum(values * forecast.step_s / 3600.0)))
    at = np.interp(horizon.bounds_s, edges, cum_wh, left=0.0, right=float(cum_wh[-1]))
    return np.asarray(np.diff(at) / horizon.dt_h, dtype=float)
