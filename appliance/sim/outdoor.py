"""A plausible outdoor air temperature when no measured weather is given.

Mean, seasonal swing and daily swing follow latitude and altitude (a lapse rate of 6.5 K/km);
the day's minimum falls near sunrise and its maximum mid-afternoon, in local solar time.
Checked against climate normals: Kisumu (0 deg, 1131 m) about 21 C +/- 5 K a day, Amsterdam
(52 N, 0 m) about 10 C with 3.5 C in January and 17 C in July. Good enough for a room model and
for PV cell temperature; measured weather replaces it whenever it is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from appliance.state import FloatArray

LAPSE_RATE_K_PER_M = 0.0065
_WARMEST_DAY_NORTH = 200  # about 19 July
_WARMEST_DAY_SOUTH = 20
_WARMEST_SOLAR_HOUR = 15.0


def outdoor_temp_c(
    lat: float, lon: float, altitude_m: float, times: pd.DatetimeIndex
) -> FloatArray:
    """Outdoor air temperature (C) at ``times`` (tz-aware) for a site."""
    abs_lat = abs(lat)
    mean_c = 28.0 - 0.42 * max(0.0, abs_lat - 10.0) - LAPSE_RATE_K_PER_M * altitude_m
    season_k = 1.0 + 0.15 * max(0.0, abs_lat - 10.0)
    day_k = max(2.5, 5.5 - 0.04 * abs_lat)
    utc = times.tz_convert("UTC")
    doy = np.asarray(utc.day_of_year, dtype=float)
    hours = np.asarray(utc.hour + utc.minute / 60.0 + utc.second / 3600.0, dtype=float)
    solar_hour = np.mod(hours + lon / 15.0, 24.0)
    warmest = _WARMEST_DAY_NORTH if lat >= 0 else _WARMEST_DAY_SOUTH
    seasonal = season_k * np.cos(2.0 * np.pi * (doy - warmest) / 365.25)
    daily = day_k * np.cos(2.0 * np.pi * (solar_hour - _WARMEST_SOLAR_HOUR) / 24.0)
    return np.asarray(mean_c + seasonal + daily, dtype=float)
