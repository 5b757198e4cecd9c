"""Slot grids and epoch seconds: the one place that knows how pandas stores time.

pandas 3 keeps datetimes in microseconds by default (older versions: nanoseconds), so every
conversion between a DatetimeIndex and epoch seconds goes through here.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from appliance.clock import as_utc
from appliance.state import FloatArray


def epoch_s(times: pd.DatetimeIndex) -> FloatArray:
    """Seconds since 1970-01-01 UTC of tz-aware ``times``."""
    if times.tz is None:
        raise ValueError("times must be timezone-aware")
    return np.asarray(times.as_unit("us").asi8, dtype=np.int64).astype(float) / 1e6


def index_from_epoch_s(seconds: FloatArray) -> pd.DatetimeIndex:
    """A UTC DatetimeIndex (microseconds) from epoch seconds."""
    us = np.round(np.asarray(seconds, dtype=float) * 1e6).astype(np.int64)
    return pd.DatetimeIndex(pd.to_datetime(us, unit="us", utc=True))


def slot_grid(start: datetime, n: int, step_s: int) -> pd.DatetimeIndex:
    """``n`` slot starts from ``start`` (UTC) every ``step_s`` seconds."""
    t0 = as_utc(start).timestamp()
    return index_from_epoch_s(t0 + np.arange(n, dtype=float) * step_s)


def floor_s(t_s: float, step_s: float) -> float:
    """Start of the UTC-aligned slot holding ``t_s``."""
    return float(np.floor(t_s / step_s) * step_s)
