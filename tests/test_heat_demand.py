"""Planner hook: heat demand per slot on a cold night, a warm night, and what it is worth."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from appliance.config import HeatConfig
from appliance.heat.demand import heat_demand, site_heat_demand
from appliance.heat.room import Room2R2CModel, RoomModel
from appliance.heat.schedule import ComfortSchedule

START = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)  # 15:00 Nairobi; 48 slots of 30 min = 24 h
STEP = 1800
HEAT = HeatConfig(enabled=True, heat_value_per_kwh=0.4)
SCHED = ComfortSchedule.from_config(HEAT, "Africa/Nairobi")


def test_cold_night_large_demand_warm_night_none() -> None:
    model = RoomModel(0.01, 8e6)
    cold = heat_demand(START, STEP, np.full(48, 6.0), 19.0, SCHED, model, value_per_kwh=0.4)
    warm = heat_demand(START, STEP, np.full(48, 25.0), 24.0, SCHED, model, value_per_kwh=0.4)
    # Wanted 18:00-07:00 local = slots 6..31.
    assert np.flatnonzero(cold.wanted).tolist() == list(range(6, 32))
    assert np.all(cold.demand_w[~cold.wanted] == 0.0)
    # Holding 20 °C against 6 °C through R = 0.01 K/W takes (20 - 6) / 0.01 = 1400 W.
    assert cold.demand_w[20] == pytest.approx(1400.0, rel=1e-6)
    assert cold.demand_w[6] > 1400.0  # first slot also lifts the room that cooled since 15:00
    assert np.allclose(cold.room_temp_c[6:32], 20.0)
    assert float(warm.demand_w.sum()) == 0.0
    # Capped by what the node can give.
    capped = heat_demand(START, STEP, np.full(48, 6.0), 19.0, SCHED, model, value_per_kwh=0.4,
                         max_heat_w=300.0)
    assert capped.demand_w.max() == 300.0 and capped.room_temp_c[31] < 19.0
    # Value: 300 W in every slot is worth its useful part only.
    heat = np.full(48, 300.0)
    assert capped.value_of(heat) == pytest.approx(26 * 300 * 0.5 / 1000 * 0.4)
    assert warm.value_of(heat) == 0.0
    assert cold.demand_wh[20] == pytest.approx(700.0, rel=1e-6)


def test_demand_grows_with_cold_and_works_for_2r2c_and_solar() -> None:
    two = Room2R2CModel(0.018, 2.5e6, 0.003, 1.6e7, solar_aperture_m2=2.0)
    totals = [float(heat_demand(START, STEP, np.full(48, t), 19.0, SCHED, two,
                                value_per_kwh=0.4).demand_w.sum()) for t in (0.0, 8.0, 16.0)]
    assert totals[0] > totals[1] > totals[2] > 0.0
    sunny = heat_demand(START, STEP, np.full(48, 16.0), 19.0, SCHED, two, value_per_kwh=0.4,
                        solar_w_m2=np.full(48, 200.0))
    assert float(sunny.demand_w.sum()) < totals[2]


def test_site_helper_and_input_checks() -> None:
    off = site_heat_demand(HeatConfig(enabled=False), "Africa/Nairobi", START, STEP,
                           np.full(8, 0.0), 15.0)
    assert float(off.demand_w.sum()) == 0.0 and len(off) == 8
    on = site_heat_demand(HEAT, "Africa/Nairobi", START, STEP, np.full(48, 6.0), 19.0,
                          max_heat_w=300.0)
    assert on.value_per_wh == pytest.approx(0.0004) and on.demand_w.max() == 300.0
    with pytest.raises(ValueError, match="missing values"):
        heat_demand(START, STEP, [5.0, float("nan")], 19.0, SCHED, RoomModel(0.01, 8e6),
                    value_per_kwh=0.4)


@pytest.mark.parametrize("model", [RoomModel(0.01, 8e6), Room2R2CModel(0.018, 2.5e6, 0.003, 1.6e7, 2.0)])
def test_demand_is_the_room_models_own_step_and_heat_to_reach(model: RoomModel | Room2R2CModel) -> None:
    """The horizon loop (plain floats, for speed) computes exactly what the room model's
    matrix functions give, slot by slot, for both room models and with solar gain."""
    from appliance.heat.room import heat_to_reach, step_state

    outdoor = 4.0 + 6.0 * np.sin(np.arange(48) / 8.0)
    solar = np.clip(300.0 * np.cos(np.arange(48) / 6.0), 0.0, None)
    got = heat_demand(START, STEP, outdoor, 18.5, SCHED, model, value_per_kwh=0.4,
                      max_heat_w=900.0, solar_w_m2=solar)
    state = model.initial_state(18.5, float(outdoor[0]))
    for i in range(48):
        q = 0.0
        if got.wanted[i]:
            q = min(900.0, max(0.0, heat_to_reach(model, state, SCHED.setpoint_c, outdoor[i], STEP, solar[i])))
        state = step_state(model, state, outdoor[i], q, STEP, solar[i])
        assert got.demand_w[i] == pytest.approx(q, rel=1e-9, abs=1e-9)
        assert got.room_temp_c[i] == pytest.approx(float(state[0]), abs=1e-9)
    assert got.demand_w.max() > 0.0
