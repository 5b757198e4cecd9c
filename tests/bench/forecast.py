"""Benchmark of the PV forecast; prints JSON figures (ratios measured in the same run).

    .venv/bin/python tests/bench/forecast.py

- ``cold_ratio``: ``forecast_pv`` for 48 h at 5 min with P10/P50/P90 (no history) over the bare
  pvlib chain for the same slots (solar position -> Ineichen clear sky -> dual-axis tracker ->
  Perez POA -> Faiman cell temperature -> PVWatts). Goal <= 1.5. ``cold_ratio_vs_preloaded``:
  the same against a bare chain that does not read pvlib's Linke turbidity file per call.
- ``warm_forecast_ms``: ``Forecaster.forecast`` 48 h x 15 min after precomputation (goal <= 2).
- ``year_5min_s``: the clear-sky table for a year at 5-minute slots (goal <= 2 s).
- ``replay_step_ms``: one observation plus one 48 h forecast, as replay does every 15 minutes.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pvlib

from appliance.config import SunboxConfig, load_config
from appliance.solar.forecast import forecast_pv
from appliance.solar.forecaster import Forecaster
from appliance.solar.pvsystem import ac_power_w

NOW = datetime(2024, 6, 21, 3, 0, tzinfo=UTC)


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time (s) of ``repeat`` calls after one warm-up."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def bare_chain(
    config: SunboxConfig, times: pd.DatetimeIndex, linke: pd.Series | None = None
) -> np.ndarray:
    """The chain as pvlib's docs write it; ``linke`` skips reading pvlib's turbidity file."""
    site, array = config.site, config.array
    pos = pvlib.solarposition.get_solarposition(
        times, site.lat, site.lon, altitude=site.altitude_m, method="nrel_numpy"
    )
    location = pvlib.location.Location(site.lat, site.lon, altitude=site.altitude_m)
    extra = {} if linke is None else {"linke_turbidity": linke}
    cs = location.get_clearsky(times, model="ineichen", solar_position=pos, **extra)
    up = pos["apparent_zenith"] < 90
    tilt = np.where(up, np.minimum(pos["apparent_zenith"], array.dual_axis_max_tilt_deg), 0.0)
    azimuth = np.where(up, pos["azimuth"], 180.0)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt,
        azimuth,
        pos["apparent_zenith"],
        pos["azimuth"],
        cs["dni"],
        cs["ghi"],
        cs["dhi"],
        dni_extra=pvlib.irradiance.get_extra_radiation(times),
        airmass=pvlib.atmosphere.get_relative_airmass(pos["apparent_zenith"]),
        model="perez",
    )
    temp_cell = pvlib.temperature.faiman(poa["poa_global"], 20.0, 1.0)
    dc = pvlib.pvsystem.pvwatts_dc(
        poa["poa_global"], temp_cell, array.dc_kw * 1000.0, array.temp_coeff_pct_per_c / 100.0
    )
    return np.nan_to_num(np.asarray(dc, dtype=float))


def main() -> None:
    config = load_config(None, environ={})  # the built-in demo: 3 kWp dual-axis, Kisumu
    times = pd.date_range(NOW, periods=48 * 12, freq="5min") + pd.Timedelta(minutes=2.5)
    bare_s = timed(lambda: bare_chain(config, times), 15)
    linke = pvlib.clearsky.lookup_linke_turbidity(times, config.site.lat, config.site.lon)
    bare_cached_s = timed(lambda: bare_chain(config, times, linke), 15)
    cold_s = timed(lambda: forecast_pv(config, NOW, hours=48, step_min=5), 15)

    history_slots = pd.date_range(NOW - timedelta(days=60), NOW, freq="15min", inclusive="left")
    clear = ac_power_w(config.site, config.array, history_slots + pd.Timedelta(minutes=7.5))
    rng = np.random.default_rng(0)
    history = pd.Series(
        np.clip(rng.normal(0.65, 0.25, clear.size), 0, 1.2) * clear, index=history_slots
    )
    cold_history_s = timed(
        lambda: forecast_pv(config, NOW, history=history, hours=48, step_min=5), 5
    )

    fc = Forecaster(config)
    fc.observe(history.index, history.to_numpy())
    fc.precompute(NOW - timedelta(days=1), NOW + timedelta(days=40))
    warm_15_s = timed(lambda: fc.forecast(NOW, hours=48), 200)
    warm_5_s = timed(lambda: fc.forecast(NOW, hours=48, step_min=5), 200)

    fine = config.model_copy(
        update={"forecast": config.forecast.model_copy(update={"step_min": 5})}
    )
    year_start = datetime(2024, 1, 1, tzinfo=UTC)

    def year_table() -> None:
        Forecaster(fine).precompute(year_start, year_start + timedelta(days=365))

    year_s = timed(year_table, 3)
    year_times = pd.date_range(year_start, periods=365 * 288, freq="5min")
    year_chain_s = timed(lambda: ac_power_w(config.site, config.array, year_times), 3)

    replay = Forecaster(config)
    replay.precompute(NOW, NOW + timedelta(days=32))
    steps = [NOW + timedelta(minutes=15 * i) for i in range(30 * 96)]
    values = np.clip(rng.normal(0.65, 0.25, len(steps)), 0, 1.2) * 2000.0
    t0 = time.perf_counter()
    for moment, value in zip(steps, values, strict=True):
        replay.observe_one(moment, float(value))
        replay.forecast(moment + timedelta(seconds=1), hours=48)
    replay_step_s = (time.perf_counter() - t0) / len(steps)

    print(
        json.dumps(
            {
                "bare_chain_48h_5min_ms": round(bare_s * 1e3, 2),
                "forecast_pv_48h_5min_ms": round(cold_s * 1e3, 2),
                "cold_ratio": round(cold_s / bare_s, 2),
                "cold_ratio_goal": 1.5,
                "bare_chain_turbidity_preloaded_ms": round(bare_cached_s * 1e3, 2),
                "cold_ratio_vs_preloaded": round(cold_s / bare_cached_s, 2),
                "forecast_pv_60d_history_48h_5min_ms": round(cold_history_s * 1e3, 2),
                "warm_forecast_48h_15min_ms": round(warm_15_s * 1e3, 3),
                "warm_forecast_48h_5min_ms": round(warm_5_s * 1e3, 3),
                "warm_forecast_goal_ms": 2.0,
                "year_5min_table_s": round(year_s, 2),
                "year_5min_chain_s": round(year_chain_s, 2),
                "year_5min_goal_s": 2.0,
                "replay_step_ms": round(replay_step_s * 1e3, 3),
                "replay_year_projection_s": round(replay_step_s * 365 * 96, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
