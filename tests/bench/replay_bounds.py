"""How far above the threshold gate can any policy get? Perfect foresight against threshold,
over a range of box designs.

    python tests/bench/replay_bounds.py [--sites lyngby,miami] [--boxes 5000/30,2500/30,...] [--days N]

Issue 4 asks sunbox for at least 1.25x the threshold gate's on-time deferrable energy and at
least 0.95x perfect foresight's. Perfect foresight (the same planner given the actual future PV)
is the limit of what a forecast can buy, so where perfect/threshold is under 1.25, the first goal
cannot be met by any forecast. This runs both policies over each scenario of field_data/replay
with the battery's capacity and reserve replaced (``capacity_wh/reserve_pct``; the shipped boxes
are 5000/30), the two policies of one box side by side (one process each), and prints JSON: each
box's on-time energy for both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pydantic import ValidationError  # noqa: E402

from appliance.config import SunboxConfig, load_config  # noqa: E402
from appliance.control.cycle import Policy  # noqa: E402
from appliance.replay import ReplayOptions, run_replay  # noqa: E402
from appliance.replay.scenarios import SCENARIOS, load  # noqa: E402

GOAL_OVER_THRESHOLD = 1.25
DEFAULT_BOXES = "5000/30,2500/30,10000/30,5000/20,5000/40"


def box_config(config: SunboxConfig, capacity_wh: float, reserve_pct: float) -> SunboxConfig:
    """The scenario's config with another battery, validated as a config file would be."""
    data = config.model_dump()
    data["battery"].update(capacity_wh=capacity_wh, reserve_pct=reserve_pct)
    return SunboxConfig.model_validate(data)


def on_time_wh(site: str, policy: Policy, capacity_wh: float, reserve_pct: float, days: float) -> float:
    config, weather, jobs = load(site)
    config = box_config(config, capacity_wh, reserve_pct)
    start = weather.index[0].to_pydatetime()
    span = (weather.index[-1].to_pydatetime() - start).total_seconds() / 86400.0
    result = run_replay(config, weather, jobs, ReplayOptions(start=start, days=min(days, span), policy=policy))
    return float(result["deferrable_on_time_wh"])


def parse_boxes(text: str) -> list[tuple[float, float]]:
    boxes = []
    for item in text.split(","):
        capacity, _, reserve = item.partition("/")
        try:
            boxes.append((float(capacity), float(reserve)))
        except ValueError:
            raise SystemExit(f"--boxes: {item!r} is not capacity_wh/reserve_pct, e.g. 5000/30") from None
    return boxes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", default="lyngby,miami")
    ap.add_argument("--boxes", default=DEFAULT_BOXES, help="capacity_wh/reserve_pct, comma separated")
    ap.add_argument("--days", type=float, default=366.0)
    a = ap.parse_args()
    if a.days <= 0:
        ap.error("--days must be positive")
    boxes = parse_boxes(a.boxes)
    sites = a.sites.split(",")
    for site in sites:  # every site and design checked before the first year is spent
        if site not in SCENARIOS:
            ap.error(f"--sites: unknown scenario {site!r} (known: {', '.join(SCENARIOS)})")
        config = load_config(SCENARIOS[site].paths()[0], environ={})
        for capacity_wh, reserve_pct in boxes:
            try:
                box_config(config, capacity_wh, reserve_pct)
            except ValidationError as exc:
                reason = "; ".join(str(e["msg"]) for e in exc.errors())
                raise SystemExit(f"--boxes {capacity_wh:g}/{reserve_pct:g} at {site}: {reason}") from None
    report: dict[str, Any] = {"goal_sunbox_over_threshold": GOAL_OVER_THRESHOLD, "boxes": []}
    policies: tuple[Policy, Policy] = ("perfect", "threshold")
    with ProcessPoolExecutor(max_workers=2) as pool:
        for site in sites:
            for capacity_wh, reserve_pct in boxes:
                perfect, threshold = (
                    pool.submit(on_time_wh, site, policy, capacity_wh, reserve_pct, a.days)
                    for policy in policies)
                p_wh, t_wh = perfect.result(), threshold.result()
                row = {"site": site, "capacity_wh": capacity_wh, "reserve_pct": reserve_pct,
                       "perfect_on_time_wh": round(p_wh, 1), "threshold_on_time_wh": round(t_wh, 1),
                       "perfect_over_threshold": round(p_wh / max(t_wh, 1.0), 3)}
                report["boxes"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)  # progress: a year takes a minute
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
