"""Rolling horizon: when to re-plan and with which solver; adopting an admission's plan."""

from __future__ import annotations

from datetime import timedelta

from appliance.energy.admission import AdmissionContext, decide
from appliance.energy.rolling import RollingPlanner
from appliance.state import JobState
from tests.conftest import make_config
from tests.test_planner_lp import LOCAL_MIDNIGHT, deferrable, sunny_forecast


def test_replans_on_jobs_time_and_deviation_and_follows_the_plan_between() -> None:
    config = make_config(planner={"replan_min": 60.0, "lp_interval_min": 30.0})
    now = LOCAL_MIDNIGHT + timedelta(hours=6)
    fc = sunny_forecast(LOCAL_MIDNIGHT)
    jobs = [deferrable("a", 500.0, now + timedelta(hours=10))]
    rp = RollingPlanner(config)
    assert rp.due(now, 60.0, jobs) == ("first plan", "auto")
    rp.replan(now, fc, 60.0, jobs)
    assert rp.lp_calls == 1 and rp.plan is not None and rp.plan.solver == "milp"
    t = now + timedelta(minutes=20)
    k = rp.plan.slot_index(t)
    assert k is not None
    on_plan = float(rp.plan.soc_pct[k - 1] if k > 0 else rp.plan.soc_pct[0])
    assert rp.due(t, on_plan, jobs) is None  # on plan: follow it
    assert rp.due(t, on_plan - 20.0, jobs) is None  # off plan, but the last LP is 20 min old
    reason = rp.due(now + timedelta(minutes=31), on_plan - 20.0, jobs)
    assert reason is not None and reason[0].startswith("SoC ") and reason[1] == "auto"
    more = [*jobs, deferrable("b", 100.0, now + timedelta(hours=12))]
    assert rp.due(t, on_plan, more) == ("jobs changed", "auto")
    assert rp.due(t, on_plan, []) is None  # work that ended leaves the plan valid
    later = now + timedelta(minutes=60)
    k = rp.plan.slot_index(later)
    assert k is not None
    assert rp.due(later, float(rp.plan.soc_pct[k - 1]), jobs) == ("periodic re-plan", "auto")
    rp.replan(later, fc, 60.0, jobs, solver="greedy")  # a fallback plan is counted as such
    assert rp.greedy_calls == 1 and rp.plan.solver == "greedy"


def test_admission_plan_is_adopted_so_an_arrival_costs_one_solve() -> None:
    config = make_config()
    now = LOCAL_MIDNIGHT + timedelta(hours=6)
    fc = sunny_forecast(LOCAL_MIDNIGHT)
    admitted = [deferrable("a", 500.0, now + timedelta(hours=10))]
    rp = RollingPlanner(config)
    rp.replan(now, fc, 60.0, admitted)
    new = deferrable("b", 300.0, now + timedelta(hours=8), state=JobState.PENDING)
    d = decide(
        AdmissionContext(now=now, forecast=fc, soc_pct=60.0, admitted=admitted, config=config), new
    )
    assert d.admitted and d.outcome is not None
    new.state = JobState.ADMITTED
    rp.adopt(d.outcome, now, [*admitted, new])
    assert rp.due(now + timedelta(minutes=1), float(rp.plan.soc_pct[0]), [*admitted, new]) is None  # type: ignore[union-attr]
    assert set(rp.plan.job_power_w) == {"a", "b"}  # type: ignore[union-attr]
