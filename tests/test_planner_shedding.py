"""Shedding rules and the threshold baseline: pure functions on hand-made plans and jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from appliance.energy.shedding import ControlView, ShedRules
from appliance.energy.threshold import ThresholdGate
from appliance.state import Job, JobCommand, JobKind, JobState, Plan
from tests.conftest import make_config

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
CONFIG = make_config(planner={"min_on_s": 300.0, "min_off_s": 300.0, "resume_margin_pct": 5.0})


def job(
    job_id: str,
    kind: JobKind,
    state: JobState = JobState.RUNNING,
    power_w: float = 100.0,
    energy_wh: float | None = 400.0,
    deadline_h: float | None = 12.0,
    value: float = 1.0,
    cap_w: float | None = None,
) -> Job:
    return Job(
        id=job_id,
        name=job_id,
        kind=kind,
        power_w=power_w,
        energy_wh=None if kind is JobKind.CRITICAL else energy_wh,
        deadline=None
        if deadline_h is None or kind is not JobKind.DEFERRABLE
        else T0 + timedelta(hours=deadline_h),
        value=value,
        state=state,
        started_at=T0 - timedelta(hours=1) if state is not JobState.ADMITTED else None,
        cap_w=cap_w,
    )


def flat_plan(jobs: dict[str, float], pv_w: float = 1000.0, soc_pct: float = 60.0) -> Plan:
    n = 8
    return Plan(
        created_at=T0,
        start=T0,
        step_s=900,
        soc_pct=np.full(n, soc_pct),
        pv_w=np.full(n, pv_w),
        charge_w=np.zeros(n),
        discharge_w=np.zeros(n),
        curtail_w=np.zeros(n),
        job_power_w={k: np.full(n, v) for k, v in jobs.items()},
    )


def by_id(cmds: list[JobCommand]) -> dict[str, JobCommand]:
    return {c.job_id: c for c in cmds}


def apply(jobs: list[Job], cmds: list[JobCommand]) -> list[Job]:
    """What the runner would record."""
    got = by_id(cmds)
    out = []
    for j in jobs:
        c = got.get(j.id)
        if c is None:
            out.append(j)
        elif c.action in ("start", "resume"):
            out.append(
                Job(
                    **{
                        **j.__dict__,
                        "state": JobState.RUNNING,
                        "cap_w": c.cap_w,
                        "started_at": j.started_at or T0,
                    }
                )
            )
        elif c.action == "suspend":
            out.append(Job(**{**j.__dict__, "state": JobState.SUSPENDED}))
        else:
            out.append(Job(**{**j.__dict__, "cap_w": c.cap_w}))
    return out


def test_reserve_suspends_all_but_critical_and_resumes_with_hysteresis() -> None:
    rules = ShedRules(CONFIG)
    jobs = [
        job("c", JobKind.CRITICAL, power_w=20.0),
        job("d", JobKind.DEFERRABLE),
        job("s", JobKind.SPONGE),
    ]
    plan = flat_plan({"d": 100.0, "s": 100.0})
    cmds = rules.decide(ControlView(T0, soc_pct=30.0), jobs, plan)
    got = by_id(cmds)
    assert set(got) == {"d", "s"} and all(c.action == "suspend" for c in cmds)
    assert got["d"].reason.startswith("battery at reserve (30 % ≤ 30 %)")
    jobs = apply(jobs, cmds)
    # 33 %: above the reserve but inside the hysteresis band: still waiting
    t = T0 + timedelta(minutes=10)
    assert rules.decide(ControlView(t, soc_pct=33.0), jobs, plan) == []
    # 35 %: resumes (min off time of 5 min has passed)
    cmds = rules.decide(ControlView(t, soc_pct=35.0), jobs, plan)
    assert {c.job_id: c.action for c in cmds} == {"d": "resume", "s": "resume"}


def test_safety_overrides_min_on_time_but_plan_changes_do_not() -> None:
    rules = ShedRules(CONFIG)
    jobs = [job("d", JobKind.DEFERRABLE, state=JobState.ADMITTED)]
    cmds = rules.decide(ControlView(T0, soc_pct=60.0), jobs, flat_plan({"d": 100.0}))
    assert [c.action for c in cmds] == ["start"]
    jobs = apply(jobs, cmds)
    off_plan = flat_plan({"d": 0.0})
    # one minute later the plan says off: held on (min on time 300 s)
    assert rules.decide(ControlView(T0 + timedelta(minutes=1), soc_pct=60.0), jobs, off_plan) == []
    # ... but the reserve acts at once
    cmds = rules.decide(ControlView(T0 + timedelta(minutes=1), soc_pct=29.0), jobs, off_plan)
    assert [c.action for c in cmds] == ["suspend"]


def test_no_flapping_under_an_oscillating_plan() -> None:
    rules = ShedRules(CONFIG)
    jobs = [job("d", JobKind.DEFERRABLE, state=JobState.ADMITTED)]
    switches = 0
    for i in range(120):  # 20 minutes, every 10 s, plan flips each call
        plan = flat_plan({"d": 100.0 if i % 2 == 0 else 0.0})
        cmds = rules.decide(ControlView(T0 + timedelta(seconds=10 * i), soc_pct=60.0), jobs, plan)
        switches += sum(1 for c in cmds if c.action in ("start", "resume", "suspend"))
        jobs = apply(jobs, cmds)
    assert switches <= 20 * 60 / 300 + 1


def test_plan_power_below_full_becomes_a_cap_with_a_dead_band() -> None:
    rules = ShedRules(CONFIG)
    jobs = [job("d", JobKind.DEFERRABLE, state=JobState.ADMITTED, power_w=200.0)]
    cmds = rules.decide(ControlView(T0, soc_pct=60.0), jobs, flat_plan({"d": 150.0}))
    assert cmds[0].action == "start" and cmds[0].cap_w == 150.0
    jobs = apply(jobs, cmds)
    assert (
        rules.decide(ControlView(T0, soc_pct=60.0), jobs, flat_plan({"d": 155.0})) == []
    )  # < 10 W step
    cmds = rules.decide(ControlView(T0, soc_pct=60.0), jobs, flat_plan({"d": 200.0}))
    assert cmds[0].action == "cap" and cmds[0].cap_w is None


def test_less_sun_cuts_sponges_first_then_the_deferrable_with_most_slack() -> None:
    rules = ShedRules(CONFIG)
    jobs = [
        job(
            "urgent", JobKind.DEFERRABLE, power_w=50.0, energy_wh=195.0, deadline_h=4.0
        ),  # slack 0.1 h
        job("relaxed", JobKind.DEFERRABLE, power_w=50.0, energy_wh=50.0, deadline_h=20.0),
        job("tight", JobKind.DEFERRABLE, power_w=50.0, energy_wh=150.0, deadline_h=6.0),
        job("s_low", JobKind.SPONGE, power_w=50.0, value=0.5),
        job("s_high", JobKind.SPONGE, power_w=50.0, value=2.0),
    ]
    plan = flat_plan({j.id: 50.0 for j in jobs}, pv_w=1000.0, soc_pct=60.0)
    # 120 W less sun than planned and the battery is behind the plan: cut 120 W
    cmds = rules.decide(
        ControlView(T0 + timedelta(minutes=20), soc_pct=55.0, pv_w=880.0), jobs, plan
    )
    got = by_id(cmds)
    assert got["s_low"].action == "suspend" and got["s_high"].action == "suspend"
    assert got["relaxed"].action == "cap" and got["relaxed"].cap_w == 30.0
    assert "less sun than planned (120 W short)" in got["relaxed"].reason
    assert "tight" not in got and "urgent" not in got
    # the battery is ahead of the plan: no cuts (the plan's P10 margin covers it)
    assert (
        rules.decide(ControlView(T0 + timedelta(minutes=20), soc_pct=65.0, pv_w=750.0), jobs, plan)
        == []
    )


def test_more_sun_goes_to_deadline_work_then_sponges_and_a_full_battery_runs_work_early() -> None:
    rules = ShedRules(CONFIG)
    jobs = [
        job("s", JobKind.SPONGE, power_w=200.0, state=JobState.RUNNING, cap_w=50.0),
        job("d", JobKind.DEFERRABLE, state=JobState.ADMITTED),
    ]
    plan = flat_plan({"s": 50.0, "d": 0.0}, pv_w=600.0)
    # more sun than planned, but the battery still takes it: it goes there first
    assert (
        rules.decide(ControlView(T0, soc_pct=60.0, pv_w=700.0, battery_power_w=1200.0), jobs, plan)
        == []
    )
    # ... the battery charges at its limit: the extra would be curtailed; work with a deadline
    # takes it before the sponge (what runs now is not needed later)
    cmds = rules.decide(
        ControlView(T0, soc_pct=60.0, pv_w=700.0, battery_power_w=2900.0), jobs, plan
    )
    got = by_id(cmds)
    assert got["d"].action == "start" and got["d"].cap_w is None
    assert "more sun than planned (+100 W)" in got["d"].reason
    assert "s" not in got  # nothing left for the sponge: it keeps its 50 W
    # ... with 200 W more than planned, the sponge gets what the deferrable job leaves
    rules = ShedRules(CONFIG)
    got = by_id(rules.decide(ControlView(T0, soc_pct=60.0, pv_w=800.0, battery_power_w=2900.0), jobs, plan))
    assert got["d"].action == "start" and got["s"].action == "cap" and got["s"].cap_w == 150.0
    rules = ShedRules(CONFIG)
    cmds = rules.decide(ControlView(T0, soc_pct=99.0, pv_w=700.0, battery_power_w=0.0), jobs, plan)
    got = by_id(cmds)
    assert got["d"].action == "start" and "sun that would be lost" in got["d"].reason
    assert got["s"].action == "cap" and got["s"].cap_w == 160.0  # what the node has left


def test_a_full_battery_stays_full_while_the_work_it_started_draws_it_down_a_little() -> None:
    """No suspend/resume every few minutes at the top of the battery: the work a full battery
    starts runs until SoC is 3 points under the full mark (98 %), or the sun is gone."""
    rules = ShedRules(CONFIG)
    jobs = [job("d", JobKind.DEFERRABLE, state=JobState.ADMITTED),
            job("s", JobKind.SPONGE, state=JobState.ADMITTED)]
    plan = flat_plan({"d": 0.0, "s": 0.0}, pv_w=600.0, soc_pct=100.0)  # it expected a full battery
    cmds = rules.decide(ControlView(T0, soc_pct=99.0, pv_w=700.0, battery_power_w=0.0), jobs, plan)
    assert [c.action for c in cmds] == ["start", "start"]
    assert all("sun that would be lost" in c.reason for c in cmds)
    jobs = apply(jobs, cmds)
    # 10 and 20 minutes on (past the minimum on time): a cloud (300 W less sun than planned),
    # the deferrable job draws on the battery; the sponge, whose contract is sun that would be
    # lost, stops as soon as the battery is no longer topped up
    view = ControlView(T0 + timedelta(minutes=10), soc_pct=97.5, pv_w=300.0, battery_power_w=-200.0)
    assert [(c.job_id, c.action) for c in rules.decide(view, jobs, plan)] == [("s", "suspend")]
    jobs = [j for j in jobs if j.id == "d"]
    view = ControlView(T0 + timedelta(minutes=20), soc_pct=95.2, pv_w=300.0, battery_power_w=-200.0)
    assert rules.decide(view, jobs, plan) == []
    view = ControlView(T0 + timedelta(minutes=30), soc_pct=94.9, pv_w=300.0, battery_power_w=-200.0)
    assert [c.action for c in rules.decide(view, jobs, plan)] == ["suspend"]
    # the sun sets on a full battery: the plan decides again at once
    rules = ShedRules(CONFIG)
    plan = flat_plan({"d": 0.0}, pv_w=600.0, soc_pct=100.0)
    jobs = apply(jobs, rules.decide(ControlView(T0, soc_pct=99.0, pv_w=700.0, battery_power_w=0.0), jobs, plan))
    view = ControlView(T0 + timedelta(minutes=10), soc_pct=98.5, pv_w=20.0, battery_power_w=-150.0)
    assert [c.action for c in rules.decide(view, jobs, plan)] == ["suspend"]


def test_node_power_is_shared_by_rank() -> None:
    rules = ShedRules(CONFIG)  # node range 260 W
    jobs = [
        job("a", JobKind.DEFERRABLE, state=JobState.ADMITTED, power_w=150.0, deadline_h=3.0),
        job("b", JobKind.DEFERRABLE, state=JobState.ADMITTED, power_w=150.0, deadline_h=30.0),
        job("c", JobKind.CRITICAL, power_w=20.0),
    ]
    cmds = rules.decide(ControlView(T0, soc_pct=60.0), jobs, flat_plan({"a": 150.0, "b": 150.0}))
    assert [(c.job_id, c.cap_w) for c in cmds] == [("a", None), ("b", 90.0)]  # least slack first


def test_critical_pauses_only_when_the_battery_is_empty() -> None:
    rules = ShedRules(CONFIG)
    crit = [job("c", JobKind.CRITICAL, power_w=20.0)]
    assert rules.decide(ControlView(T0, soc_pct=15.0), crit, None) == []
    cmds = rules.decide(ControlView(T0, soc_pct=10.0), crit, None)
    assert cmds[0].action == "suspend" and cmds[0].reason.startswith("battery empty")
    crit = apply(crit, cmds)
    t = T0 + timedelta(minutes=10)
    assert rules.decide(ControlView(t, soc_pct=12.0), crit, None) == []
    assert [c.action for c in rules.decide(ControlView(t, soc_pct=15.0), crit, None)] == ["resume"]


def test_threshold_gate_runs_everything_above_half_and_stops_at_reserve() -> None:
    gate = ThresholdGate(CONFIG)
    jobs = [
        job("c", JobKind.CRITICAL, state=JobState.ADMITTED, power_w=20.0),
        job("d", JobKind.DEFERRABLE, state=JobState.ADMITTED),
        job("s", JobKind.SPONGE, state=JobState.ADMITTED),
    ]
    cmds = gate.decide(ControlView(T0, soc_pct=45.0), jobs)
    assert [c.job_id for c in cmds] == ["c"]  # below 50 % and never above: wait
    jobs = apply(jobs, cmds)
    cmds = gate.decide(ControlView(T0, soc_pct=51.0), jobs)
    assert {c.job_id for c in cmds} == {"d", "s"}
    jobs = apply(jobs, cmds)
    assert gate.decide(ControlView(T0, soc_pct=35.0), jobs) == []  # on until the reserve
    cmds = gate.decide(ControlView(T0, soc_pct=30.0), jobs)
    assert {c.job_id: c.action for c in cmds} == {"d": "suspend", "s": "suspend"}
    jobs = apply(jobs, cmds)
    assert gate.decide(ControlView(T0, soc_pct=49.0), jobs) == []
    assert len(gate.decide(ControlView(T0, soc_pct=50.5), jobs)) == 2


def test_started_work_near_its_deadline_runs_at_full_power_but_not_under_the_reserve() -> None:
    rules = ShedRules(CONFIG)
    late = job(
        "late", JobKind.DEFERRABLE, power_w=100.0, energy_wh=100.0, deadline_h=70 / 60, cap_w=40.0
    )
    early = job("early", JobKind.DEFERRABLE, power_w=100.0, energy_wh=100.0, deadline_h=3.0)
    plan = flat_plan({"late": 0.0, "early": 0.0})  # slot-grained plan: both wait
    cmds = by_id(
        rules.decide(ControlView(T0 + timedelta(minutes=6), soc_pct=60.0), [late, early], plan)
    )
    assert cmds["late"].action == "cap" and cmds["late"].cap_w is None
    assert cmds["late"].reason == "deadline needs it now"
    assert cmds["early"].action == "suspend"  # 1 h 54 min of slack: it waits for its slot
    cmds = by_id(rules.decide(ControlView(T0 + timedelta(minutes=12), soc_pct=30.0), [late], plan))
    assert cmds["late"].action == "suspend" and cmds["late"].reason.startswith("battery at reserve")


def test_deadline_does_not_force_work_the_plan_gave_up_on_if_the_night_needs_that_energy() -> None:
    """Miami, 1962-03-06 23:45: a promised job 728 Wh short of its 02:25 deadline was forced on
    at 45 % SoC; it ran to the reserve and the file share went dark at 08:00. The plan had
    marked it at risk to keep the essentials up until sunrise. Battery 5 kWh, empty at 10 %,
    plan margin 2 %: the floor for what the night may lose is 12 %."""
    config = make_config(
        battery={"capacity_wh": 5000.0, "soc_min_pct": 10.0, "reserve_pct": 30.0,
                 "efficiency": 0.95},
        planner={"min_on_s": 300.0, "min_off_s": 300.0, "reserve_margin_pct": 2.0},
    )
    # the plan's SoC: down through the night to 13 % at slot 4, sun from slot 5 (up to 60 %),
    # then a second night down to 5 % (beyond the first sunrise: not this draw's business)
    soc = np.array([45.0, 37.0, 29.0, 21.0, 13.0, 35.0, 60.0, 5.0])

    def plan(at_risk: frozenset[str], path: np.ndarray = soc) -> Plan:
        return Plan(
            created_at=T0, start=T0, step_s=900, soc_pct=path, pv_w=np.zeros(8),
            charge_w=np.zeros(8), discharge_w=np.zeros(8), curtail_w=np.zeros(8),
            job_power_w={"late": np.zeros(8)}, at_risk=at_risk,
        )

    # 700 Wh left at 200 W, 3.6 h to go: 6 min of slack
    big = job("late", JobKind.DEFERRABLE, power_w=200.0, energy_wh=700.0, deadline_h=3.6)
    view = ControlView(T0 + timedelta(minutes=1), soc_pct=45.0)
    # 700 Wh from the battery is 700 / 0.9747 / 5000 = 14.4 % of it: 13 - 14.4 < 12
    cmds = by_id(ShedRules(config).decide(view, [big], plan(frozenset({"late"}))))
    assert cmds["late"].action == "suspend" and cmds["late"].reason == "plan: waiting for its slot"
    # 02-04 18:15 in Miami: still sunny, the path rises before it falls; the coming night counts
    afternoon = np.array([40.0, 45.0, 50.0, 30.0, 13.0, 35.0, 60.0, 5.0])
    cmds = by_id(ShedRules(config).decide(view, [big], plan(frozenset({"late"}), afternoon)))
    assert cmds["late"].action == "suspend"
    # the same job, planned to finish (not at risk): the deadline rule still runs it
    assert ShedRules(config).decide(view, [big], plan(frozenset())) == []  # running at full power
    # 40 Wh left at 200 W, 20 min to go: 0.8 % of the battery, 13 - 0.8 = 12.2 >= 12: it runs,
    # although the second night goes to 5 % (the sun in between refills what it takes)
    small = job("late", JobKind.DEFERRABLE, power_w=200.0, energy_wh=40.0, deadline_h=1 / 3)
    assert ShedRules(config).decide(view, [small], plan(frozenset({"late"}))) == []
    # 60 Wh: 1.2 %, 13 - 1.2 = 11.8 < 12: it waits
    mid = job("late", JobKind.DEFERRABLE, power_w=200.0, energy_wh=60.0, deadline_h=25 / 60)
    cmds = by_id(ShedRules(config).decide(view, [mid], plan(frozenset({"late"}))))
    assert cmds["late"].action == "suspend"


def test_a_job_that_cannot_finish_comes_after_sponges_and_is_not_forced_at_its_deadline() -> None:
    """ "late" needs 400 Wh at 250 W in 1 h: it cannot finish even at full power (slack -36 min).
    On a full battery the sun that would be lost goes to the sponge first (its energy counts;
    a job that misses anyway does not), and the deadline rule does not force it on."""
    rules = ShedRules(CONFIG)
    late = job("late", JobKind.DEFERRABLE, state=JobState.SUSPENDED, power_w=250.0, energy_wh=400.0,
               deadline_h=1.0)
    sponge = job("s", JobKind.SPONGE, state=JobState.ADMITTED, power_w=200.0)
    plan = flat_plan({"late": 0.0, "s": 0.0}, pv_w=600.0, soc_pct=100.0)
    got = by_id(rules.decide(ControlView(T0, soc_pct=99.0, pv_w=700.0, battery_power_w=0.0), [late, sponge], plan))
    assert got["s"].action == "start" and "late" not in got  # 60 W left: under 30 % of 250 W
    # at its deadline, half-empty battery: no "deadline needs it now" for work that cannot finish
    rules = ShedRules(CONFIG)
    cmds = rules.decide(ControlView(T0, soc_pct=60.0), [late], flat_plan({"late": 0.0}))
    assert cmds == []
