"""A year of the energy policy on measured sky: sunbox vs perfect vs threshold (prints JSON).

The planner's own proving ground, before the lead's ``sunbox replay`` wires the simulator:
this loop runs the real admission, rolling planner, shedding rules and SimulatedExecutor on
a 5-minute virtual clock, with the battery stepped by ``energy.battery`` and the PV of the
configured array modelled from measured irradiance (DTU Lyngby 2016, 1-min station data; or
pvlib's Miami TMY2). The sunbox policy plans on the solar forecaster's P10, fed only with the
PV it has "measured" so far; ``perfect`` plans on the actual future PV; ``threshold`` gates
on SoC alone. Job streams come from ``appliance.workloads.streams`` (real traces), sized so
daily PV is 1.5 × the fixed and deferrable demand.

    .venv/bin/python tests/bench/planner_year.py --site lyngby --days 366
    .venv/bin/python tests/bench/planner_year.py --site miami --days 365
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.clock import ManualClock  # noqa: E402
from appliance.config import SunboxConfig, demo_config_text, parse_config  # noqa: E402
from appliance.energy.admission import AdmissionContext, decide  # noqa: E402
from appliance.energy.battery import BatteryModel  # noqa: E402
from appliance.energy.rolling import RollingPlanner  # noqa: E402
from appliance.energy.shedding import ControlView, ShedRules  # noqa: E402
from appliance.energy.threshold import ThresholdGate  # noqa: E402
from appliance.paths import field_data_dir  # noqa: E402
from appliance.state import Job, JobCommand, JobKind, JobState, PowerForecast  # noqa: E402
from appliance.workloads.simulated import SimulatedExecutor  # noqa: E402
from appliance.workloads.streams import StreamSpec, generate, record_to_job  # noqa: E402

STEP_S = 300
LIVE = (JobState.ADMITTED, JobState.RUNNING, JobState.SUSPENDED)
SITES = {
    "lyngby": {
        "name": "lyngby",
        "lat": 55.79064,
        "lon": 12.52505,
        "altitude_m": 50.0,
        "tz": "Europe/Copenhagen",
    },
    "miami": {
        "name": "miami",
        "lat": 25.8,
        "lon": -80.2667,
        "altitude_m": 2.0,
        "tz": "America/New_York",
    },
}


def box_config(site: str, dc_kw: float, admission: str = "conservative") -> SunboxConfig:
    import tomllib

    data = tomllib.loads(demo_config_text())
    data["site"] = SITES[site]
    data["array"].update({"dc_kw": dc_kw})
    data["battery"].update({"capacity_wh": 5000.0, "initial_soc_pct": 60.0})
    data["compute"].update({"idle_w": 40.0, "max_w": 600.0})
    data["planner"] = {
        "fine_h": 6.0,
        "replan_min": 180.0,
        "lp_interval_min": 60.0,
        "admission": admission,
    }
    data["devices"], data["heat"] = [], {"enabled": False}
    return parse_config(data, f"bench {site}")


def weather(site: str, days: int) -> pd.DataFrame:
    if site == "lyngby":
        from appliance.solar.field_readers import read_dtu_lyngby

        frame = read_dtu_lyngby(field_data_dir() / "solar" / "dtu_lyngby_2016_1min.csv.gz", 5)
    else:
        import pvlib

        raw, _ = pvlib.iotools.read_tmy2(
            os.path.join(os.path.dirname(pvlib.__file__), "data", "12839.tm2")
        )
        hourly = pd.DataFrame(
            {
                "ghi_w_m2": raw["GHI"].to_numpy(float),
                "dni_w_m2": raw["DNI"].to_numpy(float),
                "dhi_w_m2": raw["DHI"].to_numpy(float),
                "temp_air_c": raw["DryBulb"].to_numpy(float) / 10.0,
                "wind_speed_m_s": raw["Wspd"].to_numpy(float) / 10.0,
            },
            index=pd.date_range(
                "2001-01-01 05:30", periods=len(raw), freq="1h", tz=UTC
            ),  # hour centres
        )
        grid = pd.date_range("2001-01-01 05:00", periods=365 * 288, freq="5min", tz=UTC)
        frame = (
            hourly.reindex(hourly.index.union(grid)).interpolate("time").reindex(grid).fillna(0.0)
        )
        frame.index.name = "time"
    start = frame.index[0]
    return frame[frame.index < start + pd.Timedelta(days=days)]


@dataclass
class Tally:
    pv_wh: float = 0.0
    curtailed_wh: float = 0.0
    compute_wh: float = 0.0
    critical_need_wh: float = 0.0
    critical_served_wh: float = 0.0
    sponge_wh: float = 0.0
    discharge_wh: float = 0.0
    min_soc_pct: float = 100.0
    reserve_violation_slots: int = 0
    lp: int = 0
    greedy: int = 0
    by_job: dict[str, float] = field(default_factory=dict)


def run(
    policy: str, config: SunboxConfig, times: pd.DatetimeIndex, pv_w: np.ndarray, jobs_in: list[Job]
) -> dict[str, Any]:
    t_wall = time.perf_counter()
    bat = BatteryModel.from_config(config.battery)
    base_w = config.loads.base_w + config.compute.idle_w
    clock = ManualClock(times[0].to_pydatetime())
    ex = SimulatedExecutor(clock)
    rules, gate, rolling = ShedRules(config), ThresholdGate(config), RollingPlanner(config)
    soc = bat.wh(config.battery.initial_soc_pct)
    batt_w = 0.0
    arrivals = sorted(jobs_in, key=lambda j: (j.submitted_at, j.id))
    nxt = 0
    jobs: dict[str, Job] = {}
    active_all: list[Job] = []
    tally = Tally()
    forecaster = None
    if policy == "sunbox":
        from appliance.solar.forecaster import Forecaster

        forecaster = Forecaster(config)
        forecaster.precompute(
            times[0].to_pydatetime(), times[-1].to_pydatetime() + timedelta(days=3)
        )
    pv15 = (
        pd.Series(pv_w, index=times)
        .resample("15min")
        .mean()
        .reindex(pd.date_range(times[0], times[-1] + pd.Timedelta(days=3), freq="15min", tz=UTC))
        .fillna(0.0)
    )
    pv15_start = pv15.index[0].to_pydatetime()
    pv15_v = pv15.to_numpy(float)
    fc_cache: dict[int, PowerForecast] = {}

    def forecast(now: datetime) -> PowerForecast:
        key = int(now.timestamp() // 900)
        got = fc_cache.get(key)
        if got is None:
            if forecaster is not None:
                got = forecaster.forecast(now, hours=config.planner.horizon_h + 0.25, step_min=15)
            else:
                i0 = int((now - pv15_start).total_seconds() // 900)
                v = pv15_v[i0 : i0 + config.planner.horizon_h * 4 + 1]
                got = PowerForecast(
                    issued_at=now,
                    start=pv15_start + timedelta(seconds=900 * i0),
                    step_s=900,
                    p10_w=v,
                    p50_w=v,
                    p90_w=v,
                    source="actual",
                )
            fc_cache.clear()
            fc_cache[key] = got
        return got

    dt_h = STEP_S / 3600.0
    for i, ts in enumerate(times):
        now = ts.to_pydatetime()
        if clock.now() < now:
            clock.set(now)
        soc_pct = soc / bat.capacity_wh * 100.0
        active = [j for j in active_all if j.state in LIVE]
        while nxt < len(arrivals) and arrivals[nxt].submitted_at <= now:  # type: ignore[operator]
            job = arrivals[nxt]
            nxt += 1
            if policy == "threshold" or job.kind is JobKind.CRITICAL:
                job.state = JobState.ADMITTED
            else:
                ctx = AdmissionContext(
                    now=now, forecast=forecast(now), soc_pct=soc_pct, admitted=active, config=config
                )
                d = decide(ctx, job, explain=False)
                job.state = JobState.ADMITTED if d.admitted else JobState.REJECTED
                if d.outcome is not None:
                    rolling.adopt(d.outcome, now, [*active, job])
            jobs[job.id] = job
            if job.state is JobState.ADMITTED:
                active.append(job)
        active_all = active
        if policy == "threshold":
            cmds = gate.decide(ControlView(now, soc_pct), active)
        else:
            due = rolling.due(now, soc_pct, active)
            if due is not None:
                rolling.replan(now, forecast(now), soc_pct, active, solver=due[1])
            cmds = rules.decide(
                ControlView(now, soc_pct, pv_w=float(pv_w[i]), battery_power_w=batt_w),
                active,
                rolling.plan,
            )
        apply(cmds, jobs, ex, now)
        before = {j.id: j.energy_used_wh for j in active}
        clock.set(now + timedelta(seconds=STEP_S))
        progress = ex.poll()
        step_jobs_wh = crit_wh = noncrit_wh = 0.0
        for jid, prog in progress.items():
            job = jobs[jid]
            e = prog.energy_used_wh - before.get(jid, job.energy_used_wh)
            job.energy_used_wh = prog.energy_used_wh
            tally.by_job[jid] = job.energy_used_wh
            step_jobs_wh += e
            if job.kind is JobKind.CRITICAL:
                crit_wh += e
            else:
                noncrit_wh += e
                if job.kind is JobKind.SPONGE:
                    tally.sponge_wh += e
            if prog.finished and job.state is JobState.RUNNING:
                job.state, job.finished_at = JobState.DONE, clock.now()
        crit_need = sum(j.power_w for j in active if j.kind is JobKind.CRITICAL) * dt_h
        # plant: PV, loads, battery for one step
        net_w = pv_w[i] - base_w - step_jobs_wh / dt_h
        if net_w >= 0:
            c = min(net_w, bat.charge_max_w, max(bat.max_wh - soc, 0.0) / (bat.eta_charge * dt_h))
            soc += c * bat.eta_charge * dt_h
            tally.curtailed_wh += (net_w - c) * dt_h
            batt_w, unserved = c, 0.0
        else:
            d = min(
                -net_w, bat.discharge_max_w, max(soc - bat.min_wh, 0.0) * bat.eta_discharge / dt_h
            )
            soc -= d / bat.eta_discharge * dt_h
            tally.discharge_wh += d * dt_h
            batt_w, unserved = -d, (-net_w - d) * dt_h
        if soc_pct < config.battery.reserve_pct - 1e-6 and noncrit_wh > 1e-9:
            tally.reserve_violation_slots += 1
        tally.pv_wh += pv_w[i] * dt_h
        tally.compute_wh += step_jobs_wh - min(unserved, step_jobs_wh)
        tally.critical_need_wh += crit_need
        tally.critical_served_wh += max(0.0, crit_wh - unserved)
        tally.min_soc_pct = min(tally.min_soc_pct, soc / bat.capacity_wh * 100.0)
        if forecaster is not None:
            forecaster.observe_one(now, float(pv_w[i]))
        end = clock.now()
        for job in active:
            if (
                job.kind is JobKind.DEFERRABLE
                and job.state in LIVE
                and job.deadline is not None
                and job.deadline <= end
                and (job.remaining_wh or 0) > 0.5
            ):
                job.state = JobState.MISSED
                if ex.known(job.id):
                    ex.stop(job.id)
                    ex.poll()
    tally.lp, tally.greedy = rolling.lp_calls, rolling.greedy_calls
    return metrics(tally, jobs, arrivals, config, len(times), time.perf_counter() - t_wall)


def apply(
    cmds: list[JobCommand], jobs: dict[str, Job], ex: SimulatedExecutor, now: datetime
) -> None:
    for c in cmds:
        job = jobs[c.job_id]
        if c.action in ("start", "resume"):
            job.cap_w = c.cap_w
            if ex.known(job.id):
                ex.resume(job.id)
                ex.cap(job.id, c.cap_w)
            else:
                ex.start(job)
            job.state, job.started_at = JobState.RUNNING, job.started_at or now
        elif c.action == "suspend":
            if ex.known(job.id):
                ex.suspend(job.id)
            job.state = JobState.SUSPENDED
        elif c.action == "cap":
            job.cap_w = c.cap_w
            if ex.known(job.id):
                ex.cap(job.id, c.cap_w)


def metrics(
    t: Tally,
    jobs: dict[str, Job],
    arrivals: list[Job],
    config: SunboxConfig,
    steps: int,
    wall_s: float,
) -> dict[str, Any]:
    dfr = [j for j in jobs.values() if j.kind is JobKind.DEFERRABLE]
    admitted = [j for j in jobs.values() if j.state is not JobState.REJECTED]
    on_time = [
        j
        for j in dfr
        if j.state is JobState.DONE
        and j.finished_at is not None
        and j.deadline is not None
        and j.finished_at <= j.deadline + timedelta(seconds=STEP_S)
    ]
    misses = [j for j in dfr if j.state is JobState.MISSED]
    return {
        "days": round(steps * STEP_S / 86400, 2),
        "pv_wh": round(t.pv_wh),
        "curtailed_wh": round(t.curtailed_wh),
        "compute_served_wh": round(t.compute_wh),
        "deferrable_on_time_wh": round(sum(j.energy_wh or 0.0 for j in on_time)),
        "sponge_wh": round(t.sponge_wh),
        "critical_served_wh": round(t.critical_served_wh),
        "critical_uptime_pct": round(
            100.0 * t.critical_served_wh / max(t.critical_need_wh, 1e-9), 3
        ),
        "jobs_submitted": len(arrivals),
        "jobs_admitted": len(admitted),
        "jobs_on_time": len(on_time),
        "deadline_misses": len(misses),
        "deferrable_admitted": sum(1 for j in dfr if j.state is not JobState.REJECTED),
        "reserve_violation_slots": t.reserve_violation_slots,
        "min_soc_pct": round(t.min_soc_pct, 2),
        "battery_cycles": round(t.discharge_wh / config.battery.capacity_wh, 1),
        "lp_plans": t.lp,
        "greedy_plans": t.greedy,
        "wall_s": round(wall_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", choices=sorted(SITES), default="lyngby")
    ap.add_argument("--days", type=int, default=366)
    ap.add_argument("--dc-kw", type=float, default=None)
    ap.add_argument("--policy", action="append", choices=["sunbox", "perfect", "threshold"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--admission", choices=["conservative", "expected", "optimistic"], default="conservative"
    )
    ap.add_argument("--start-day", type=int, default=0, help="skip this many days of the weather")
    args = ap.parse_args()
    from appliance.solar.forecast import measured_pv

    dc_kw = args.dc_kw or (3.0 if args.site == "lyngby" else 2.0)
    config = box_config(args.site, dc_kw, args.admission)
    frame = weather(args.site, args.days + args.start_day)
    frame = frame[frame.index >= frame.index[0] + pd.Timedelta(days=args.start_day)]
    pv_series, _ = measured_pv(config, frame)
    times = pd.DatetimeIndex(pv_series.index)
    pv_w = pv_series.to_numpy(dtype=float)
    daily_pv = float(pv_w.sum() * STEP_S / 3600.0 / (len(times) * STEP_S / 86400.0))
    spec = StreamSpec(
        start=times[0].to_pydatetime(), days=args.days, daily_pv_wh=daily_pv, seed=args.seed
    )
    records = generate(spec, config)
    out: dict[str, Any] = {
        "site": args.site,
        "dc_kw": dc_kw,
        "daily_pv_wh": round(daily_pv),
        "admission": args.admission,
    }
    for policy in args.policy or ["sunbox", "perfect", "threshold"]:
        jobs = [record_to_job(r) for r in records]
        out[policy] = run(policy, config, times, pv_w, [replace(j) for j in jobs])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
