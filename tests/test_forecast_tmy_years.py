"""Typical meteorological years are stamped with years before 1970 (pvlib's Miami TMY2 is
1962): the forecaster must learn from them as from any other year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from appliance.clock import ManualClock
from appliance.solar.forecaster import Forecaster
from appliance.solar.pvsystem import ac_power_w
from tests.conftest import make_config


def test_forecaster_learns_from_1962() -> None:
    cfg = make_config(site={"name": "miami", "lat": 25.8, "lon": -80.27, "altitude_m": 2, "tz": "America/New_York"})
    start = datetime(1962, 4, 1, tzinfo=UTC)
    clock = ManualClock(start)
    fc = Forecaster(cfg, clock)
    times = pd.date_range(start, periods=3 * 288, freq="5min", tz="UTC")
    pv = 0.5 * ac_power_w(cfg.site, cfg.array, times)  # a steadily half-clear sky
    for t, p in zip(times, pv, strict=True):
        clock.set(t.to_pydatetime())
        assert fc.observe_one(t.to_pydatetime(), float(p))
    out = fc.forecast(start + timedelta(days=3), hours=24, step_min=15)
    assert fc.samples_rejected == 0 and fc.slots_learned > 200
    clear = ac_power_w(cfg.site, cfg.array, pd.DatetimeIndex(out.times()) + pd.Timedelta(minutes=7.5))
    assert float(out.p50_w.sum()) < 0.8 * float(clear.sum())  # it learned the sky is not clear
