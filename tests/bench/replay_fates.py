"""Where one policy's on-time energy goes missing against another's, job by job.

    python tests/bench/replay_fates.py [--site lyngby] [--policies sunbox,perfect] [--start ISO] [--days N]

Runs two replay policies over the same scenario (field_data/replay; both at once, one process
each) and classes every deferrable job by its fate under each: on time, missed, not admitted,
or still open at the end (``appliance.replay.metrics.deferrable_fate``, the classing the replay
metrics count with), the first policy's best-effort jobs apart. Prints JSON:

- ``fates``: for each pair of fates (first policy / second), the jobs, the energy they asked
  for, and the energy the first policy spent on them (what a job that then missed wasted);
- ``lost_wh`` / ``gained_wh``: the energy the second policy finished on time and the first did
  not (and the other way round), by the first policy's fate;
- ``on_time_wh_by_month``: each policy's on-time energy by month of arrival (UTC).

This is how the issue-4 gap between sunbox and perfect foresight was read: which jobs, which
months, and whether they were turned away or accepted and then missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, get_args

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from appliance.clock import as_utc  # noqa: E402
from appliance.control.cycle import Policy  # noqa: E402
from appliance.replay import ReplayOptions  # noqa: E402
from appliance.replay.metrics import deferrable_fate  # noqa: E402
from appliance.replay.run import Replay  # noqa: E402
from appliance.replay.scenarios import load  # noqa: E402


def fates(site: str, policy: Policy, start: str | None, days: float) -> dict[str, dict[str, Any]]:
    """Every counted deferrable job of one replay: its fate, size, month and spent energy."""
    config, weather, jobs = load(site)
    first = weather.index[0].to_pydatetime()
    begin = as_utc(datetime.fromisoformat(start)) if start else first
    span = (weather.index[-1].to_pydatetime() - begin).total_seconds() / 86400.0
    replay = Replay(config, weather, jobs, ReplayOptions(start=begin, days=min(days, span), policy=policy))
    replay.run()
    out: dict[str, dict[str, Any]] = {}
    for job in replay.store.jobs.list(limit=10_000_000):
        fate = deferrable_fate(job, replay.end)
        if fate is None or job.submitted_at is None or job.submitted_at < replay.count_from:
            continue
        out[job.id] = {"fate": fate, "best_effort": job.best_effort, "energy_wh": job.energy_wh or 0.0,
                       "used_wh": job.energy_used_wh, "month": as_utc(job.submitted_at).strftime("%Y-%m")}
    return out


def compare(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]], names: tuple[str, str]) -> dict[str, Any]:
    pairs: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "energy_wh": 0.0, "used_wh": 0.0})
    lost: dict[str, float] = defaultdict(float)
    gained: dict[str, float] = defaultdict(float)
    months: dict[str, dict[str, float]] = defaultdict(lambda: {names[0]: 0.0, names[1]: 0.0})
    for jid in sorted(a.keys() & b.keys()):
        ja, jb = a[jid], b[jid]
        fate_a = ja["fate"] + (" (best effort)" if ja["best_effort"] else "")
        cell = pairs[f"{fate_a} / {jb['fate']}"]
        cell["jobs"] += 1
        cell["energy_wh"] += jb["energy_wh"]
        cell["used_wh"] += ja["used_wh"]
        if jb["fate"] == "on_time" and ja["fate"] != "on_time":
            lost[fate_a] += jb["energy_wh"]
        if ja["fate"] == "on_time" and jb["fate"] != "on_time":
            gained[jb["fate"]] += ja["energy_wh"]
        for name, job in zip(names, (ja, jb), strict=True):
            if job["fate"] == "on_time":
                months[job["month"]][name] += job["energy_wh"]
    return {
        "policies": list(names),
        "jobs": len(a.keys() & b.keys()),
        "fates": {k: {f: round(v, 1) for f, v in cell.items()} for k, cell in sorted(pairs.items())},
        "lost_wh": {k: round(v, 1) for k, v in sorted(lost.items())},
        "gained_wh": {k: round(v, 1) for k, v in sorted(gained.items())},
        "on_time_wh_by_month": {m: {n: round(v, 1) for n, v in row.items()} for m, row in sorted(months.items())},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", default="lyngby")
    ap.add_argument("--policies", default="sunbox,perfect",
                    help="two policies: the one to read, and the one to read it against")
    ap.add_argument("--start", default=None, help="ISO start (default: the weather's first moment)")
    ap.add_argument("--days", type=float, default=366.0)
    a = ap.parse_args()
    names: list[Policy] = []
    for name in a.policies.split(","):
        if name not in get_args(Policy):
            ap.error(f"unknown policy {name!r}: {', '.join(get_args(Policy))}")
        names.append(name)
    if len(names) != 2:
        ap.error("--policies takes two policies, e.g. sunbox,perfect")
    if a.days <= 0:
        ap.error("--days must be positive")
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(fates, a.site, name, a.start, a.days) for name in names]
        first, second = (r.result() for r in runs)
    print(json.dumps(compare(first, second, (names[0], names[1])), indent=2))


if __name__ == "__main__":
    main()
