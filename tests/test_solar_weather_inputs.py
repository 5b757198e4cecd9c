"""Weather frames -> chain inputs: cloud cover -> GHI, coarse feeds in clear-sky-index space,
holes stay unknown, and measured DNI/DHI pass straight through."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from appliance.config import ArrayConfig, SiteConfig
from appliance.solar.clearsky import clear_sky
from appliance.solar.geometry import sun_position
from appliance.solar.pvsystem import Physics, ac_power_w
from appliance.solar.weather_file import validate_weather_frame
from appliance.solar.weather_inputs import (
    cloud_cover_to_ghi,
    cloud_cover_to_index,
    index_to_cloud_cover,
    pv_from_weather,
    weather_inputs,
)

SITE = SiteConfig(name="kisumu", lat=-0.0917, lon=34.768, altitude_m=1131, tz="Africa/Nairobi")
ARRAY = ArrayConfig(dc_kw=3.0, tracker="dual_axis", inverter_ac_kw=4.0)


def _frame(index: pd.DatetimeIndex, **cols: np.ndarray) -> pd.DataFrame:
    return validate_weather_frame(pd.DataFrame(cols, index=index), "test feed")


def test_cloud_cover_models() -> None:
    clear = np.array([800.0, 800.0, 800.0])
    np.testing.assert_allclose(
        cloud_cover_to_ghi(np.array([0.0, 50.0, 100.0]), clear),
        [800.0, 800.0 * (1 - 0.75 * 0.5**3.4), 200.0],
    )
    np.testing.assert_allclose(cloud_cover_to_index(np.array([0.0, 100.0]), "larson"), [1.0, 0.35])
    kt = np.array([0.3, 0.6, 0.9, 1.0])
    np.testing.assert_allclose(cloud_cover_to_index(index_to_cloud_cover(kt)), kt, atol=1e-9)


def test_hourly_ghi_is_interpolated_as_clear_sky_index() -> None:
    hours = pd.date_range("2024-03-20T00:00Z", periods=24, freq="1h")
    # Hourly means at exactly half the clear sky, computed like a station would (mean of minutes).
    minutes = pd.date_range("2024-03-20T00:00Z", periods=24 * 60, freq="1min")
    clear_min = clear_sky(SITE, minutes, sun_position(SITE, minutes)).ghi
    hourly = 0.5 * clear_min.reshape(24, 60).mean(axis=1)
    feed = _frame(hours, ghi_w_m2=hourly, temp_air_c=np.full(24, 25.0))
    times = pd.date_range("2024-03-20T00:30Z", periods=22 * 60, freq="1min")
    cols = weather_inputs(SITE, times, feed)
    clear = clear_sky(SITE, times, sun_position(SITE, times)).ghi
    lit = clear > 50.0
    np.testing.assert_allclose(cols["ghi_w_m2"][lit], 0.5 * clear[lit], rtol=0.04)
    assert np.all(cols["ghi_w_m2"][clear == 0.0] == 0.0)  # no sunlight before sunrise
    assert "dni_w_m2" not in cols  # GHI only: the chain decomposes
    np.testing.assert_allclose(cols["temp_air_c"], 25.0)


def test_cloud_only_feed_and_holes() -> None:
    hours = pd.date_range("2024-03-20T00:00Z", periods=24, freq="1h")
    cover = np.full(24, 100.0)
    cover[10:14] = np.nan  # a hole of four hours: more than two steps
    feed = _frame(hours, cloud_cover_pct=cover)
    times = pd.date_range("2024-03-20T03:00Z", periods=16, freq="1h") + pd.Timedelta(minutes=30)
    cols = weather_inputs(SITE, times, feed)
    clear = clear_sky(SITE, times, sun_position(SITE, times)).ghi
    known = ~np.isnan(cols["ghi_w_m2"])
    np.testing.assert_allclose(cols["ghi_w_m2"][known], 0.25 * clear[known], rtol=1e-6)
    assert np.isnan(cols["ghi_w_m2"][times.hour == 12]).all()  # inside the hole
    after = pd.DatetimeIndex([pd.Timestamp("2024-03-21T03:00Z")])
    assert np.isnan(weather_inputs(SITE, after, feed)["ghi_w_m2"]).all()  # beyond the feed


def test_measured_split_passes_through_and_pv_is_nan_where_unknown() -> None:
    t = pd.date_range("2024-03-20T06:00Z", periods=12, freq="5min")
    ghi = np.linspace(600, 700, 12)
    dni = np.linspace(700, 800, 12)
    dhi = np.linspace(100, 110, 12)
    feed = _frame(t, ghi_w_m2=ghi, dni_w_m2=dni, dhi_w_m2=dhi)
    centres = t + pd.Timedelta(seconds=150)
    cols = weather_inputs(SITE, centres, feed)
    np.testing.assert_allclose(cols["dni_w_m2"], dni)
    pv = pv_from_weather(SITE, ARRAY, centres, feed)
    direct = ac_power_w(SITE, ARRAY, centres, {"ghi_w_m2": ghi, "dni_w_m2": dni, "dhi_w_m2": dhi})
    np.testing.assert_allclose(pv, direct, rtol=1e-9)
    later = pd.date_range("2024-03-20T09:00Z", periods=3, freq="5min")
    assert np.isnan(pv_from_weather(SITE, ARRAY, later, feed)).all()


def test_decomposition_choice_changes_little_on_a_day() -> None:
    t = pd.date_range("2024-03-20T03:00Z", periods=12 * 13, freq="5min")
    clear = clear_sky(SITE, t, sun_position(SITE, t)).ghi
    feed = _frame(t, ghi_w_m2=0.8 * clear)
    erbs = pv_from_weather(SITE, ARRAY, t, feed).sum()
    dirint = pv_from_weather(SITE, ARRAY, t, feed, physics=Physics(decomposition="dirint")).sum()
    assert erbs > 0 and dirint > 0
    assert dirint == pytest.approx(erbs, rel=0.08)
    assert dirint != pytest.approx(erbs, rel=1e-6)
