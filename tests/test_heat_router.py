"""Heat router: hysteresis, dwell, schedule, overheat, stale-sensor fallback, modulating damper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.config import HeatConfig
from appliance.heat.router import HeatRouter
from appliance.state import Channel, EventKind, Reading, Severity

NIGHT = datetime(2024, 1, 15, 20, 0, tzinfo=UTC)  # 23:00 in Nairobi: heat wanted


def router(**heat: object) -> HeatRouter:
    values: dict[str, object] = {"enabled": True, "min_dwell_s": 300.0,
                                 "sensor_stale_after_s": 120.0}
    values.update(heat)
    return HeatRouter.from_config(HeatConfig.model_validate(values), "Africa/Nairobi")


def room(temp_c: float | None, at: datetime) -> Reading:
    return Reading(value=temp_c, at=at, stale_after_s=15.0, source="room")


def test_hysteresis_band_and_minimum_dwell() -> None:
    r = router()  # setpoint 20, band 1 -> room at <= 19.5, vent at >= 20.5
    t = NIGHT
    d = r.decide(t, room(19.0, t), 5.0, 250.0)
    assert (d.damper_pct, d.route) == (100.0, "room") and "heat to room" in d.reason
    assert [e.kind for e in d.events] == [EventKind.HEAT]
    # Inside the band: hold, no event.
    t += timedelta(seconds=600)
    d = r.decide(t, room(20.2, t), 5.0, 250.0)
    assert d.damper_pct == 100.0 and "hold room" in d.reason and d.events == ()
    # Above the band: vent.
    t += timedelta(seconds=600)
    d = r.decide(t, room(20.6, t), 5.0, 250.0)
    assert d.damper_pct == 0.0 and d.route == "vent" and len(d.events) == 1
    # Falling back inside the band holds vent; below it, the dwell still defers the flip...
    t += timedelta(seconds=60)
    d = r.decide(t, room(20.0, t), 5.0, 250.0)
    assert d.damper_pct == 0.0 and "hold vent" in d.reason
    t += timedelta(seconds=60)
    d = r.decide(t, room(19.4, t), 5.0, 250.0)
    assert d.damper_pct == 0.0 and "minimum dwell, 180 s left" in d.reason
    # ... until min_dwell_s has passed since the last change.
    t += timedelta(seconds=180)
    d = r.decide(t, room(19.4, t), 5.0, 250.0)
    assert d.damper_pct == 100.0
    req = d.write_request("damper")
    assert (req.device, req.point, req.value) == ("damper", Channel.DAMPER_PCT.value, 100.0)


def test_overheat_and_end_of_schedule_vent_at_once_despite_dwell() -> None:
    r = router(min_dwell_s=3600.0)
    t = NIGHT
    assert r.decide(t, room(19.0, t), 5.0, 250.0).damper_pct == 100.0
    t += timedelta(seconds=60)
    d = r.decide(t, room(21.0, t), 5.0, 250.0)  # setpoint + band
    assert d.damper_pct == 0.0 and "setpoint + band" in d.reason
    r2 = router(min_dwell_s=3600.0)
    morning = datetime(2024, 1, 16, 3, 58, tzinfo=UTC)  # 06:58 Nairobi
    assert r2.decide(morning, room(19.0, morning), 5.0, 250.0).damper_pct == 100.0
    later = morning + timedelta(minutes=2)  # 07:00: heat no longer wanted
    d = r2.decide(later, room(19.0, later), 5.0, 250.0)
    assert d.damper_pct == 0.0 and not d.wanted and "not wanted at 07:00 local" in d.reason


def test_stale_or_missing_sensor_vents_and_raises_one_event_then_recovers() -> None:
    r = router()
    t = NIGHT
    assert r.decide(t, room(18.0, t), 5.0, 250.0).damper_pct == 100.0
    old = room(18.0, t)  # the sensor stops updating
    t += timedelta(seconds=121)
    d = r.decide(t, old, 5.0, 250.0)
    assert d.damper_pct == 0.0 and "safe default" in d.reason and d.room_temp_c is None
    warnings = [e for e in d.events if e.severity is Severity.WARNING]
    assert len(warnings) == 1 and warnings[0].kind is EventKind.HEAT
    assert "stale (121 s old > 120 s)" in warnings[0].message and warnings[0].data["age_s"] == 121.0
    # Still stale: still vent, no new warning.
    t += timedelta(seconds=10)
    d = r.decide(t, old, 5.0, 250.0)
    assert d.damper_pct == 0.0 and not [e for e in d.events if e.severity is Severity.WARNING]
    d = r.decide(t, None, 5.0, 250.0)
    assert d.damper_pct == 0.0 and "has no value" in d.reason
    # Fresh again: an INFO event and routing resumes immediately (the fallback had no dwell).
    t += timedelta(seconds=10)
    d = r.decide(t, room(18.0, t), 5.0, 250.0)
    assert d.damper_pct == 100.0
    assert any("fresh again" in e.message for e in d.events)


def test_disabled_vents() -> None:
    r = router(enabled=False)
    d = r.decide(NIGHT, room(10.0, NIGHT), 0.0, 250.0)
    assert d.damper_pct == 0.0 and "disabled" in d.reason


def test_modulating_damper_sends_the_share_the_room_needs() -> None:
    heat = {"damper_modulating": True, "room_r_k_per_w": 0.01, "room_c_j_per_k": 8e6}
    r = router(**heat)
    t = NIGHT
    # Room at setpoint, 10 °C outside: holding needs (20 - 10) / R = 1000 W > 250 W -> 100 %.
    assert r.decide(t, room(20.0, t), 10.0, 250.0).damper_pct == 100.0
    # Mild night, 18 °C outside: holding 20 °C needs 200 W of the 400 W -> 50 %.
    r = router(**heat)
    d = r.decide(t, room(20.0, t), 18.0, 400.0)
    assert d.damper_pct == pytest.approx(50.0, abs=0.1) and d.route == "mixed"
    # A small change (< 5 %) is not sent; a large one is.
    t += timedelta(seconds=10)
    assert r.decide(t, room(20.0, t), 18.1, 400.0).damper_pct == d.damper_pct
    t += timedelta(seconds=10)
    assert r.decide(t, room(20.0, t), 19.0, 400.0).damper_pct == pytest.approx(25.0, abs=0.1)
    # Without an outdoor temperature: proportional across the band (19.5..20.5 -> 100..0 %).
    r = router(**heat)
    assert r.decide(t, room(20.25, t), None, 400.0).damper_pct == pytest.approx(25.0)
