"""A weather frame (measured or forecast) -> the arrays ``pvsystem.ac_power_w`` needs.

Feeds arrive at their own step (1 min to 1 h) with whatever they carry: GHI, or only cloud
cover, with or without DNI/DHI. This module samples them at the times the caller asks for:

- cloud cover -> GHI by Kasten & Czeplak (1980), GHI = GHI_clear (1 - 0.75 N^3.4) with N the
  cloud fraction, or Larson et al. (2016)'s linear model GHI = GHI_clear (0.35 + 0.65 (1 - N));
- coarse feeds (step above 15 min) are interpolated in clear-sky-index space, so an hourly mean
  does not put sunlight before sunrise; their diffuse share, when given, is kept as a fraction;
- GHI without DNI/DHI is left to the chain's decomposition (Erbs or DIRINT, see ``Physics``);
- temperature and wind are interpolated linearly.

Where the feed has nothing (before its first row, after its last, across a hole longer than two
steps) the result is NaN and the caller falls back to its own sky.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from appliance.config import ArrayConfig, SiteConfig
from appliance.solar.clearsky import clear_sky
from appliance.solar.geometry import SunPosition, sun_position
from appliance.solar.pvsystem import Physics, PlaneGeometry, ac_power_w, plane_geometry
from appliance.solar.timegrid import epoch_s, index_from_epoch_s
from appliance.solar.weather_file import typical_step_s
from appliance.state import FloatArray

FINE_STEP_S = 900.0  # at or below this step a feed is interpolated as measured
_MIN_CLEAR_W_M2 = 10.0  # below this the clear-sky index is not defined
_SUBSAMPLES = 6  # clear-sky samples per coarse interval, for its mean


def cloud_cover_to_ghi(
    cloud_cover_pct: FloatArray, ghi_clear_w_m2: FloatArray, model: str = "kasten_czeplak"
) -> FloatArray:
    """GHI (W/m²) under a cloud cover (%) given the clear-sky GHI."""
    return np.asarray(ghi_clear_w_m2, dtype=float) * cloud_cover_to_index(cloud_cover_pct, model)


def cloud_cover_to_index(cloud_cover_pct: FloatArray, model: str = "kasten_czeplak") -> FloatArray:
    """Clear-sky index GHI/GHI_clear implied by a cloud cover (%)."""
    n = np.clip(np.asarray(cloud_cover_pct, dtype=float) / 100.0, 0.0, 1.0)
    if model == "larson":
        return 0.35 + 0.65 * (1.0 - n)
    return 1.0 - 0.75 * n**3.4


def index_to_cloud_cover(kt: FloatArray) -> FloatArray:
    """Inverse of Kasten-Czeplak: the cloud cover (%) that gives clear-sky index ``kt``."""
    k = np.clip(np.asarray(kt, dtype=float), 0.25, 1.0)
    return 100.0 * ((1.0 - k) / 0.75) ** (1.0 / 3.4)


def _interp(x_src: FloatArray, y_src: FloatArray, x: FloatArray, step_s: float) -> FloatArray:
    """Linear interpolation that stays NaN outside the data and across holes > 2 steps."""
    ok = ~np.isnan(y_src)
    xs, ys = x_src[ok], y_src[ok]
    out = np.full(x.shape, np.nan)
    if xs.size == 0:
        return out
    if xs.size == 1:
        near = np.abs(x - xs[0]) <= step_s / 2.0
        out[near] = ys[0]
        return out
    out = np.interp(x, xs, ys)
    idx = np.clip(np.searchsorted(xs, x), 1, xs.size - 1)
    gap = xs[idx] - xs[idx - 1]
    inside = (x >= xs[0]) & (x <= xs[-1])
    edge = (~inside) & (
        ((x < xs[0]) & (xs[0] - x <= step_s / 2.0)) | ((x > xs[-1]) & (x - xs[-1] <= step_s / 2.0))
    )
    bad = (inside & (gap > 2.0 * step_s + 1.0)) | (~inside & ~edge)
    out[bad] = np.nan
    return out


def _interval_clear_ghi(site: SiteConfig, starts_s: FloatArray, step_s: float) -> FloatArray:
    """Mean clear-sky GHI over each interval [start, start + step)."""
    offsets = (np.arange(_SUBSAMPLES) + 0.5) * step_s / _SUBSAMPLES
    t = (starts_s[:, None] + offsets[None, :]).ravel()
    times = index_from_epoch_s(t)
    ghi = clear_sky(site, times, sun_position(site, times, fast=True)).ghi
    return np.asarray(ghi.reshape(len(starts_s), _SUBSAMPLES).mean(axis=1), dtype=float)


def weather_inputs(
    site: SiteConfig,
    times: pd.DatetimeIndex,
    weather: pd.DataFrame,
    *,
    sun: SunPosition | None = None,
    cloud_model: str = "kasten_czeplak",
) -> dict[str, FloatArray]:
    """Sample a field-data frame at ``times`` (instants): ghi/dni/dhi (W/m²), temp, wind.

    Only keys the feed can supply are returned; values are NaN where the feed is silent.
    """
    if times.tz is None:
        raise ValueError("times must be timezone-aware")
    step = typical_step_s(weather)
    if np.isnan(step):
        step = 3600.0
    starts = epoch_s(pd.DatetimeIndex(weather.index))
    centres = starts + step / 2.0
    x = epoch_s(times)
    out: dict[str, FloatArray] = {}
    for name in ("temp_air_c", "wind_speed_m_s"):
        if name in weather.columns:
            out[name] = _interp(centres, weather[name].to_numpy(dtype=float), x, step)
    has_ghi = "ghi_w_m2" in weather.columns and weather["ghi_w_m2"].notna().any()
    has_cloud = "cloud_cover_pct" in weather.columns and weather["cloud_cover_pct"].notna().any()
    if not (has_ghi or has_cloud):
        return out
    has_split = "dni_w_m2" in weather.columns and "dhi_w_m2" in weather.columns
    if has_ghi and step <= FINE_STEP_S:
        out["ghi_w_m2"] = np.clip(
            _interp(centres, weather["ghi_w_m2"].to_numpy(dtype=float), x, step), 0.0, None
        )
        if has_split:
            out["dni_w_m2"] = np.clip(
                _interp(centres, weather["dni_w_m2"].to_numpy(dtype=float), x, step), 0.0, None
            )
            out["dhi_w_m2"] = np.clip(
                _interp(centres, weather["dhi_w_m2"].to_numpy(dtype=float), x, step), 0.0, None
            )
        return out
    # Coarse feed (or clouds only): interpolate the clear-sky index, not the irradiance.
    kt = np.full(len(starts), np.nan)
    if has_ghi:
        ghi_rows = weather["ghi_w_m2"].to_numpy(dtype=float)
        clear_rows = _interval_clear_ghi(site, starts, step)
        with np.errstate(divide="ignore", invalid="ignore"):
            kt = np.where(clear_rows >= _MIN_CLEAR_W_M2, ghi_rows / clear_rows, np.nan)
        kt = np.clip(kt, 0.0, 1.5)
        low_sun = (clear_rows < _MIN_CLEAR_W_M2) & ~np.isnan(ghi_rows)
        kt = _fill_low_sun(kt, low_sun)
    if has_cloud:
        from_cloud = cloud_cover_to_index(
            weather["cloud_cover_pct"].to_numpy(dtype=float), cloud_model
        )
        kt = np.where(np.isnan(kt), from_cloud, kt)
    kt_at = _interp(centres, kt, x, step)
    sun = sun or sun_position(site, times)
    clear_at = clear_sky(site, times, sun).ghi
    ghi = np.clip(kt_at * clear_at, 0.0, None)
    out["ghi_w_m2"] = ghi
    if has_split and has_ghi:
        g = weather["ghi_w_m2"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            kd_rows = np.where(
                g > _MIN_CLEAR_W_M2, weather["dhi_w_m2"].to_numpy(dtype=float) / g, np.nan
            )
        kd_at = np.clip(_interp(centres, np.clip(kd_rows, 0.0, 1.0), x, step), 0.0, 1.0)
        if not np.isnan(kd_at).all():
            cosz = np.cos(np.radians(sun.zenith))
            dhi = np.where(np.isnan(kd_at), np.nan, ghi * kd_at)
            dni = np.where(cosz > 0.065, (ghi - dhi) / np.maximum(cosz, 0.065), 0.0)
            out["dhi_w_m2"] = dhi
            out["dni_w_m2"] = np.clip(dni, 0.0, 1100.0)
    return out


def _fill_low_sun(kt: FloatArray, low_sun: np.ndarray) -> FloatArray:
    """Rows where the sun is too low for a clear-sky index take their nearest neighbour's (at
    night, any value: the clear sky it multiplies is zero), so only real holes stay unknown."""
    s = pd.Series(kt)
    filled = s.ffill(limit=3).bfill(limit=3).fillna(1.0).to_numpy(dtype=float)
    return np.where(low_sun & np.isnan(kt), filled, kt)


def pv_from_weather(
    site: SiteConfig,
    array: ArrayConfig,
    times: pd.DatetimeIndex,
    weather: pd.DataFrame,
    *,
    physics: Physics | None = None,
    geometry: PlaneGeometry | None = None,
    cloud_model: str = "kasten_czeplak",
) -> FloatArray:
    """AC power (W) of the array under the feed's sky at ``times``; NaN where the feed is silent."""
    geom = geometry if geometry is not None else plane_geometry(site, array, times)
    cols = weather_inputs(site, times, weather, sun=geom.sun, cloud_model=cloud_model)
    out = np.full(len(times), np.nan)
    if "ghi_w_m2" not in cols:
        return out
    known = ~np.isnan(cols["ghi_w_m2"])
    if not known.any():
        return out
    sub = {k: v[known] for k, v in cols.items()}
    if "dni_w_m2" in sub and np.isnan(sub["dni_w_m2"]).any():
        sub.pop("dni_w_m2")
        sub.pop("dhi_w_m2", None)
    idx = np.flatnonzero(known)
    out[known] = ac_power_w(site, array, times[idx], sub, physics=physics, geometry=geom.take(idx))
    return out
