"""The running-energy calibration: the planner's P10 and P50 are moved to the levels at which the
box's own measurements fell under them one time in ten and one in two."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import appliance.energy.problem as problem_module
from appliance.energy.admission import AdmissionContext, decide
from appliance.energy.planner import plan_detailed
from appliance.energy.problem import build_problem
from appliance.energy.running_calibration import HORIZONS_H, RunningCalibration, for_config
from appliance.energy.uncertainty import cumulative_quantile_w, planning_pv_w
from appliance.solar.forecaster import Forecaster
from appliance.state import Job, JobKind, JobState, PowerForecast
from tests.conftest import make_config
from tests.test_planner_lp import LOCAL_MIDNIGHT, deferrable, sunny_forecast

START = datetime(2024, 3, 1, tzinfo=UTC)
STEP_S = 900
SLOTS = 192  # 48 h
P10_W, P50_W, P90_W = 300.0, 500.0, 700.0


def _flat_forecast(issued: datetime) -> PowerForecast:
    """The same uncertain sun in every slot (no night: every horizon can be scored)."""
    start = issued - timedelta(seconds=issued.timestamp() % STEP_S)
    return PowerForecast(issued_at=issued, start=start, step_s=STEP_S, p10_w=np.full(SLOTS, P10_W),
                         p50_w=np.full(SLOTS, P50_W), p90_w=np.full(SLOTS, P90_W))


def _calibration() -> RunningCalibration:
    return RunningCalibration(half_life_days=60.0, day_correlation=0.4, day_share=0.8, lon_deg=0.0)


def _at_horizons(cal: RunningCalibration, quantile: str) -> np.ndarray:
    """The level a flat forecast gets at each scored horizon."""
    levels = cal.levels_for(_flat_forecast(START + timedelta(days=30, minutes=1))).get(quantile)
    if levels is None:
        return np.full(len(HORIZONS_H), 0.1 if quantile == "p10" else 0.5)
    return levels[(np.asarray(HORIZONS_H) * 4).astype(int) - 1]


def _run(cal: RunningCalibration, measured_w: float, days: int, censored: bool = False) -> None:
    """Hourly forecasts, and the measured power slot by slot."""
    for k in range(days * 96):
        t = START + timedelta(seconds=k * STEP_S)
        if k % 4 == 0:
            cal.issue(_flat_forecast(t + timedelta(minutes=1)))
        cal.record(np.array([t.timestamp()]), np.array([measured_w]), np.array([censored]), STEP_S)


def test_a_forecast_too_cautious_for_the_site_has_its_p10_raised_and_a_bold_one_lowered() -> None:
    # the sun comes at its median every time: nothing falls under the P10 (nor under P40)
    sunny = _calibration()
    _run(sunny, P50_W, days=14)
    assert sunny.scores.min() >= 240  # every horizon scored (48 h ones since day 2)
    # up to the cap (3 x nominal) where a spread class has its warm-up; well up everywhere
    levels = _at_horizons(sunny, "p10")
    assert levels.max() == pytest.approx(0.3) and levels.min() >= 0.2
    # the median stays near the median (200 scenarios: a count off by a few is a level off by 0.03)
    assert np.all(np.abs(_at_horizons(sunny, "p50") - 0.5) <= 0.08)

    # the sun always comes under every slot's P10: the running energy falls under any envelope
    dull = _calibration()
    _run(dull, 0.8 * P10_W, days=14)
    low10, low50 = _at_horizons(dull, "p10"), _at_horizons(dull, "p50")
    assert low10.min() == pytest.approx(0.1 / 3) and low10.max() <= 0.08  # floor: nominal / 3
    assert low50.min() == pytest.approx(0.5 / 3) and low50.max() <= 0.4

    # the forecast carries the level per slot, and the planner reads the scenarios there
    fc = _flat_forecast(START + timedelta(days=14, minutes=1))
    bold = PowerForecast(**{**fc.__dict__, "running_levels": sunny.levels_for(fc)})
    timid = PowerForecast(**{**fc.__dict__, "running_levels": dull.levels_for(fc)})
    kw = {"day_correlation": 0.4, "day_share": 0.8, "lon_deg": 0.0}
    nominal = planning_pv_w(fc, "p10", **kw).sum()
    assert planning_pv_w(bold, "p10", **kw).sum() > 1.05 * nominal
    assert planning_pv_w(timid, "p10", **kw).sum() < 0.95 * nominal


def test_a_curtailed_shortfall_is_no_evidence_and_early_scores_move_the_level_only_partly() -> None:
    # measured under the P10 but curtailed every time: the sky may have offered more
    cut = _calibration()
    _run(cut, 0.8 * P10_W, days=6, censored=True)
    assert cut.scores.min() > 0
    np.testing.assert_allclose(_at_horizons(cut, "p10"), 0.1)  # never lowered without evidence

    # two days of a too-cautious forecast: the 3 h level has ~190 scores of the 240 warm-up
    young = _calibration()
    _run(young, P50_W, days=2)
    lv = _at_horizons(young, "p10")
    assert young.scores[0] < 240
    assert 0.1 < lv[0] < 0.3
    assert lv[-1] == pytest.approx(0.1, abs=0.02)  # the 48 h horizon has barely been scored


def test_a_gap_in_the_measurements_is_not_scored() -> None:
    cal = _calibration()
    for k in range(3 * 96):
        t = START + timedelta(seconds=k * STEP_S)
        if k % 4 == 0:
            cal.issue(_flat_forecast(t + timedelta(minutes=1)))
        if k % 96 == 50:
            continue  # one missing slot a day
        cal.record(np.array([t.timestamp()]), np.array([P50_W]), None, STEP_S)
    # 3 h stretches: 12 of each day's 24 issues cover no gap; 48 h stretches all do
    scores = cal.scores
    assert 0 < scores[0] <= 2 * 3 * 24 - 3 * 4
    assert scores[HORIZONS_H.index(48.0)] == 0


def test_per_slot_levels_equal_to_the_nominal_level_change_nothing() -> None:
    fc = _flat_forecast(START)
    kw = {"day_correlation": 0.4, "day_share": 0.8, "lon_deg": 0.0}
    np.testing.assert_array_equal(cumulative_quantile_w(fc, np.full(SLOTS, 0.1), **kw),
                                  cumulative_quantile_w(fc, 0.1, **kw))


def test_the_forecaster_keeps_what_it_learned_across_a_restart() -> None:
    config = make_config(array={"dc_kw": 3.0, "inverter_ac_kw": 4.0}, forecast={"running_calibration": True})
    fc = Forecaster(config, calibration=for_config(config))
    assert fc.running is not None
    _run(fc.running, P50_W, days=3)
    state = fc.to_state()
    again = Forecaster.from_state(config, state, calibration=for_config(config))
    assert again.restore_note == "restored" and again.running is not None
    np.testing.assert_allclose(again.running.under, fc.running.under, atol=1e-6)
    np.testing.assert_array_equal(again.running.scores, fc.running.scores)
    old = {k: v for k, v in state.items() if k != "running"}  # saved before this existed
    fresh = Forecaster.from_state(config, old, calibration=for_config(config)).running
    assert isinstance(fresh, RunningCalibration) and fresh.scores.sum() == 0
    broken = {**state, "running": {**state["running"], "scores": [-1] * len(HORIZONS_H)}}
    assert "unreadable" in Forecaster.from_state(config, broken, calibration=for_config(config)).restore_note
    # a forecast from a forecaster with scores carries the calibrated levels
    out = again.forecast(START + timedelta(days=3, hours=12), hours=48, step_min=15)
    assert set(out.running_levels) == {"p10", "p50"}
    assert out.running_levels["p10"][0] > 0.1
    off = make_config(array={"dc_kw": 3.0, "inverter_ac_kw": 4.0}, forecast={"running_calibration": False})
    assert for_config(off) is None
    assert Forecaster.from_state(off, state).forecast(START, hours=48, step_min=15).running_levels == {}


# --------------------------------------------------------------------------- in the planner

def _share() -> Job:
    return Job(id="share", name="share", kind=JobKind.CRITICAL, power_w=40.0, energy_wh=None,
               deadline=None, state=JobState.RUNNING)


def test_a_record_that_proved_p10_too_cautious_lets_the_box_promise_more() -> None:
    config = make_config()
    now = LOCAL_MIDNIGHT + timedelta(hours=16)
    fc = sunny_forecast(now, peak_w=1500.0, p10=0.35)
    bolder = replace(fc, running_levels={"p10": np.full(len(fc), 0.3)})
    job = deferrable("j", 4000.0, now + timedelta(hours=26), state=JobState.PENDING)
    answers = {}
    for name, forecast in (("nominal", fc), ("calibrated", bolder)):
        ctx = AdmissionContext(now=now, forecast=forecast, soc_pct=60.0, admitted=[_share()], config=config)
        answers[name] = decide(ctx, job, explain=False)
    assert answers["nominal"].admitted and answers["nominal"].best_effort
    assert "at P10 the box can give 3600 Wh" in answers["nominal"].reason
    assert answers["calibrated"].admitted and not answers["calibrated"].best_effort


def test_the_essentials_night_is_still_guarded_on_the_nominal_sun(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evening, battery at 42 %: on the nominal P10 the file share's night runs under the
    reserve, so no job may run then, however bold the calibrated sun is."""
    config = make_config()
    now = LOCAL_MIDNIGHT + timedelta(hours=16)
    fc = sunny_forecast(now, peak_w=600.0, p10=0.35)
    bolder = replace(fc, running_levels={"p10": np.full(len(fc), 0.3)})
    jobs = [_share(), deferrable("j", 1200.0, now + timedelta(hours=44))]
    nominal = build_problem(now, fc, 42.0, jobs, config)
    calibrated = build_problem(now, bolder, 42.0, jobs, config)
    assert calibrated.pv_w.sum() > 1.1 * nominal.pv_w.sum()
    night = ~np.isnan(nominal.dip_wh)
    assert night.sum() >= 40  # ten hours and more belong to the essentials on the nominal sun
    np.testing.assert_array_equal(~np.isnan(calibrated.dip_wh), night)

    def in_the_night_wh() -> float:
        x = plan_detailed(now, bolder, 42.0, jobs, config).plan.job_power_w["j"]
        return float(x[night].sum() * 0.25)

    assert in_the_night_wh() == pytest.approx(0.0, abs=1.0)
    # without the guard the calibrated plan would spend the job's whole energy in that night
    monkeypatch.setattr(problem_module, "_guard_path",
                        lambda *a: (a[6].soc_wh, a[6].unserved_w))
    assert in_the_night_wh() > 500.0


def test_measured_slots_finer_than_the_plans_are_scored_too() -> None:
    cal = _calibration()
    for k in range(2 * 288):  # two days of 5-minute measurements, 15-minute forecasts
        t = START + timedelta(seconds=k * 300)
        if k % 12 == 0:
            cal.issue(_flat_forecast(t + timedelta(minutes=1)))
        cal.record(np.array([t.timestamp()]), np.array([P50_W]), None, 300.0)
    assert cal.scores[HORIZONS_H.index(3.0)] >= 40
    assert cal.scores[HORIZONS_H.index(24.0)] >= 20
