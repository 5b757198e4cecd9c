"""PV physics: tracker ordering, night, sunrise/noon/sunset at equatorial and southern sites,
hemisphere conventions, model options, inverter limit.

Sun times are checked against NOAA's general solar position equations, implemented here
independently of pvlib's SPA, so a time-zone or longitude-sign slip anywhere in the chain shows.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from appliance.config import ArrayConfig, SiteConfig, SunboxConfig
from appliance.solar.forecast import forecast_pv
from appliance.solar.geometry import orientation, sun_position
from appliance.solar.pvsystem import Physics, ac_power_w, cec_parameters
from tests.conftest import make_config

SITES = {
    "nairobi": SiteConfig(
        name="nairobi", lat=-1.2921, lon=36.8219, altitude_m=1795, tz="Africa/Nairobi"
    ),
    "addis": SiteConfig(
        name="addis", lat=9.0300, lon=38.7400, altitude_m=2355, tz="Africa/Addis_Ababa"
    ),
    "manila": SiteConfig(name="manila", lat=14.5995, lon=120.9842, altitude_m=10, tz="Asia/Manila"),
}
# Solar noon in local clock time falls in these windows all year (longitude + equation of time).
NOON_WINDOWS = {
    "nairobi": ("12:12", "12:50"),
    "addis": ("12:05", "12:45"),
    "manila": ("11:38", "12:14"),
}
DATES = [date(2024, 3, 20), date(2024, 6, 21), date(2024, 11, 3), date(2024, 12, 21)]


def noaa_sun_times(lat: float, lon: float, day: date) -> tuple[datetime, datetime, datetime]:
    """Sunrise, solar noon, sunset (UTC) by NOAA's general solar position equations."""
    doy = day.timetuple().tm_yday
    g = 2 * math.pi / 365 * (doy - 1)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    phi = math.radians(lat)
    ha = math.degrees(
        math.acos(
            math.cos(math.radians(90.833)) / (math.cos(phi) * math.cos(decl))
            - math.tan(phi) * math.tan(decl)
        )
    )
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rise = midnight + timedelta(minutes=720 - 4 * (lon + ha) - eqtime)
    noon = midnight + timedelta(minutes=720 - 4 * lon - eqtime)
    sset = midnight + timedelta(minutes=720 - 4 * (lon - ha) - eqtime)
    return rise, noon, sset


def _config(site: SiteConfig, **array: object) -> SunboxConfig:
    return make_config(site=site.model_dump(), array={"dc_kw": 3.0, "inverter_ac_kw": 4.0, **array})


def _day_times(site: SiteConfig, day: date, step_min: int = 1) -> pd.DatetimeIndex:
    start = pd.Timestamp(datetime(day.year, day.month, day.day), tz=site.tz)
    return pd.date_range(start, periods=24 * 60 // step_min, freq=f"{step_min}min").tz_convert(
        "UTC"
    )


@pytest.mark.parametrize("name", sorted(SITES))
def test_clear_day_energy_dual_ge_single_ge_fixed(name: str) -> None:
    site = SITES[name]
    equator_facing = 180.0 if site.lat >= 0 else 0.0
    for day in (date(2024, 6, 21), date(2024, 12, 21)):
        times = _day_times(site, day)
        energy = {}
        for tracker in ("fixed", "single_axis", "dual_axis"):
            array = ArrayConfig(
                dc_kw=3.0,
                tracker=tracker,
                tilt_deg=max(10.0, abs(site.lat)),
                azimuth_deg=equator_facing,
                inverter_ac_kw=4.0,
            )
            energy[tracker] = float(ac_power_w(site, array, times).sum()) / 60.0
        assert energy["dual_axis"] >= energy["single_axis"] >= energy["fixed"] > 0.0, (
            name,
            day,
            energy,
        )
        # Trackers are worth having: at least 15 % over fixed on a clear day in the tropics.
        assert energy["dual_axis"] > 1.15 * energy["fixed"], (name, day, energy)


def test_forecast_keeps_tracker_order_and_zero_at_night() -> None:
    site = SITES["nairobi"]
    now = datetime(2024, 6, 21, 0, 0, tzinfo=ZoneInfo(site.tz))
    days = {}
    for tracker in ("fixed", "single_axis", "dual_axis"):
        fc = forecast_pv(_config(site, tracker=tracker, tilt_deg=10, azimuth_deg=0), now, hours=48)
        assert np.all(fc.p10_w <= fc.p50_w) and np.all(fc.p50_w <= fc.p90_w)
        assert fc.p10_w.min() >= 0.0
        mids = pd.DatetimeIndex(fc.times()) + pd.Timedelta(seconds=fc.step_s / 2)
        night = sun_position(site, mids).apparent_elevation < -1.0
        assert night.sum() > 40
        assert np.all(fc.p90_w[night] == 0.0)
        assert np.all(fc.p50_w[~night & (sun_position(site, mids).apparent_elevation > 10)] > 0.0)
        days[tracker] = float(fc.p50_w.sum())
    assert days["dual_axis"] >= days["single_axis"] >= days["fixed"]


