"""The PV forecast as a pure function of (config, history, weather, time).

The planner, the simulator and replay call the same code: ``forecast_pv`` builds a fresh
``Forecaster``, shows it the weather feed, lets it learn from the measured history (only what
lies before ``now``), and asks for the forecast. Same inputs, same output.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from appliance.clock import as_utc
from appliance.config import SunboxConfig
from appliance.solar.forecaster import Forecaster
from appliance.solar.pvsystem import Physics, ac_power_w
from appliance.solar.timegrid import epoch_s, index_from_epoch_s
from appliance.solar.weather_file import typical_step_s
from appliance.state import PowerForecast


def forecast_pv(
    config: SunboxConfig,
    now: datetime,
    *,
    history: pd.Series | None = None,
    weather: pd.DataFrame | None = None,
    hours: float | None = None,
    step_min: int | None = None,
) -> PowerForecast:
    """AC power forecast with P10/P50/P90 (W) per slot from the slot holding ``now``.

    ``history``: measured PV AC power (W), tz-aware index (the store's ``pv_power_w``
    channel, or a field-data file's ``pv_ac_w``); samples at or after ``now`` are ignored.
    ``weather``: a field-data frame (GHI and/or cloud cover, temperature, wind) covering the
    horizon and, ideally, the history too, so the forecaster can judge how good it is.
    """
    now = as_utc(now)
    fc = Forecaster(config, extend_ahead_s=0.0)  # one call: compute only the slots it needs
    if weather is not None:
        fc.set_weather(weather)
    if history is not None and len(history):
        series = history.dropna()
        index = pd.DatetimeIndex(series.index)
        before = np.asarray(index < pd.Timestamp(now))
        fc.observe(index[before], series.to_numpy(dtype=float)[before])
        fc.flush(now)
        fc.learn()
    return fc.forecast(now, hours=hours, step_min=step_min)


def measured_pv(config: SunboxConfig, frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """Measured PV AC power (W) from a field-data frame, labelled like the frame.

    With a ``pv_ac_w`` column that is the measurement. Without it but with measured
    irradiance, the configured array is modelled through the PV chain under that sky (how the
    DTU Lyngby station, which has no PV, stands in for a box): evaluated at each row's
    interval centre, labelled at its start.
    """
    if "pv_ac_w" in frame.columns and frame["pv_ac_w"].notna().any():
        return frame["pv_ac_w"].dropna().astype(float), "measured pv_ac_w"
    if "ghi_w_m2" not in frame.columns or not frame["ghi_w_m2"].notna().any():
        raise ValueError(
            f"{frame.attrs.get('source', 'measured data')}: needs a pv_ac_w column "
            "(or ghi_w_m2 to model the array under the measured sky)"
        )
    rows = frame[frame["ghi_w_m2"].notna()]
    step = typical_step_s(frame)
    centres = index_from_epoch_s(
        epoch_s(pd.DatetimeIndex(rows.index)) + (0.0 if np.isnan(step) else step / 2.0)
    )
    cols = {c: rows[c].to_numpy(dtype=float) for c in rows.columns if c != "pv_ac_w"}
    if ("dni_w_m2" in cols) != ("dhi_w_m2" in cols) or (
        "dni_w_m2" in cols
        and (np.isnan(cols["dni_w_m2"]).any() or np.isnan(cols["dhi_w_m2"]).any())
    ):
        cols.pop("dni_w_m2", None)
        cols.pop("dhi_w_m2", None)
    pv = ac_power_w(
        config.site, config.array, centres, cols, physics=Physics.from_config(config.forecast)
    )
    return pd.Series(pv, index=rows.index, name="pv_ac_w"), "modelled from measured irradiance"


def slot_means(series: pd.Series, step_s: float, min_coverage: float = 0.5) -> pd.Series:
    """Mean power per slot (labelled at its start); slots with too few samples are dropped."""
    if series.empty:
        return series
    native = (
        float(np.median(np.diff(epoch_s(pd.DatetimeIndex(series.index)))))
        if len(series) > 1
        else step_s
    )
    rule = f"{int(step_s)}s"
    grouped = series.resample(rule, label="left", closed="left", origin="epoch")
    means, counts = grouped.mean(), grouped.count()
    expected = max(1.0, step_s / max(native, 1.0))
    return means[counts >= min_coverage * expected].dropna()
