"""Heat in replay: a simulated room behind the real router, on measured Lyngby winter air."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from appliance.config import HeatConfig
from appliance.heat.virtual_room import VirtualRoom
from appliance.state import Severity
from tests.conftest import FIELD_DATA

DTU = FIELD_DATA / "solar" / "dtu_lyngby_2016_1min.csv.gz"
STEP_S = 60.0


@lru_cache(maxsize=1)
def lyngby_january() -> pd.Series:
    """Measured air temperature, DTU Lyngby, first 20 days of 2016 (UTC, 1 min)."""
    frame = pd.read_csv(DTU, usecols=["Time(utc)", "air_temperature"], nrows=60 * 24 * 20)
    series = frame.set_index(pd.to_datetime(frame["Time(utc)"], utc=True))["air_temperature"]
    return series.interpolate(limit_direction="both")


def run(heat: HeatConfig, tz: str, start: datetime, hours: int, outdoor: np.ndarray,
        routing: bool, power_w: float, start_temp_c: float) -> VirtualRoom:
    room = VirtualRoom(heat, tz, routing=routing, start_temp_c=start_temp_c,
                       outdoor_c=float(outdoor[0]))
    for k in range(int(hours * 3600 / STEP_S)):
        room.step(start + timedelta(seconds=k * STEP_S), STEP_S, power_w, float(outdoor[k]))
    return room


def test_cold_lyngby_nights_routing_cuts_the_comfort_deficit() -> None:
    start = datetime(2016, 1, 14, 12, tzinfo=UTC)
    air = lyngby_january()[start: start + timedelta(hours=72)].to_numpy()
    assert air.max() < 0.0  # three freezing days, as measured
    # A small, well-insulated room (UA = 20 W/K) and a 280 W node running all night.
    heat = HeatConfig(enabled=True, room_r_k_per_w=0.05, room_c_j_per_k=3e6, min_dwell_s=300)
    on = run(heat, "Europe/Amsterdam", start, 72, air, True, 280.0, 16.0).summary()
    off = run(heat, "Europe/Amsterdam", start, 72, air, False, 280.0, 16.0).summary()
    print(f"\nLyngby 14-17 Jan 2016, 280 W node: routing on {on}\n routing off {off}")
    assert on["heat_delivered_wh"] == pytest.approx(280.0 * 72)
    assert off["heat_delivered_wh"] == pytest.approx(280.0 * 72)
    assert off["heat_used_wh"] == 0.0
    assert off["heat_vented_wh"] == pytest.approx(off["heat_delivered_wh"])
    # Heat wanted 18:00-07:00 local (13 h a night): all of it goes to the cold room.
    assert on["heat_used_wh"] == pytest.approx(280.0 * 13 * 3)
    assert on["erf"] == pytest.approx(13 / 24)
    # The node cannot hold 20 °C against -4 °C (it lifts the room ~14 K), but the deficit
    # falls by over a quarter and the coldest moment is ~6 K warmer.
    assert on["comfort_deficit_kh"] < 0.75 * off["comfort_deficit_kh"]
    assert on["room_min_temp_c"] > off["room_min_temp_c"] + 5.0


def test_strong_node_holds_the_band_without_chattering() -> None:
    start = datetime(2016, 1, 9, 12, tzinfo=UTC)
    air = lyngby_january()[start: start + timedelta(hours=48)].to_numpy()
    heat = HeatConfig(enabled=True, room_r_k_per_w=0.05, room_c_j_per_k=3e6, min_dwell_s=300)
    room = run(heat, "Europe/Amsterdam", start, 48, air, True, 600.0, 20.0)
    off = run(heat, "Europe/Amsterdam", start, 48, air, False, 600.0, 20.0).summary()
    s = room.summary()
    # The room cools by day (heat not wanted, vented); at night the node brings it back.
    assert s["comfort_deficit_kh"] < 0.1 * off["comfort_deficit_kh"]
    assert 0.0 < s["heat_used_wh"] < 600.0 * 13 * 2  # part of the heat vented to hold the band
    switches = [e for e in room.events if "damper_pct" in e.data]
    # Dwell-limited: never two route changes within min_dwell_s.
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(switches, switches[1:], strict=False)]
    assert gaps and min(gaps) >= 300
    assert s["room_max_temp_c"] < heat.setpoint_c + heat.band_c + 0.5


def test_warm_tropical_night_vents() -> None:
    start = datetime(2024, 5, 1, 6, tzinfo=UTC)  # 14:00 in Manila
    hours = np.arange(int(24 * 3600 / STEP_S)) * STEP_S / 3600
    air = 28.0 + 2.0 * np.cos(2 * np.pi * (hours - 0) / 24)  # 26-30 °C
    heat = HeatConfig(enabled=True)
    on = run(heat, "Asia/Manila", start, 24, air, True, 250.0, 28.0)
    off = run(heat, "Asia/Manila", start, 24, air, False, 250.0, 28.0)
    s = on.summary()
    assert s["heat_used_wh"] == 0.0 and s["heat_vented_wh"] == s["heat_delivered_wh"]
    assert s["heat_delivered_wh"] == pytest.approx(6000.0)
    assert s["comfort_deficit_kh"] == 0.0 and s["erf"] == 0.0
    assert s["room_max_temp_c"] == off.summary()["room_max_temp_c"]
    assert not [e for e in on.events if e.severity is Severity.WARNING]
