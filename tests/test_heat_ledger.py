"""Heat accounting on a hand-checkable night."""

from __future__ import annotations

import pytest

from appliance.heat.ledger import HeatLedger


def test_hand_checked_figures() -> None:
    led = HeatLedger(comfort_floor_c=19.0)
    # 1 h at 200 W, not wanted, vented: 200 Wh delivered and vented.
    led.record(3600, 200.0, 0.0, False, 17.0)
    # 2 h at 300 W, wanted, all to the room, room at 18 °C (1 K below the floor): 600 Wh used,
    # deficit 2 K·h.
    led.record(7200, 300.0, 100.0, True, 18.0)
    # 30 min at 400 W, wanted, half to the room, room 18.5 -> 19.5 °C: 100 Wh used, 100 Wh
    # vented, deficit by trapezoid (0.5 + 0) / 2 K * 0.5 h = 0.125 K·h.
    led.record(1800, 400.0, 50.0, True, 18.5, 19.5)
    # 1 h at 100 W, wanted, room sensor unknown: 100 Wh used, no deficit, 1 h unmeasured.
    led.record(3600, 100.0, 100.0, True, None)
    # 1 h at 100 W to the room while heat is not wanted: reaches the room, is not "used".
    led.record(3600, 100.0, 100.0, False, 22.0)
    assert led.heat_delivered_wh == pytest.approx(200 + 600 + 200 + 100 + 100)
    assert led.it_energy_wh == led.heat_delivered_wh
    assert led.heat_used_wh == pytest.approx(600 + 100 + 100)
    assert led.heat_to_room_wh == pytest.approx(600 + 100 + 100 + 100)
    assert led.heat_vented_wh == pytest.approx(200 + 100)
    assert led.comfort_deficit_kh == pytest.approx(2.125)
    assert led.erf == pytest.approx(800 / 1200)
    assert led.wanted_s == 3.5 * 3600 and led.unmeasured_wanted_s == 3600
    out = led.as_dict()
    assert {"heat_delivered_wh", "heat_used_wh", "heat_vented_wh", "comfort_deficit_kh",
            "erf"} <= set(out)
    assert HeatLedger.from_dict(out) == led


def test_no_energy_means_zero_erf_and_bad_input_is_refused() -> None:
    led = HeatLedger(comfort_floor_c=19.0)
    assert led.erf == 0.0
    with pytest.raises(ValueError, match="damper_pct"):
        led.record(60, 100.0, 120.0, True, 20.0)
    with pytest.raises(ValueError, match="compute_power_w"):
        led.record(60, -5.0, 100.0, True, 20.0)
    with pytest.raises(ValueError, match="dt_s"):
        led.record(float("nan"), 5.0, 100.0, True, 20.0)
    assert led.elapsed_s == 0.0  # nothing half-recorded
