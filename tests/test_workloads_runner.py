"""Runner + SimulatedExecutor on a virtual clock with a real SQLite store; power model; kv."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from appliance.clock import ManualClock
from appliance.config import ComputeConfig
from appliance.energy.kv import forecast_from_kv, forecast_to_kv, soc_from_snapshot
from appliance.paths import field_data_dir
from appliance.state import EventKind, Job, JobCommand, JobKind, JobState, PowerForecast
from appliance.store import Store
from appliance.workloads.power_model import NodePowerModel, curve_from_specpower
from appliance.workloads.runner import JobRunner
from appliance.workloads.simulated import SimulatedExecutor

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


def make_job(
    job_id: str,
    kind: JobKind = JobKind.DEFERRABLE,
    power_w: float = 100.0,
    energy_wh: float | None = 50.0,
    deadline_h: float = 4.0,
) -> Job:
    return Job(
        id=job_id,
        name=job_id,
        kind=kind,
        power_w=power_w,
        energy_wh=energy_wh,
        deadline=T0 + timedelta(hours=deadline_h) if kind is JobKind.DEFERRABLE else None,
        state=JobState.ADMITTED,
        submitted_at=T0,
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Store, ManualClock, SimulatedExecutor, JobRunner]:
    store = Store(tmp_path / "sunbox.db")
    clock = ManualClock(T0)
    ex = SimulatedExecutor(clock)
    return store, clock, ex, JobRunner(store, ex, clock)


def test_simulated_work_progresses_by_energy_with_caps_and_suspends(setup) -> None:  # type: ignore[no-untyped-def]
    store, clock, ex, runner = setup
    store.jobs.save(make_job("a"))
    runner.apply([JobCommand("a", "start", "plan: 100 W now")])
    clock.advance(900)  # 15 min at 100 W = 25 Wh
    runner.poll()
    assert store.jobs.get("a").energy_used_wh == pytest.approx(25.0)  # type: ignore[union-attr]
    runner.apply([JobCommand("a", "cap", "less sun", cap_w=40.0)])
    assert ex.node_power_w() == 40.0
    clock.advance(900)  # 10 Wh
    runner.apply([JobCommand("a", "suspend", "battery at reserve")])
    clock.advance(3600)  # nothing
    runner.poll()
    job = store.jobs.get("a")
    assert (
        job is not None
        and job.state is JobState.SUSPENDED
        and job.energy_used_wh == pytest.approx(35.0)
    )
    runner.apply([JobCommand("a", "resume", "sun back")])
    clock.advance(3600)  # needs 15 Wh more at 100 W: done after 9 min, not more
    runner.poll()
    job = store.jobs.get("a")
    assert (
        job is not None and job.state is JobState.DONE and job.energy_used_wh == pytest.approx(50.0)
    )
    assert job.exit_code == 0 and job.reason == "done: used 50.0 Wh"
    assert job.finished_at == T0 + timedelta(minutes=99)  # resumed at 90 min, 9 min of work left
    msgs = [e.message for e in store.events.list(kinds=[EventKind.JOB.value])][::-1]
    assert msgs == [
        "job a: started: plan: 100 W now",
        "job a: capped at 40 W: less sun",
        "job a: suspended: battery at reserve",
        "job a: resumed: sun back",
        "job a: done: used 50.0 Wh",
    ]


def test_a_suspended_job_is_polled_once_then_left_out_until_it_changes(setup) -> None:  # type: ignore[no-untyped-def]
    store, clock, ex, runner = setup
    store.jobs.save(make_job("s", kind=JobKind.SPONGE, energy_wh=None))
    runner.apply([JobCommand("s", "start", "sun")])
    clock.advance(600)
    assert ex.poll()["s"].energy_used_wh == pytest.approx(100.0 / 6)
    runner.apply([JobCommand("s", "suspend", "cloud")])
    clock.advance(600)
    assert ex.poll()["s"].suspended  # reported once as suspended...
    clock.advance(600)
    assert "s" not in ex.poll()  # ...then left out while nothing changes
    runner.apply([JobCommand("s", "resume", "sun back")])
    clock.advance(600)
    back = ex.poll()["s"]
    assert back.running and back.energy_used_wh == pytest.approx(2 * 100.0 / 6)


def test_work_done_before_its_deadline_is_on_time_though_the_poll_comes_after_it(setup) -> None:  # type: ignore[no-untyped-def]
    store, clock, ex, runner = setup
    store.jobs.save(make_job("t", energy_wh=50.0, deadline_h=40 / 60))
    runner.apply([JobCommand("t", "start", "plan")])
    clock.advance(3600)  # one coarse step: the work ended at 30 min, the deadline was at 40
    runner.poll()
    job = store.jobs.get("t")
    assert job is not None and job.state is JobState.DONE
    assert job.finished_at == T0 + timedelta(minutes=30)


def test_missed_deadline_stops_the_job_and_says_what_was_left(setup) -> None:  # type: ignore[no-untyped-def]
    store, clock, ex, runner = setup
    store.jobs.save(make_job("m", energy_wh=500.0, deadline_h=1.0))
    runner.apply([JobCommand("m", "start", "plan")])
    clock.advance(3600)
    events = runner.poll()
    job = store.jobs.get("m")
    assert job is not None and job.state is JobState.MISSED
    assert job.reason == "missed: deadline passed with 400 Wh of 500 Wh still to do"
    assert any(e.severity.value == "warning" for e in events)
    assert not ex.known("m") or ex.poll()["m"].finished


def test_cancel_from_another_process_wins_over_the_runner(setup) -> None:  # type: ignore[no-untyped-def]
    store, clock, ex, runner = setup
    store.jobs.save(make_job("c", energy_wh=1000.0, deadline_h=20))
    runner.apply([JobCommand("c", "start", "plan")])
    # another process (the CLI) cancels in the store
    other = Store(store.path)
    job = other.jobs.get("c")
    assert job is not None
    job.state, job.reason = JobState.CANCELLED, "cancelled: by user"
    other.jobs.save(job)
    clock.advance(600)
    runner.apply([JobCommand("c", "suspend", "late command")])  # ignored: job is finished
    runner.poll()
    runner.poll()
    final = store.jobs.get("c")
    assert (
        final is not None
        and final.state is JobState.CANCELLED
        and final.reason == "cancelled: by user"
    )
    assert ex.node_power_w() == 0.0 and not ex.known("c")
    assert final.energy_used_wh == pytest.approx(
        100.0 * 600 / 3600
    )  # work up to the stop is counted


def test_recover_after_restart_puts_running_jobs_back_to_waiting(setup) -> None:  # type: ignore[no-untyped-def]
    store, clock, ex, runner = setup
    job = make_job("r")
    job.state, job.energy_used_wh, job.started_at = JobState.RUNNING, 12.0, T0
    store.jobs.save(job)
    runner.recover()
    back = store.jobs.get("r")
    assert back is not None and back.state is JobState.ADMITTED and back.energy_used_wh == 12.0
    runner.apply([JobCommand("r", "start", "plan")])
    clock.advance(360)  # 10 Wh
    runner.poll()
    assert store.jobs.get("r").energy_used_wh == pytest.approx(22.0)  # type: ignore[union-attr]


def test_default_power_curve_is_the_specpower_median() -> None:
    path = field_data_dir() / "compute" / "specpower_ssj2008_server_power_vs_load.csv"
    assert ComputeConfig().power_curve == curve_from_specpower(path)
    model = NodePowerModel.from_config(ComputeConfig(idle_w=40, max_w=300), cpu_count=4)
    assert model.dynamic_w(0.5) == pytest.approx(0.5 * 260)
    assert model.dynamic_w(0.25) == pytest.approx((0.2 + 0.31) / 2 * 260)
    assert model.utilisation_for(model.dynamic_w(0.37)) == pytest.approx(0.37)
    shares = model.split_w({"a": 3.0, "b": 1.0}, interval_s=2.0)  # 4 CPU-s of 8: 50 % load
    assert shares["a"] == pytest.approx(0.75 * 130) and shares["b"] == pytest.approx(0.25 * 130)
    metered = model.split_w({"a": 3.0, "b": 1.0}, interval_s=2.0, measured_node_w=240.0)
    assert metered == pytest.approx({"a": 150.0, "b": 50.0})


def test_forecast_and_snapshot_kv_round_trip() -> None:
    fc = PowerForecast(
        issued_at=T0,
        start=T0,
        step_s=900,
        p10_w=np.array([1.0, 2.0]),
        p50_w=np.array([2.0, 3.0]),
        p90_w=np.array([3.0, 4.0]),
        source="x",
    )
    back = forecast_from_kv(forecast_to_kv(fc))
    assert back.start == T0 and back.step_s == 900 and list(back.p50_w) == [2.0, 3.0]
    with pytest.raises(ValueError, match="malformed"):
        forecast_from_kv({"start": T0.isoformat()})
    assert soc_from_snapshot({"readings": {"soc_pct": {"value": 41.5}}}) == 41.5
    assert soc_from_snapshot({"readings": {}}) is None


def test_service_decides_jobs_that_arrived_undecided(tmp_path: Path) -> None:
    """Jobs from the hub land PENDING; the service decides them in arrival order, under the lock."""
    from appliance.energy.kv import FORECAST_KEY
    from appliance.jobs_service import JobService
    from tests.conftest import make_config

    store = Store(tmp_path / "sunbox.db")
    clock = ManualClock(T0)
    flat = np.full(200, 65.0)  # PV covers the essentials exactly: ~1.8 kWh above the reserve
    fc = PowerForecast(issued_at=T0, start=T0, step_s=900, p10_w=flat, p50_w=flat, p90_w=flat)
    store.put_kv(FORECAST_KEY, forecast_to_kv(fc), T0)
    store.put_kv("site_state", {"readings": {"soc_pct": {"value": 50.0}}}, T0)
    for i, energy in enumerate((1000.0, 1000.0, 300.0)):
        job = make_job(f"h{i}", power_w=250.0, energy_wh=energy, deadline_h=10.0)
        job.state, job.submitted_at = JobState.PENDING, T0 + timedelta(seconds=i)
        store.jobs.save(job)
    service = JobService(store, make_config(), clock, tmp_path)
    decided = service.decide_pending(explain=False)
    assert [(j.id, j.state.value) for j, _ in decided] == [
        ("h0", "admitted"),
        ("h1", "rejected"),
        ("h2", "admitted"),
    ]
    assert "assumed" not in decided[0][1].reason
    assert store.jobs.get("h1").reason.startswith("rejected: at P10 the box can give ")  # type: ignore[union-attr]


def test_service_promises_best_effort_work_the_daemons_plan_keeps(tmp_path: Path) -> None:
    """After a re-plan the daemon asks the service to promise the best-effort jobs the plan
    keeps: under the lock, on the jobs as stored now, with an event each. A promise made
    between the plan and the call stops it (the plan did not see that job)."""
    from appliance.api.view_jobs import job_view
    from appliance.commands.jobs import job_json
    from appliance.energy.planner import plan_detailed
    from appliance.jobs_service import JobService
    from tests.conftest import make_config

    store = Store(tmp_path / "sunbox.db")
    clock = ManualClock(T0)
    config = make_config()
    sunny = np.full(96, 1500.0)  # 24 h of 1.5 kW, certain: far more than both jobs need
    fc = PowerForecast(issued_at=T0, start=T0, step_s=900, p10_w=sunny, p50_w=sunny, p90_w=sunny)
    be = make_job("be", power_w=200.0, energy_wh=400.0, deadline_h=6.0)
    be.best_effort = True
    store.jobs.save(be)
    store.jobs.save(make_job("p", power_w=200.0, energy_wh=300.0, deadline_h=6.0))
    service = JobService(store, config, clock, tmp_path)
    outcome = plan_detailed(T0, fc, 60.0, store.jobs.list(), config, solver="milp")

    late = make_job("late", power_w=200.0, energy_wh=100.0, deadline_h=6.0)
    store.jobs.save(late)  # promised after the plan was made
    assert service.promote(outcome) == []
    waiting = store.jobs.get("be")
    assert waiting is not None and waiting.best_effort
    # what users see: `sunbox jobs list --json` and the API's job view say it is best effort
    assert job_json(waiting)["best_effort"] is True
    assert job_view(waiting, None, None, T0, config)["best_effort"] is True

    late.state = JobState.DONE
    late.energy_used_wh = 100.0
    store.jobs.save(late)  # it ended: the plan speaks for every open promise again
    promoted = service.promote(outcome)
    assert [j.id for j in promoted] == ["be"]
    stored = store.jobs.get("be")
    assert stored is not None and not stored.best_effort and stored.state is JobState.ADMITTED
    assert stored.reason.startswith("admitted: promised now: at P10 the plan keeps its deadline")
    assert job_json(stored)["best_effort"] is False and job_view(stored, None, None, T0, config)["best_effort"] is False
    events = [e for e in store.events.list(kinds=[EventKind.JOB.value]) if e.data.get("action") == "promote"]
    assert [e.data["job_id"] for e in events] == ["be"] and "promised now" in events[0].message
    assert service.promote(outcome) == []  # promised once
