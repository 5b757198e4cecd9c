"""Benchmark and acceptance figures: a year of replay at 5-minute steps, three policies, two sites.

    python tests/bench/replay.py [--sites lyngby,miami] [--policies sunbox,perfect,threshold] [--days N]
                                 [--feed] [--calibrated] [--repeat N]

Scenarios from field_data/replay (DTU Lyngby 2016 measured sky; pvlib's Miami TMY2), each with
a job stream built from the real traces (PlanetLab VM-days, Azure LLM inference arrivals) and
sized so the year's PV is about 1.5x the fixed and deferrable demand. Each policy runs in its
own process, one after the other (no two replays share the CPU). Prints JSON: every replay's
metrics, its wall time, and the issue's acceptance ratios per site.

``--feed`` adds a run of the sunbox policy that also reads a day-ahead weather feed, as a box does
when its link brings one. No archive of real forecasts exists for these years, so the feed is
synthetic (appliance.solar.derived_files.nwp_like_feeds: the measured hourly clear-sky index,
smoothed over hours and perturbed by AR(1) errors; Lyngby's is the shipped "good" backtest
feed). Its acceptance figures are reported apart, under ``with_feed``.

``--calibrated`` adds a run of the sunbox policy with ``forecast.running_calibration`` on (the
planner reads the scenarios at the levels the box's own measurements calibrated; off by
default). Its acceptance figures are reported under ``calibrated``.

``--repeat N`` runs every replay N times (one after another) and reports its shortest wall time,
the usual way to time on a shared machine, with every run's wall and CPU time under
``wall_s_runs`` and ``cpu_s_runs``. The replays are deterministic: a repeat whose figures differ
in anything but time stops the bench with an error. ``cpu_s`` is the replay loop's CPU time: it
leaves out time other processes held the core, but not a shared host's slower CPU (on this
machine the two stayed within 0.1 s while the wall of one replay ranged 68-75 s).
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
from appliance.paths import field_data_dir
from appliance.replay import ReplayOptions, run_replay
from appliance.replay.scenarios import load
from appliance.solar.derived_files import feed_rrmse, nwp_like_feeds
from appliance.solar.weather_file import read_weather_file
name, policy, days = sys.argv[1], sys.argv[2], float(sys.argv[3])
config, weather, jobs = load(name)
start = weather.index[0].to_pydatetime()
span = (weather.index[-1].to_pydatetime() - start).total_seconds() / 86400.0
feed = None
if policy == "sunbox+calibrated":
    policy = "sunbox"
    config = config.model_copy(update={"forecast": config.forecast.model_copy(update={"running_calibration": True})})
if policy == "sunbox+feed":
    policy = "sunbox"
    shipped = field_data_dir() / "solar" / "dtu_lyngby_2016_feed_good_1h.csv.gz"
    feed = (read_weather_file(shipped, capacity_w=config.array.dc_kw * 1000) if name == "lyngby"
            else nwp_like_feeds(weather, site=config.site)["good"])
out = run_replay(config, weather, jobs, ReplayOptions(start=start, days=min(days, span), policy=policy),
                 forecast_weather=feed)
if feed is not None:
    out["feed_ghi_rrmse"] = round(feed_rrmse(feed, weather), 3)
print(json.dumps(out))
"""


TIMES = ("wall_s", "cpu_s")


def replay(name: str, policy: str, days: float) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", ONE, name, policy, str(days)], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout))


def timed(name: str, policy: str, days: float, repeat: int) -> dict[str, Any]:
    """The replay ``repeat`` times: its figures (identical every time) with the shortest wall."""
    runs = [replay(name, policy, days) for _ in range(repeat)]
    figures = [{k: v for k, v in r.items() if k not in TIMES} for r in runs]
    for n, other in enumerate(figures[1:], start=2):
        if other != figures[0]:
            changed = sorted(k for k in other if other[k] != figures[0].get(k))
            raise SystemExit(f"{name} {policy}: run {n} differs from run 1 in {changed}: not deterministic")
    best = dict(min(runs, key=lambda r: r["wall_s"]))
    if repeat > 1:
        best["wall_s_runs"] = [r["wall_s"] for r in runs]
        best["cpu_s_runs"] = [r["cpu_s"] for r in runs]
    return best


def acceptance(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    s, p, t = runs.get("sunbox"), runs.get("perfect"), runs.get("threshold")
    out: dict[str, Any] = {}
    if s is not None:
        out["sunbox_reserve_violation_slots"] = s["reserve_violation_slots"]
        out["sunbox_deadline_misses_pct_of_admitted"] = round(
            100.0 * s["deadline_misses"] / max(1, s["jobs_admitted"]), 2)
        out["sunbox_wall_s"] = s["wall_s"]
        out["sunbox_cpu_s"] = s["cpu_s"]
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
    ap.add_argument("--feed", action="store_true", help="also run sunbox with a synthetic day-ahead feed")
    ap.add_argument("--calibrated", action="store_true",
                    help="also run sunbox with forecast.running_calibration on")
    ap.add_argument("--repeat", type=int, default=1, help="run each replay N times, report the shortest")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    report: dict[str, Any] = {}
    for site in a.sites.split(","):
        policies = (a.policies.split(",") + (["sunbox+feed"] if a.feed else [])
                    + (["sunbox+calibrated"] if a.calibrated else []))
        runs = {pol: timed(site, pol, a.days, a.repeat) for pol in policies}
        report[site] = {"runs": runs, "acceptance": acceptance(runs)}
        if a.feed:
            with_feed = {**runs, "sunbox": runs["sunbox+feed"]}
            report[site]["with_feed"] = acceptance(with_feed)
        if a.calibrated:
            report[site]["calibrated"] = acceptance({**runs, "sunbox": runs["sunbox+calibrated"]})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
