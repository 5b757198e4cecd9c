"""Readers that turn the raw public data in field_data/solar into the field-data format.

Each returns a frame as ``weather_file.read_weather_file`` would (UTC index named ``time``,
columns from ``weather_file.COLUMNS``, interval-beginning labels), validated by the same rules.
The converted files committed in field_data are written by ``appliance.solar.derived_files``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from appliance.solar.weather_file import WeatherFileError, validate_weather_frame

# DTU Construct's solar station at Lyngby (AssessingSolar/dtu_solar_station).
DTU_LAT, DTU_LON, DTU_ALTITUDE_M = 55.79064, 12.52505, 50.0
# NREL Mesa single-axis tracker, Golden CO (PVDAQ system 50).
MESA_LAT, MESA_LON, MESA_ALTITUDE_M = 39.7406, -105.1774, 1829.0
# Open Power System Data household residential4, Konstanz.
KONSTANZ_LAT, KONSTANZ_LON, KONSTANZ_ALTITUDE_M = 47.66, 9.18, 405.0


def mean_by_step(frame: pd.DataFrame, step_min: int, min_coverage: float = 0.5) -> pd.DataFrame:
    """Interval means over ``step_min`` (labelled at the interval start); an interval with less
    than ``min_coverage`` of its samples present stays empty rather than guessed."""
    rule = f"{step_min}min"
    grouped = frame.resample(rule, label="left", closed="left")
    means = grouped.mean()
    counts = grouped.count()
    native_s = float(np.median(np.diff(frame.index.as_unit("us").asi8))) / 1e6
    expected = max(1.0, step_min * 60.0 / native_s)
    return means.where(counts >= min_coverage * expected)


def read_dtu_lyngby(path: Path | str, step_min: int = 5) -> pd.DataFrame:
    """DTU Lyngby 1-minute station file -> GHI, DNI, DHI, air temperature, wind at ``step_min``.

    Small negative night-time irradiance (pyranometer thermal offsets) is set to zero.
    """
    p = Path(path)
    try:
        raw = pd.read_csv(
            p, usecols=["Time(utc)", "GHI", "DNI", "DHI", "air_temperature", "wind_speed_avg"]
        )
    except (OSError, ValueError) as exc:
        raise WeatherFileError(f"{p}: not a DTU station file ({exc})") from None
    index = pd.DatetimeIndex(pd.to_datetime(raw["Time(utc)"], utc=True), name="time")
    frame = pd.DataFrame(
        {
            "ghi_w_m2": raw["GHI"].to_numpy(dtype=float),
            "dni_w_m2": raw["DNI"].to_numpy(dtype=float),
            "dhi_w_m2": raw["DHI"].to_numpy(dtype=float),
            "temp_air_c": raw["air_temperature"].to_numpy(dtype=float),
            "wind_speed_m_s": raw["wind_speed_avg"].to_numpy(dtype=float),
        },
        index=index,
    )
    for name in ("ghi_w_m2", "dni_w_m2", "dhi_w_m2"):
        frame[name] = frame[name].clip(lower=0.0)
    if step_min > 1:
        frame = mean_by_step(frame, step_min)
    frame = frame.dropna(how="all")
    return validate_weather_frame(frame, str(p))


def read_nrel_mesa(path: Path | str) -> pd.DataFrame:
    """NREL Mesa tracker AC power (kW, 15-min, local standard time with offset) -> ``pv_ac_w``."""
    p = Path(path)
    try:
        raw = pd.read_csv(p)
        times = pd.to_datetime(raw["measured_on"], format="ISO8601", utc=True)
        kw = pd.to_numeric(raw["ac_power"], errors="coerce").to_numpy(dtype=float)
    except (OSError, KeyError, ValueError) as exc:
        raise WeatherFileError(f"{p}: not an NREL Mesa power file ({exc})") from None
    frame = pd.DataFrame(
        {"pv_ac_w": np.clip(kw, 0.0, None) * 1000.0}, index=pd.DatetimeIndex(times, name="time")
    )
    return validate_weather_frame(frame, str(p))


def read_opsd_household(path: Path | str, column: str = "DE_KN_residential4_pv") -> pd.DataFrame:
    """OPSD household cumulative PV meter (kWh, hourly) -> mean ``pv_ac_w`` per hour.

    The counter read at ``t`` holds the energy up to ``t``, so the hour starting at ``t`` made
    ``counter(t + 1 h) - counter(t)``. Missing readings and counter resets leave the hour empty.
    """
    p = Path(path)
    try:
        raw = pd.read_csv(p, usecols=["utc_timestamp", column])
    except (OSError, ValueError) as exc:
        raise WeatherFileError(
            f"{p}: not an OPSD household file with column {column} ({exc})"
        ) from None
    times = pd.DatetimeIndex(pd.to_datetime(raw["utc_timestamp"], utc=True), name="time")
    counter = pd.Series(
        pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype=float), index=times
    )
    counter = counter.dropna()
    hours = counter.index
    nxt = counter.shift(-1)
    gap_s = np.diff(hours.as_unit("us").asi8, append=0) / 1e6
    energy_kwh = (nxt - counter).to_numpy(dtype=float)
    valid = (gap_s == 3600.0) & (energy_kwh >= 0.0) & ~np.isnan(energy_kwh)
    power_w = np.where(valid, energy_kwh * 1000.0, np.nan)  # kWh per hour -> mean W
    frame = pd.DataFrame({"pv_ac_w": power_w}, index=hours).dropna()
    return validate_weather_frame(frame, str(p))


def read_tmy2(path: Path | str) -> pd.DataFrame:
    """A TMY2 file (e.g. pvlib's Miami ``12839.tm2``) -> hourly GHI, DNI, DHI, temperature, wind.

    TMY2 is a typical meteorological year stitched from months of different years; pvlib labels
    every row with one year (1962 for Miami) at the interval start, in local standard time.
    Temperatures come in tenths of a degree and wind in tenths of m/s.
    """
    import pvlib

    p = Path(path)
    try:
        raw, _meta = pvlib.iotools.read_tmy2(str(p))
    except (OSError, ValueError, KeyError) as exc:
        raise WeatherFileError(f"{p}: not a TMY2 file ({exc})") from None
    index = pd.DatetimeIndex(raw.index).tz_convert("UTC").rename("time")
    frame = pd.DataFrame(
        {
            "ghi_w_m2": raw["GHI"].to_numpy(dtype=float),
            "dni_w_m2": raw["DNI"].to_numpy(dtype=float),
            "dhi_w_m2": raw["DHI"].to_numpy(dtype=float),
            "temp_air_c": raw["DryBulb"].to_numpy(dtype=float) / 10.0,
            "wind_speed_m_s": raw["Wspd"].to_numpy(dtype=float) / 10.0,
        },
        index=index,
    )
    return validate_weather_frame(frame, str(p))
