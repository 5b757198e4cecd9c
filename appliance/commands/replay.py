"""``sunbox replay``: the box's real planner and control code over measured weather, in-process."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from appliance.commands.common import CommandError, config_from, print_json
from appliance.replay import ReplayError, ReplayOptions, run_replay


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("replay", parents=[common],
                       help="replay field data through the real planner and control code (virtual clock)")
    p.add_argument("--weather", required=True, metavar="FILE", help="field-data CSV with measured irradiance")
    p.add_argument("--jobs", required=True, metavar="FILE", help="jobs file (JSON lines)")
    p.add_argument("--start", default=None, help="ISO 8601 with offset (default: start of the weather file)")
    p.add_argument("--days", type=float, default=None, help="days to replay (default: to the end of the file)")
    p.add_argument("--policy", choices=["sunbox", "perfect", "threshold"], default="sunbox")
    p.add_argument("--heat-routing", choices=["on", "off"], default="on")
    p.add_argument("--step", type=int, default=300, metavar="SECONDS", help="replay step (default 300)")
    p.add_argument("--warmup-days", type=float, default=0.0,
                   help="days before --start replayed without counting (the forecaster learns)")
    p.add_argument("--forecast-weather", default=None, metavar="FILE",
                   help="a weather forecast feed (field-data CSV) the sunbox policy reads, as a box reads the "
                        "feeds its link brings (default: none, the offline forecast)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from appliance.solar.weather_file import WeatherFileError, read_weather_file
    from appliance.workloads.streams import StreamError, read_jsonl, record_to_job

    config = config_from(args)
    try:
        weather = read_weather_file(args.weather, capacity_w=config.array.dc_kw * 1000)
    except (WeatherFileError, OSError) as exc:
        raise CommandError(f"--weather: {exc}", 2) from None
    feed = None
    if args.forecast_weather is not None:
        try:
            feed = read_weather_file(args.forecast_weather, capacity_w=config.array.dc_kw * 1000)
        except (WeatherFileError, OSError) as exc:
            raise CommandError(f"--forecast-weather: {exc}", 2) from None
        if args.policy != "sunbox":
            raise CommandError("--forecast-weather is read by the sunbox policy only", 2)
    try:
        jobs = [record_to_job(r) for r in read_jsonl(args.jobs)]
    except (StreamError, OSError, ValueError) as exc:
        raise CommandError(f"--jobs: {exc}", 2) from None
    if args.start is not None:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise CommandError(f"--start {args.start!r} is not ISO 8601", 2) from None
        if start.tzinfo is None:
            raise CommandError("--start needs a UTC offset", 2)
    else:
        start = weather.index[0].to_pydatetime()
    start = start.astimezone(UTC)
    last = weather.index[-1].to_pydatetime()
    days = args.days if args.days is not None else (last - start).total_seconds() / 86400.0
    if days <= 0:
        raise CommandError("nothing to replay: --days must be positive and --start before the data ends", 2)
    if args.step < 60 or args.step > 3600:
        raise CommandError("--step must be within 60..3600 seconds", 2)
    opts = ReplayOptions(start=start, days=days, policy=args.policy, heat_routing=args.heat_routing == "on",
                         step_s=args.step, warmup_days=args.warmup_days)
    try:
        result = run_replay(config, weather, jobs, opts, forecast_weather=feed)
    except ReplayError as exc:
        raise CommandError(str(exc), 2) from None
    if args.forecast_weather is not None:
        result["forecast_weather"] = str(args.forecast_weather)
    if args.json:
        print_json(result)
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0
