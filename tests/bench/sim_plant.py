"""Benchmark: cost of the simulated plant, which replay steps a year at 5-minute steps.

Prints JSON: microseconds per ``Plant.step`` (goal well under 50), the time to prepare a year
of PV in one vectorised pass, the whole simulated year, and the year stepped with lazily
computed weekly chunks instead (what the live simulator does).

    .venv/bin/python tests/bench/sim_plant.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.config import load_config  # noqa: E402
from appliance.sim.plant import Plant  # noqa: E402

STEP_S = 300.0
START = datetime(2024, 1, 1, tzinfo=UTC)


def year(prepare: bool) -> dict[str, float]:
    config = load_config(None, environ={})
    config = config.model_copy(
        update={"sim": config.sim.model_copy(update={"pv_resolution_s": STEP_S})}
    )
    t0 = time.perf_counter()
    plant = Plant(config, START)
    if prepare:
        plant.prepare(START, START + timedelta(days=366))
    t1 = time.perf_counter()
    steps = int(365 * 86400 / STEP_S)
    now = START
    for i in range(steps):
        plant.step(now, STEP_S, 300.0 if (i % 288) > 180 else 60.0)
        now += timedelta(seconds=STEP_S)
    t2 = time.perf_counter()
    c = plant.snapshot.counters
    return {
        "prepare_s": round(t1 - t0, 3),
        "steps": steps,
        "step_us": round((t2 - t1) / steps * 1e6, 2),
        "year_total_s": round(t2 - t0, 3),
        "pv_available_kwh": round(c.pv_available_wh / 1000, 1),
        "unmet_kwh": round(c.unmet_wh / 1000, 2),
        "balance_error_wh": c.balance_error_wh(),
    }


def main() -> None:
    prepared = year(prepare=True)
    lazy = year(prepare=False)
    print(
        json.dumps(
            {
                "plant_step_us": prepared["step_us"],
                "goal_step_us": 50,
                "year_prepared": prepared,
                "year_lazy_weekly_chunks": lazy,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