@pytest.mark.parametrize("name", sorted(SITES))
def test_sunrise_noon_sunset(name: str) -> None:
    site = SITES[name]
    zone = ZoneInfo(site.tz)
    config = _config(site, tracker="dual_axis")
    for day in DATES:
        rise, noon, sset = noaa_sun_times(site.lat, site.lon, day)
        # Geometry: the sun's apparent elevation crosses -0.833 deg (upper limb) at NOAA's times.
        t = pd.date_range(rise - timedelta(minutes=10), periods=21, freq="1min")
        elev = sun_position(site, t).apparent_elevation
        crossing = t[int(np.argmax(elev > -0.833))]
        assert abs((crossing - rise).total_seconds()) <= 120, (name, day, crossing, rise)
        # The forecast: first and last minute with power bracket the day; noon sits between.
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        fc = forecast_pv(config, start, hours=24, step_min=1)
        lit = np.flatnonzero(fc.p50_w > 0.0)
        times = fc.times()
        first, last = times[lit[0]], times[lit[-1]] + timedelta(minutes=1)
        # Power starts once the inverter has enough DC (PVWatts: ~0.6 % of its rating).
        assert -120 <= (first - rise).total_seconds() <= 20 * 60, (name, day, first, rise)
        assert -20 * 60 <= (last - sset).total_seconds() <= 120, (name, day, last, sset)
        middle = first + (last - first) / 2
        assert abs((middle - noon).total_seconds()) <= 2 * 60, (name, day, middle, noon)
        lo, hi = NOON_WINDOWS[name]
        assert lo <= noon.astimezone(zone).strftime("%H:%M") <= hi


def test_southern_hemisphere_sun_and_panels_face_north_in_june() -> None:
    site = SITES["nairobi"]
    june = _day_times(site, date(2024, 6, 21))
    december = _day_times(site, date(2024, 12, 21))
    north = ArrayConfig(dc_kw=3.0, tracker="fixed", tilt_deg=20, azimuth_deg=0.0)
    south = ArrayConfig(dc_kw=3.0, tracker="fixed", tilt_deg=20, azimuth_deg=180.0)
    assert ac_power_w(site, north, june).sum() > 1.1 * ac_power_w(site, south, june).sum()
    assert ac_power_w(site, south, december).sum() > 1.1 * ac_power_w(site, north, december).sum()
    _, noon, _ = noaa_sun_times(site.lat, site.lon, date(2024, 6, 21))
    sun = sun_position(site, pd.DatetimeIndex([noon]))
    dual = orientation(ArrayConfig(tracker="dual_axis"), sun)
    assert min(dual.surface_azimuth[0], 360 - dual.surface_azimuth[0]) < 10.0  # facing north
    assert 20.0 < dual.surface_tilt[0] < 26.0  # latitude -1.3 minus declination +23.4


def test_physics_options_agree_and_cec_module_names_are_checked() -> None:
    site = SITES["addis"]
    times = _day_times(site, date(2024, 3, 20), step_min=5)
    array = ArrayConfig(dc_kw=3.0, tracker="single_axis", inverter_ac_kw=4.0)
    base = ac_power_w(site, array, times).sum()
    for physics in (
        Physics(transposition="haydavies"),
        Physics(cell_temp_model="sapm"),
        Physics(decomposition="dirint"),
    ):
        other = ac_power_w(site, array, times, physics=physics).sum()
        assert abs(other / base - 1.0) < 0.05, physics
    cec = ac_power_w(
        site,
        array,
        times,
        physics=Physics(dc_model="cec", cec_module="Canadian_Solar_Inc__CS6K_275M"),
    )
    assert abs(cec.sum() / base - 1.0) < 0.10
    with pytest.raises(ValueError, match="did you mean"):
        cec_parameters("Canadian_Solar_Inc__CS6K_275")


def test_inverter_limit_clips_and_night_is_zero() -> None:
    site = SITES["manila"]
    times = _day_times(site, date(2024, 4, 15))
    array = ArrayConfig(dc_kw=5.0, tracker="dual_axis", inverter_ac_kw=3.0)
    p = ac_power_w(site, array, times)
    assert p.max() == pytest.approx(3000.0)
    assert (p >= 2999.0).sum() > 60  # clipped for more than an hour around noon
    elev = sun_position(site, times).apparent_elevation
    assert np.all(p[elev < -1.0] == 0.0)
