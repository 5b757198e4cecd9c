"""`sunbox replay`: the real control and planning code over measured weather, in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from appliance.replay import ReplayOptions, run_replay
from appliance.replay.metrics import deferrable_fate
from appliance.replay.scenarios import SCENARIOS, load
from appliance.replay.weather import prepare
from appliance.solar.weather_file import write_weather_file
from appliance.state import Job, JobKind, JobState
from tests.conftest import REPO

REQUIRED = ["days", "pv_wh", "curtailed_wh", "compute_served_wh", "deferrable_on_time_wh", "sponge_wh",
            "critical_served_wh", "critical_uptime_pct", "jobs_submitted", "jobs_admitted", "jobs_on_time",
            "deadline_misses", "reserve_violation_slots", "min_soc_pct", "battery_cycles", "weather_gap_h",
            "wall_s", "heat_delivered_wh", "heat_used_wh", "heat_vented_wh", "comfort_deficit_kh", "erf"]


@pytest.fixture(scope="module")
def lyngby() -> tuple:  # type: ignore[type-arg]
    return load("lyngby")


def _window(jobs: list[Job], start: datetime, days: float) -> list[Job]:
    end = start + timedelta(days=days)
    return [j for j in jobs if j.submitted_at is not None and start <= j.submitted_at < end]


def test_cli_json_has_every_key_and_policies_keep_their_promises(tmp_path: Path) -> None:
    sc = SCENARIOS["lyngby"]
    cfg, weather, jobs = sc.paths()
    start = "2016-05-10T00:00:00+00:00"
    out = {}
    for policy in ("sunbox", "perfect", "threshold"):
        proc = subprocess.run(
            [sys.executable, "-m", "appliance.cli", "replay", "--config", str(cfg), "--weather", str(weather),
             "--jobs", str(jobs), "--start", start, "--days", "3", "--policy", policy, "--json"],
            capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[policy] = json.loads(proc.stdout)
    for r in out.values():
        assert set(REQUIRED) <= set(r)
        # the loop's CPU time: one thread at work, so about its wall time at most
        assert 0.0 < r["cpu_s"] <= 1.1 * r["wall_s"] + 0.05
        assert r["days"] == pytest.approx(3.0, abs=0.01)
        assert r["jobs_submitted"] > 10
    # the planner never lets non-critical work take the battery below the reserve
    assert out["sunbox"]["reserve_violation_slots"] == 0
    assert out["perfect"]["reserve_violation_slots"] == 0
    # admission keeps its promises: at most 1 % of admitted deferrable work misses
    assert out["sunbox"]["deadline_misses"] <= max(1, 0.01 * out["sunbox"]["jobs_admitted"])
    # admission asks the LP, as live (the greedy fast path promised work the LP would not);
    # the greedy planner stays the fallback, which these days never need
    assert out["sunbox"]["plans_greedy"] == 0 and out["perfect"]["plans_greedy"] == 0
    assert out["sunbox"]["plans_lp"] > out["sunbox"]["jobs_admitted"]
    # threshold admits everything (no forecast to say no with)
    assert out["threshold"]["jobs_admitted"] == out["threshold"]["jobs_submitted"]


def test_gaps_up_to_3h_are_filled_longer_ones_skipped(lyngby: tuple) -> None:  # type: ignore[type-arg]
    config, weather, jobs = lyngby
    start = datetime(2016, 5, 10, tzinfo=UTC)
    w = weather[(weather.index >= start) & (weather.index < start + timedelta(days=2))].copy()
    short = (w.index >= start + timedelta(hours=10)) & (w.index < start + timedelta(hours=12))
    long_ = (w.index >= start + timedelta(hours=30)) & (w.index < start + timedelta(hours=35))
    w.loc[short | long_, :] = np.nan
    w = w.dropna(how="all")
    prepared = prepare(w, start, start + timedelta(days=2), 300)
    assert prepared.gap_h == pytest.approx(5.0, abs=0.1)
    assert len(prepared.segments) == 2
    filled = prepared.frame.loc[start + timedelta(hours=11), "ghi_w_m2"]
    assert filled > 50  # interpolated across the 2 h gap, midday in May
    window = _window(jobs, start, 2)
    r = run_replay(config, w, window, ReplayOptions(start=start, days=2, policy="threshold"))
    assert r["weather_gap_h"] == pytest.approx(5.0, abs=0.1)
    assert r["days"] == pytest.approx(2 - 5 / 24, abs=0.01)
    gap_arrivals = [j for j in window if start + timedelta(hours=30) <= j.submitted_at < start + timedelta(hours=35)]
    assert r["jobs_skipped_in_gaps"] == len(gap_arrivals)
    assert r["jobs_submitted"] == len(window) - len(gap_arrivals)


def test_hourly_weather_is_centred_before_interpolation(tmp_path: Path) -> None:
    """Hourly interval means labelled at the start must not move the sun by half an hour."""
    idx = pd.date_range("2024-03-20", periods=48, freq="1h", tz="UTC")
    ghi = np.where((idx.hour >= 6) & (idx.hour < 18), 500.0, 0.0)
    frame = pd.DataFrame({"ghi_w_m2": ghi}, index=idx)
    prepared = prepare(frame, idx[0].to_pydatetime(), idx[-1].to_pydatetime(), 300)
    g = prepared.frame["ghi_w_m2"]
    # the 06:00-07:00 mean belongs to 06:30: at 06:00 the interpolation is halfway up
    assert g.loc[pd.Timestamp("2024-03-20 06:25", tz="UTC")] == pytest.approx(500.0, abs=1e-6)
    assert 0.0 < g.loc[pd.Timestamp("2024-03-20 06:00", tz="UTC")] < 500.0


def test_cold_nights_heat_routing_cuts_the_comfort_deficit_without_crossing_the_reserve(lyngby: tuple) -> None:  # type: ignore[type-arg]
    config, weather, jobs = lyngby
    start = datetime(2016, 2, 20, tzinfo=UTC)  # Danish February nights
    window = _window(jobs, start, 3)
    on = run_replay(config, weather, window, ReplayOptions(start=start, days=3, heat_routing=True))
    off = run_replay(config, weather, window, ReplayOptions(start=start, days=3, heat_routing=False))
    assert on["heat_used_wh"] > 500 and off["heat_used_wh"] == 0
    assert on["comfort_deficit_kh"] < off["comfort_deficit_kh"] - 5
    assert on["erf"] > 0.1 and off["erf"] == 0
    assert on["heat_delivered_wh"] == pytest.approx(on["heat_used_wh"] + on["heat_vented_wh"], rel=1e-6)
    assert on["reserve_violation_slots"] == 0


def test_warm_nights_vent() -> None:
    config, weather, jobs = load("miami")
    start = datetime(1962, 7, 10, tzinfo=UTC)
    r = run_replay(config, weather, _window(jobs, start, 2), ReplayOptions(start=start, days=2))
    assert r["heat_delivered_wh"] > 0
    assert r["heat_vented_wh"] >= 0.95 * r["heat_delivered_wh"]  # 19 °C wanted, Miami July: nothing to heat
    assert r["reserve_violation_slots"] == 0


def test_cli_forecast_weather_feed_is_read_by_sunbox(tmp_path: Path) -> None:
    """A day-ahead feed (the synthetic NWP-like one shipped for the backtest) changes what the
    box forecasts, so what it admits; a feed for another policy, or a broken one, is exit 2."""
    sc = SCENARIOS["lyngby"]
    cfg, weather, jobs = sc.paths()
    feed = REPO / "field_data/solar/dtu_lyngby_2016_feed_good_1h.csv.gz"
    base = [sys.executable, "-m", "appliance.cli", "replay", "--config", str(cfg), "--weather", str(weather),
            "--jobs", str(jobs), "--start", "2016-09-18T00:00:00+00:00", "--days", "4", "--json"]
    runs = {}
    for name, extra in (("offline", []), ("feed", ["--forecast-weather", str(feed)])):
        proc = subprocess.run(base + extra, capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = json.loads(proc.stdout)
    assert runs["feed"]["forecast_weather"].endswith("feed_good_1h.csv.gz")
    assert "forecast_weather" not in runs["offline"]
    assert runs["feed"]["reserve_violation_slots"] == 0
    changed = [k for k in ("jobs_admitted", "deferrable_on_time_wh", "jobs_best_effort")
               if runs["feed"][k] != runs["offline"][k]]
    assert changed, "the feed must change the box's decisions"
    proc = subprocess.run(base + ["--forecast-weather", str(feed), "--policy", "perfect"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "sunbox policy only" in proc.stderr
    broken = tmp_path / "feed.csv"
    broken.write_text("when,sun\nyesterday,lots\n")
    proc = subprocess.run(base + ["--forecast-weather", str(broken)], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert proc.returncode == 2 and "--forecast-weather" in proc.stderr and "Traceback" not in proc.stderr


def test_jobs_file_mistakes_exit_2(tmp_path: Path) -> None:
    sc = SCENARIOS["lyngby"]
    cfg, weather, _ = sc.paths()
    bad = tmp_path / "jobs.jsonl"
    bad.write_text('{"id": "x", "arrival": "2016-05-10T00:00:00", "kind": "deferrable", "power_w": 100, '
                   '"energy_wh": 100, "deadline": "2016-05-11T00:00:00+00:00", "value": 1}\n')
    proc = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", "--config", str(cfg), "--weather",
                           str(weather), "--jobs", str(bad), "--days", "1"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "UTC offset" in proc.stderr and "Traceback" not in proc.stderr
    empty = tmp_path / "w.csv"
    write_weather_file(pd.DataFrame({"ghi_w_m2": [0.0]}, index=pd.DatetimeIndex(
        [pd.Timestamp("2016-01-01", tz="UTC")], name="time")), empty)
    proc = subprocess.run([sys.executable, "-m", "appliance.cli", "replay", "--config", str(cfg), "--weather",
                           str(empty), "--jobs", str(bad), "--start", "2017-01-01T00:00:00+00:00", "--days", "1"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_critical_service_is_admitted_with_an_honest_reason(lyngby: tuple) -> None:  # type: ignore[type-arg]
    config, weather, _ = lyngby
    start = datetime(2016, 1, 5, tzinfo=UTC)
    share = Job(id="share", name="file share", kind=JobKind.CRITICAL, power_w=60.0, energy_wh=None,
                deadline=None, submitted_at=start, state=JobState.PENDING)
    from appliance.replay.run import Replay

    rp = Replay(config, weather, [share], ReplayOptions(start=start, days=2))
    res = rp.run()
    got = rp.store.jobs.get("share")
    assert got is not None and got.state is not JobState.REJECTED
    assert got.reason.startswith("admitted: runs always, shed last; at P10")
    assert res["critical_uptime_pct"] <= 100.0 and res["critical_served_wh"] > 0


def test_suspensions_are_counted_and_a_full_battery_does_not_flap(lyngby: tuple) -> None:  # type: ignore[type-arg]
    """``job_suspensions`` is every suspend the control loop issued (the job events say so too).
    Three sunny July days in Lyngby fill the battery every day: work started on a full battery
    is not suspended and resumed every few minutes while it draws the battery down a little."""
    from appliance.replay.run import Replay

    config, weather, jobs = lyngby
    start = datetime(2016, 7, 14, tzinfo=UTC)
    rp = Replay(config, weather, _window(jobs, start, 3.0), ReplayOptions(start=start, days=3))
    res = rp.run()
    events = rp.store.events.list(kinds=["job"], limit=100_000)
    suspended = [e for e in events if ": suspended:" in e.message]
    assert res["job_suspensions"] == len(suspended) > 0
    by_job: dict[str, list[datetime]] = {}
    for e in sorted(events, key=lambda e: e.at):
        if ": suspended:" in e.message or ": resumed:" in e.message:
            by_job.setdefault(e.message.split(":")[0], []).append(e.at)
    # a job switched within 10 minutes of its previous switch, twice in a row, is flapping
    flaps = sum(1 for times in by_job.values() for a, b, c in zip(times, times[1:], times[2:], strict=False)
                if c - a <= timedelta(minutes=10))
    assert flaps <= 2, flaps  # 144 before the full battery was latched


def test_each_deferrable_job_has_one_fate_by_the_end() -> None:
    """The classing the metrics count with (and replay_fates.py compares policies by)."""
    t0 = datetime(2016, 6, 1, tzinfo=UTC)
    end = t0 + timedelta(days=2)

    def job(state: JobState, deadline_h: float, finished_h: float | None = None,
            kind: JobKind = JobKind.DEFERRABLE) -> Job:
        return Job(id="j", name="j", kind=kind, power_w=100.0, energy_wh=200.0,
                   deadline=t0 + timedelta(hours=deadline_h), state=state,
                   finished_at=None if finished_h is None else t0 + timedelta(hours=finished_h))

    assert deferrable_fate(job(JobState.DONE, 10, finished_h=10), end) == "on_time"  # at the deadline counts
    assert deferrable_fate(job(JobState.DONE, 10, finished_h=10.1), end) == "missed"  # late
    assert deferrable_fate(job(JobState.MISSED, 10), end) == "missed"
    assert deferrable_fate(job(JobState.SUSPENDED, 47), end) == "missed"  # unfinished past its deadline
    assert deferrable_fate(job(JobState.SUSPENDED, 49), end) == "open"  # its deadline after the end
    assert deferrable_fate(job(JobState.ADMITTED, 49), end) == "open"
    assert deferrable_fate(job(JobState.REJECTED, 10), end) == "not_admitted"
    assert deferrable_fate(job(JobState.PENDING, 49), end) == "not_admitted"
    assert deferrable_fate(job(JobState.DONE, 10, finished_h=5, kind=JobKind.SPONGE), end) is None


def test_best_effort_jobs_a_replan_keeps_are_promised_and_counted_as_admitted() -> None:
    """Miami, four days of February: three best-effort jobs become promises at a re-plan that
    keeps them with every promise. They move from the best-effort count to the admitted one
    (where a later miss would count against admission), as the stored jobs' flags agree; with
    ``planner.promote_best_effort`` off, none is."""
    from appliance.replay.run import Replay

    config, weather, jobs = load("miami")
    start = weather.index[0].to_pydatetime() + timedelta(days=30)
    counts = {}
    for promote in (True, False):
        cfg = config.model_copy(update={"planner": config.planner.model_copy(update={"promote_best_effort": promote})})
        replay = Replay(cfg, weather, jobs, ReplayOptions(start=start, days=4, policy="sunbox"))
        out = replay.run()
        accepted = [j for j in replay.store.jobs.list(limit=100_000) if j.state is not JobState.REJECTED]
        assert out["jobs_best_effort"] == sum(j.best_effort for j in accepted)
        assert out["jobs_admitted"] == sum(not j.best_effort for j in accepted)
        counts[promote] = out["jobs_promoted"]
    assert counts == {True: 3, False: 0}
