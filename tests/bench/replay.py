"""Benchmark and acceptance figures: a year of replay at 5-minute steps, three policies, two sites.

    python tests/bench/replay.py [--sites lyngby,miami] [--policies sunbox,perfect,threshold] [--days N]

Scenarios from field_data/replay (DTU Lyngby 2016 measured sky; pvlib's Miami TMY2), each with
a job stream built from the real traces (PlanetLab VM-days, Azure LLM inference arrivals) and
sized so the year's PV is about 1.5x the fixed and deferrable demand. Each policy runs in its
own process, one after the other (no two replays share the CPU). Prints JSON: every replay's
metrics, its wall time, and the issue's acceptance ratios per site.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

ONE = """
import json, sys
from appliance.replay import ReplayOptions, run_replay
from appliance.replay.scenarios import load
name, policy, days = sys.argv[1], sys.argv[2], float(sys.argv[3])
config, weather, jobs = load(name)
start = weather.index[0].to_pydatetime()
span = (weather.index[-1].to_pydatetime() - start).total_seconds() / 86400.0
print(json.dumps(run_replay(config, weather, jobs, ReplayOptions(start=start, days=min(days, span), policy=policy))))
"""


def replay(name: str, policy: str, days: float) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", ONE, name, policy, str(days)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout))


def acceptance(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    s, p, t = runs.get("sunbox"), runs.get("perfect"), runs.get("threshold")
    out: dict[str, Any] = {}
    if s is not None:
        out["sunbox_reserve_violation_slots"] = s["reserve_violation_slots"]
        out["sunbox_deadline_misses_pct_of_admitted"] = round(
            100.0 * s["deadline_misses"] / max(1, s["jobs_admitted"]), 2)
        out["sunbox_wall_s"] = s["wall_s"]
    if s is not None and p is not None:
        out["sunbox_over_perfect_deferrable_on_time"] = round(
            s["deferrable_on_time_wh"] / max(1.0, p["deferrable_on_time_wh"]), 3)
        out["critical_uptime_sunbox_minus_perfect_points"] = round(
            s["critical_uptime_pct"] - p["critical_uptime_pct"], 3)
    if s is not None and t is not None:
        out["sunbox_over_threshold_deferrable_on_time"] = round(
            s["deferrable_on_time_wh"] / max(1.0, t["deferrable_on_time_wh"]), 3)
    out["goals"] = {"reserve_violation_slots": 0, "over_perfect": ">= 0.95", "over_threshold": ">= 1.25",
                    "critical_uptime_points": ">= -0.1", "misses_pct": "<= 1", "wall_s": "<= 60"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", default="lyngby,miami")
    ap.add_argument("--policies", default="sunbox,perfect,threshold")
    ap.add_argument("--days", type=float, default=366.0)
    a = ap.parse_args()
    report: dict[str, Any] = {}
    for site in a.sites.split(","):
        runs = {pol: replay(site, pol, a.days) for pol in a.policies.split(",")}
        report[site] = {"runs": runs, "acceptance": acceptance(runs)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
