"""Backtest: replay measured history through the forecaster exactly as the box would live it.

At each issue time (00:00 local every day) the forecaster forecasts the horizon using only what
came before; then it is shown that day's measurements and learns. The forecasts are scored
against the measured power on daylight slots (sun more than 5° above the horizon at the
slot's middle) that also have a smart-persistence reference:

- ``mae_w``, ``rmse_w``, ``bias_w`` (forecast - measured) of the P50; ``nmae`` = MAE / DC kW;
- ``skill_vs_smart_persistence`` = 1 - RMSE / RMSE of clear-sky-index persistence, the
  reference of solar forecasting: the measured clear-sky index of the same slot on the last
  day before the issue time, times today's clear-sky power (where that slot was too dim to
  define an index, the day's mean index);
- ``p10_exceedance`` / ``p90_exceedance``: share of slots measured below P10 / above P90
  (calibrated: 0.10 each);
- ``pinball_loss``: mean quantile loss (W) over P10, P50, P90;
- ``skill_of_mean_vs_smart_persistence``: the same skill for the forecast's expected value
  (``meta["mean_w"]``): the median minimises absolute error, the mean squared error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from appliance.config import SunboxConfig
from appliance.solar.clearsky_table import ClearSkyTable
from appliance.solar.forecast import measured_pv, slot_means
from appliance.solar.forecaster import DAYLIGHT_ELEVATION_DEG, Forecaster
from appliance.solar.timegrid import epoch_s
from appliance.solar.weather_file import typical_step_s
from appliance.state import FloatArray

PERSISTENCE_MIN_CLEAR = 0.05  # share of DC kW a slot's clear-sky power needs for its own index
LEVELS = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class BacktestResult:
    days: int
    mae_w: float
    nmae: float
    rmse_w: float
    bias_w: float
    skill_vs_smart_persistence: float
    skill_of_mean_vs_smart_persistence: float
    p10_exceedance: float
    p90_exceedance: float
    pinball_loss: float
    slots: int
    rmse_smart_persistence_w: float
    mean_measured_w: float
    horizon_h: float
    step_min: int
    capacity_w: float
    measured_source: str
    weather: str | None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def pinball(y: FloatArray, q: FloatArray, level: float) -> float:
    d = y - q
    return float(np.mean(np.maximum(level * d, (level - 1.0) * d)))


def run_backtest(
    config: SunboxConfig,
    measured: pd.DataFrame,
    *,
    weather: pd.DataFrame | None = None,
    horizon_h: float = 24.0,
) -> BacktestResult:
    """Day-by-day forecast/learn loop over ``measured`` (a field-data frame); see module doc."""
    if horizon_h <= 0:
        raise ValueError("horizon must be positive")
    data_step_min = typical_step_s(measured) / 60.0
    step_min = config.forecast.step_min
    if not math.isnan(data_step_min) and data_step_min > step_min:
        step_min = int(math.ceil(data_step_min))
        config = config.model_copy(
            update={"forecast": config.forecast.model_copy(update={"step_min": step_min})}
        )
    step_s = step_min * 60.0
    pv, source = measured_pv(config, measured)
    slots = slot_means(pv, step_s)
    if slots.empty:
        raise ValueError("no measured PV power to backtest against")
    t = epoch_s(pd.DatetimeIndex(slots.index))
    meas_by_slot = dict(
        zip(
            np.floor(t / step_s).astype(np.int64).tolist(),
            slots.to_numpy(dtype=float).tolist(),
            strict=True,
        )
    )

    fc = Forecaster(config)
    if weather is not None:
        fc.set_weather(weather)
    zone = config.site.zone
    first = datetime.fromtimestamp(float(t[0]), tz=UTC).astimezone(zone)
    last = datetime.fromtimestamp(float(t[-1]) + step_s, tz=UTC).astimezone(zone)
    issue = datetime(first.year, first.month, first.day, tzinfo=zone)
    if issue < first:
        issue += timedelta(days=1)
    fc.precompute(
        issue.astimezone(UTC) - timedelta(days=2),
        last.astimezone(UTC) + timedelta(hours=horizon_h + 1),
    )

    fcst_slots: list[np.ndarray] = []
    fcst_q: list[FloatArray] = []
    fcst_day: list[np.ndarray] = []
    day_no = 0
    slot_index = pd.DatetimeIndex(slots.index)
    values = slots.to_numpy(dtype=float)
    while issue < last:
        nxt = datetime(issue.year, issue.month, issue.day, tzinfo=zone) + timedelta(days=1)
        nxt = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)  # midnight after DST changes
        out = fc.forecast(issue.astimezone(UTC), hours=horizon_h)
        s0 = int(math.floor(out.start.timestamp() / step_s))
        fcst_slots.append(s0 + np.arange(len(out), dtype=np.int64))
        fcst_q.append(np.stack([out.p10_w, out.p50_w, out.p90_w, out.meta["mean_w"]], axis=1))
        fcst_day.append(np.full(len(out), day_no, dtype=np.int64))
        lo = np.searchsorted(slot_index, pd.Timestamp(issue))
        hi = np.searchsorted(slot_index, pd.Timestamp(nxt))
        if hi > lo:
            fc.observe(slot_index[lo:hi], values[lo:hi])
        issue = nxt
        day_no += 1
    if not fcst_slots:
        raise ValueError("measured data is shorter than one day")

    s_all = np.concatenate(fcst_slots)
    q_all = np.concatenate(fcst_q)
    d_all = np.concatenate(fcst_day)
    y = np.array([meas_by_slot.get(int(s), np.nan) for s in s_all])
    table = fc.table()
    ref = _smart_persistence(
        config, table, s_all, meas_by_slot, issue_slots=_issue_slot_of(fcst_slots)
    )
    _, elev, _, _ = table.lookup(s_all * step_s)
    keep = ~np.isnan(y) & ~np.isnan(ref) & (elev > DAYLIGHT_ELEVATION_DEG)
    if not keep.any():
        raise ValueError("no daylight slot has both a measurement and a persistence reference")
    y, q, ref, days = y[keep], q_all[keep], ref[keep], d_all[keep]
    err = q[:, 1] - y
    rmse = float(np.sqrt(np.mean(err**2)))
    rmse_ref = float(np.sqrt(np.mean((ref - y) ** 2)))
    rmse_mean = float(np.sqrt(np.mean((q[:, 3] - y) ** 2)))
    capacity = config.array.dc_kw * 1000.0
    mae = float(np.mean(np.abs(err)))
    return BacktestResult(
        days=int(np.unique(days).size),
        mae_w=mae,
        nmae=mae / capacity,
        rmse_w=rmse,
        bias_w=float(np.mean(err)),
        skill_vs_smart_persistence=1.0 - rmse / rmse_ref if rmse_ref > 0 else float("nan"),
        skill_of_mean_vs_smart_persistence=(
            1.0 - rmse_mean / rmse_ref if rmse_ref > 0 else float("nan")
        ),
        p10_exceedance=float(np.mean(y < q[:, 0])),
        p90_exceedance=float(np.mean(y > q[:, 2])),
        pinball_loss=float(np.mean([pinball(y, q[:, i], lv) for i, lv in enumerate(LEVELS)])),
        slots=int(y.size),
        rmse_smart_persistence_w=rmse_ref,
        mean_measured_w=float(np.mean(y)),
        horizon_h=float(horizon_h),
        step_min=step_min,
        capacity_w=capacity,
        measured_source=source,
        weather=None if weather is None else str(weather.attrs.get("source", "weather frame")),
    )


def _issue_slot_of(per_issue: list[np.ndarray]) -> np.ndarray:
    """Slot number of the issue time of each forecast slot (the first slot of its forecast)."""
    return np.concatenate([np.full(a.size, a[0], dtype=np.int64) for a in per_issue])


def _smart_persistence(
    config: SunboxConfig,
    table: ClearSkyTable,
    slots: np.ndarray,
    meas_by_slot: dict[int, float],
    *,
    issue_slots: np.ndarray,
) -> FloatArray:
    """Clear-sky-index persistence: k of the same slot on the latest day before the issue."""
    step_s = table.step_s
    per_day = int(round(86400.0 / step_s))
    lag_days = np.maximum(1, np.ceil((slots - issue_slots + 1) / per_day)).astype(np.int64)
    src = slots - lag_days * per_day
    clear_now, _, _, _ = table.lookup(slots * step_s)
    clear_src, _, _, _ = table.lookup(src * step_s)
    meas_src = np.array([meas_by_slot.get(int(s), np.nan) for s in src])
    capacity = config.array.dc_kw * 1000.0
    bright = clear_src >= PERSISTENCE_MIN_CLEAR * capacity
    with np.errstate(divide="ignore", invalid="ignore"):
        k_slot = np.where(bright, meas_src / clear_src, np.nan)
    # The day's mean index (ratio of sums over its bright slots) for slots too dim for their own.
    src_day = np.floor_divide(src, per_day)
    k_day: dict[int, float] = {}
    for d in np.unique(src_day[~bright]).tolist():
        day_slots = np.arange(d * per_day, (d + 1) * per_day, dtype=np.int64)
        c, _, _, _ = table.lookup(day_slots * step_s)
        m = np.array([meas_by_slot.get(int(s), np.nan) for s in day_slots])
        ok = (c >= PERSISTENCE_MIN_CLEAR * capacity) & ~np.isnan(m)
        k_day[d] = float(m[ok].sum() / c[ok].sum()) if ok.any() else float("nan")
    fallback = np.array([k_day.get(int(d), np.nan) for d in src_day])
    k = np.clip(np.where(bright, k_slot, fallback), 0.0, 1.5)
    return np.where(clear_now > 0, k * clear_now, 0.0)
