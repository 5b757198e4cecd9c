"""Measured weather for replay: one value per replay step; short gaps filled, long ones skipped.

Real field data has holes (a logger reboot, a cleaning day). Gaps up to ``max_fill_h`` (3 h)
are interpolated in time; longer ones are left out: the replay's clock jumps over them with
the battery's state carried across, and their hours are reported as ``weather_gap_h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

MAX_FILL_H = 3.0


@dataclass(frozen=True)
class Segment:
    """A stretch of time with weather for every step: [start, end)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class PreparedWeather:
    frame: pd.DataFrame  # one row per step over the replay range, gaps > max_fill_h left NaN
    segments: tuple[Segment, ...]
    gap_h: float


def prepare(frame: pd.DataFrame, start: datetime, end: datetime, step_s: int,
            max_fill_h: float = MAX_FILL_H) -> PreparedWeather:
    """Mean per step over [start, end); fill gaps <= ``max_fill_h``; segments between longer ones."""
    if "ghi_w_m2" not in frame.columns:
        raise ValueError("replay weather needs a ghi_w_m2 column (measured irradiance)")
    grid = pd.date_range(start, end, freq=pd.Timedelta(seconds=step_s), inclusive="left", tz="UTC")
    if len(grid) == 0:
        raise ValueError("replay range is empty")
    numeric = frame.sort_index()
    native_s = float(np.median(np.diff(numeric.index.as_unit("s").asi8))) if len(numeric) > 1 else step_s
    if native_s > step_s:
        # coarser data are interval means labelled at their start: place them at their centre
        # so interpolating to finer steps does not move the sun by half an interval
        numeric = numeric.set_axis(numeric.index + pd.Timedelta(seconds=(native_s - step_s) / 2))
    numeric = numeric[(numeric.index >= grid[0] - pd.Timedelta(hours=max_fill_h + 1))
                      & (numeric.index < grid[-1] + pd.Timedelta(hours=max_fill_h + 1))]
    binned = numeric.resample(pd.Timedelta(seconds=step_s), origin=grid[0]).mean()
    binned = binned.reindex(grid)
    limit = int(max_fill_h * 3600 // step_s)
    missing = binned["ghi_w_m2"].isna().to_numpy()
    runs = _runs(missing)
    long_gap = np.zeros(len(grid), dtype=bool)
    for a, b in runs:
        if b - a > limit or a == 0 or b == len(grid):
            long_gap[a:b] = True  # too long, or at an edge where nothing can be interpolated
    filled = binned.interpolate(method="time", limit_area="inside")
    filled[long_gap] = np.nan
    segments: list[Segment] = []
    for a, b in _runs(~long_gap):
        seg_end = grid[b].to_pydatetime() if b < len(grid) else grid[-1].to_pydatetime() + pd.Timedelta(
            seconds=step_s)
        segments.append(Segment(grid[a].to_pydatetime(), seg_end))
    return PreparedWeather(frame=filled, segments=tuple(segments),
                           gap_h=float(long_gap.sum()) * step_s / 3600.0)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where ``mask`` is True."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
