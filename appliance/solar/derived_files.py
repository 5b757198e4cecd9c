"""Regenerate the converted and derived solar files in field_data/solar (documented in SOURCES.md).

    python -m appliance.solar.derived_files [--field-data DIR]

Converted (same data, field-data format): DTU Lyngby 2016 at 5-minute means, NREL Mesa tracker
power, OPSD Konstanz PV power.

Derived weather feeds for the DTU backtest. There is no archive of real NWP forecasts for the
station here, so the "good" feed imitates one from the measured sky, degraded the way NWP
irradiance is: hourly means; the clear-sky index smoothed over 3 hours (NWP places cloud
fields, not clouds); plus an error that is autocorrelated in time (AR(1) per hour, phi 0.9,
sigma 0.20 in clear-sky index: whole mornings too bright or too dull, as when a front is
mistimed). Those parameters were fixed before any backtest was run and never tuned against it;
the seed is fixed. The feed carries GHI only (no DNI/DHI: the forecaster must decompose) and
temperature/wind with their own noise. The "cloud" variant gives the same sky as cloud cover
in whole oktas (the Kasten-Czeplak inverse), like a public weather API. The poor feeds start
from the good one: "biased" (GHI x 1.3), "shifted" (3 hours late: a time-zone bug), "noisy"
(the clear-sky index replaced by the good one plus independent noise, sigma 0.35), "shuffled"
(each day carries another day of the same month: the right climate, no information).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from appliance.config import SiteConfig
from appliance.paths import field_data_dir
from appliance.solar.field_readers import (
    DTU_ALTITUDE_M,
    DTU_LAT,
    DTU_LON,
    mean_by_step,
    read_dtu_lyngby,
    read_nrel_mesa,
    read_opsd_household,
)
from appliance.solar.timegrid import epoch_s
from appliance.solar.weather_file import write_weather_file
from appliance.solar.weather_inputs import _interval_clear_ghi, index_to_cloud_cover
from appliance.state import FloatArray

DTU_RAW = "solar/dtu_lyngby_2016_1min.csv.gz"
DTU_5MIN = "solar/dtu_lyngby_2016_5min.csv.gz"
MESA_RAW = "solar/nrel_mesa_1axis_tracker_ac_power_2010-06-25_30.csv"
MESA_OUT = "solar/nrel_mesa_1axis_tracker_2010-06-25_30_pv.csv"
OPSD_RAW = "solar/opsd_household_DE_KN_residential4_60min_2015-10_2017-02.csv"
OPSD_OUT = "solar/opsd_konstanz_residential4_pv_60min.csv.gz"
FEED_PREFIX = "solar/dtu_lyngby_2016_feed_"
SEED = 2016
GOOD_PHI, GOOD_SIGMA, SMOOTH_H = 0.9, 0.20, 3
BIAS_FACTOR, SHIFT_H, NOISY_SIGMA = 1.3, 3, 0.35

DTU_SITE = SiteConfig(
    name="dtu-lyngby", lat=DTU_LAT, lon=DTU_LON, altitude_m=DTU_ALTITUDE_M, tz="Europe/Copenhagen"
)


def _ar1(n: int, phi: float, sigma: float, rng: np.random.Generator) -> FloatArray:
    e = np.empty(n)
    innov = rng.normal(0.0, sigma * np.sqrt(1.0 - phi**2), n)
    e[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + innov[i]
    return e


def nwp_like_feeds(
    measured: pd.DataFrame, site: SiteConfig = DTU_SITE, seed: int = SEED
) -> dict[str, pd.DataFrame]:
    """The good, cloud-only and poor feeds (hourly) from a measured field-data frame."""
    rng = np.random.default_rng(seed)
    hourly = mean_by_step(measured[["ghi_w_m2", "temp_air_c", "wind_speed_m_s"]], 60).dropna(
        subset=["ghi_w_m2"]
    )
    starts = epoch_s(pd.DatetimeIndex(hourly.index))
    clear = _interval_clear_ghi(site, starts, 3600.0)
    ghi = hourly["ghi_w_m2"].to_numpy(dtype=float)
    lit = clear >= 10.0
    kt = np.where(lit, np.clip(ghi / np.where(lit, clear, 1.0), 0.0, 1.2), np.nan)
    smooth = pd.Series(kt).rolling(SMOOTH_H, center=True, min_periods=1).mean().to_numpy()
    n = len(hourly)
    k_good = np.clip(smooth + _ar1(n, GOOD_PHI, GOOD_SIGMA, rng), 0.03, 1.1)
    temp = hourly["temp_air_c"].to_numpy(dtype=float) + _ar1(n, 0.9, 1.5, rng)
    wind = hourly["wind_speed_m_s"].to_numpy(dtype=float) * np.exp(rng.normal(0.0, 0.25, n))

    def frame(k: FloatArray, index: pd.DatetimeIndex, scale: float = 1.0) -> pd.DataFrame:
        g = np.where(lit, k * clear, ghi) * scale
        return pd.DataFrame(
            {
                "ghi_w_m2": np.round(np.clip(g, 0.0, None), 1),
                "temp_air_c": np.round(temp, 1),
                "wind_speed_m_s": np.round(np.clip(wind, 0.0, None), 1),
            },
            index=index,
        )

    index = pd.DatetimeIndex(hourly.index, name="time")
    good = frame(k_good, index)
    oktas = np.round(index_to_cloud_cover(np.where(lit, k_good, 1.0)) / 12.5) * 12.5
    cloud = pd.DataFrame(
        {
            "cloud_cover_pct": oktas,
            "temp_air_c": good["temp_air_c"].to_numpy(),
            "wind_speed_m_s": good["wind_speed_m_s"].to_numpy(),
        },
        index=index,
    )
    biased = frame(k_good, index, BIAS_FACTOR)
    shifted = good.copy()
    shifted.index = pd.DatetimeIndex(index + pd.Timedelta(hours=SHIFT_H), name="time")
    k_noisy = np.clip(smooth + rng.normal(0.0, NOISY_SIGMA, n), 0.03, 1.1)
    noisy = frame(k_noisy, index)
    shuffled = frame(_shuffle_days(k_good, index, rng), index)
    return {
        "good": good,
        "cloud": cloud,
        "biased": biased,
        "shifted": shifted,
        "noisy": noisy,
        "shuffled": shuffled,
    }


def _shuffle_days(k: FloatArray, index: pd.DatetimeIndex, rng: np.random.Generator) -> FloatArray:
    """Each day gets the clear-sky index of another day of the same month, hour by hour: a feed
    with the right climate and no information about the day it claims to forecast."""
    frame = pd.DataFrame({"k": k, "date": index.date, "hour": index.hour, "month": index.month})
    out = np.full(k.shape, np.nan)
    lookup = {(d, h): v for d, h, v in zip(frame["date"], frame["hour"], frame["k"], strict=True)}
    for _month, group in frame.groupby("month"):
        days = np.array(sorted(set(group["date"])))
        perm = np.roll(rng.permutation(days), 1)
        mapping = dict(zip(days, perm, strict=True))
        for i in group.index:
            out[i] = lookup.get((mapping[frame.at[i, "date"]], frame.at[i, "hour"]), np.nan)
    return np.where(np.isnan(out), k, out)


def feed_rrmse(feed: pd.DataFrame, measured: pd.DataFrame) -> float:
    """Hourly GHI RMSE of a feed against the measured sky, relative to mean daytime GHI."""
    hourly = mean_by_step(measured[["ghi_w_m2"]], 60)["ghi_w_m2"]
    joined = pd.concat(
        [feed["ghi_w_m2"].rename("f"), hourly.rename("m")], axis=1, sort=True
    ).dropna()
    day = joined[joined["m"] > 10.0]
    return float(np.sqrt(np.mean((day["f"] - day["m"]) ** 2)) / day["m"].mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--field-data", type=Path, default=field_data_dir())
    args = parser.parse_args(argv)
    root: Path = args.field_data
    dtu = read_dtu_lyngby(root / DTU_RAW, step_min=5)
    write_weather_file(dtu, root / DTU_5MIN)
    write_weather_file(read_nrel_mesa(root / MESA_RAW), root / MESA_OUT)
    write_weather_file(read_opsd_household(root / OPSD_RAW), root / OPSD_OUT)
    for name, feed in nwp_like_feeds(dtu).items():
        path = root / f"{FEED_PREFIX}{name}_1h.csv.gz"
        write_weather_file(feed, path)
        note = (
            f"GHI rRMSE {feed_rrmse(feed, dtu):.1%}"
            if "ghi_w_m2" in feed.columns
            else "cloud cover only"
        )
        print(f"{path}: {len(feed)} rows, {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
