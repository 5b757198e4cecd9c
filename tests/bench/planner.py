"""Planner benchmark: prints JSON figures (run: .venv/bin/python tests/bench/planner.py).

- lp_100_jobs_median_s: one LP plan, 48 h × 15 min, 100 deferrable/sponge jobs (goal ≤ 0.5 s)
- greedy_100_jobs_median_s: the fallback on the same problem (goal ≤ 50 ms)
- incremental path, what replay pays per call with ~10 active jobs: the LP on the full grid, the
  LP with hourly slots after 6 h (``planner.fine_h = 6``), a greedy re-plan, an admission
  decision, and one ShedRules decision of the control loop.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.config import demo_config_text, parse_config  # noqa: E402
from appliance.energy.admission import AdmissionContext, decide  # noqa: E402
from appliance.energy.planner import plan_detailed  # noqa: E402
from appliance.energy.shedding import ControlView, ShedRules  # noqa: E402
from appliance.solar.pvsystem import ac_power_w  # noqa: E402
from appliance.state import Job, JobKind, JobState, PowerForecast  # noqa: E402

NOW = datetime(2024, 3, 1, 4, 0, tzinfo=UTC)  # 07:00 in Kisumu


def config(**planner: float):  # type: ignore[no-untyped-def]
    import tomllib

    data = tomllib.loads(demo_config_text())
    data.setdefault("planner", {}).update(planner)
    return parse_config(data, "bench")


def forecast(cfg) -> PowerForecast:  # type: ignore[no-untyped-def]
    times = pd.date_range(NOW, periods=50 * 4, freq="15min", tz=UTC)
    clear = ac_power_w(cfg.site, cfg.array, times + pd.Timedelta(minutes=7.5))
    return PowerForecast(
        issued_at=NOW, start=NOW, step_s=900, p10_w=0.4 * clear, p50_w=0.7 * clear, p90_w=clear
    )


def jobs(n: int, seed: int = 0) -> list[Job]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = JobKind.SPONGE if i % 10 == 9 else JobKind.DEFERRABLE
        out.append(
            Job(
                id=f"j{i}",
                name=f"j{i}",
                kind=kind,
                power_w=float(rng.uniform(30, 200)),
                energy_wh=float(rng.uniform(20, 300)),
                deadline=NOW + timedelta(hours=float(rng.uniform(6, 47)))
                if kind is JobKind.DEFERRABLE
                else None,
                state=JobState.ADMITTED,
            )
        )
    return out


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    cfg = config()
    coarse = config(fine_h=6.0)
    fc = forecast(cfg)
    many, few = jobs(100), jobs(10, seed=1)
    lp = plan_detailed(NOW, fc, 55.0, many, cfg)
    assert lp.plan.solver == "milp", lp.plan.status
    rules = ShedRules(cfg)
    running = [Job(**{**j.__dict__, "state": JobState.RUNNING}) for j in few]
    plan_few = plan_detailed(NOW, fc, 55.0, few, cfg).plan
    view = ControlView(NOW + timedelta(minutes=3), soc_pct=54.0, pv_w=800.0, battery_power_w=200.0)
    cand = Job(
        id="new",
        name="new",
        kind=JobKind.DEFERRABLE,
        power_w=120.0,
        energy_wh=200.0,
        deadline=NOW + timedelta(hours=20),
        state=JobState.PENDING,
    )
    ctx = AdmissionContext(now=NOW, forecast=fc, soc_pct=55.0, admitted=few, config=cfg)
    figures = {
        "slots": len(lp.plan),
        "lp_100_jobs_median_s": median_s(lambda: plan_detailed(NOW, fc, 55.0, many, cfg), 7),
        "greedy_100_jobs_median_s": median_s(
            lambda: plan_detailed(NOW, fc, 55.0, many, cfg, solver="greedy"), 7
        ),
        "lp_10_jobs_median_s": median_s(lambda: plan_detailed(NOW, fc, 55.0, few, cfg), 15),
        "lp_10_jobs_coarse_tail_median_s": median_s(
            lambda: plan_detailed(NOW, fc, 55.0, few, coarse), 15
        ),
        "greedy_10_jobs_median_s": median_s(
            lambda: plan_detailed(NOW, fc, 55.0, few, cfg, solver="greedy"), 15
        ),
        "admission_median_s": median_s(lambda: decide(ctx, cand, explain=False), 15),
        "shed_rules_decide_median_s": median_s(lambda: rules.decide(view, running, plan_few), 200),
    }
    greedy = plan_detailed(NOW, fc, 55.0, many, cfg, solver="greedy")
    served = {
        k: sum(
            float((s.job_w[j.id] * s_prob.dt_h).sum()) for j in many if j.kind is JobKind.DEFERRABLE
        )
        for k, s, s_prob in (
            ("lp", lp.solution, lp.problem),
            ("greedy", greedy.solution, greedy.problem),
        )
    }
    figures["deferrable_wh_planned_lp"] = round(served["lp"], 1)
    figures["deferrable_wh_planned_greedy"] = round(served["greedy"], 1)
    print(
        json.dumps(
            {k: (round(v, 5) if isinstance(v, float) else v) for k, v in figures.items()}, indent=2
        )
    )


if __name__ == "__main__":
    main()
