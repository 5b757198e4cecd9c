"""``sunbox forecast``: what the sun will give, and how far to trust it.

``sunbox forecast [--start ISO] [--hours 48] [--step 15min] [--weather FILE] [--history FILE]
[--json]`` prints the configured array's AC power per slot with P10/P50/P90 and the energy per
local day. It learns from, in order of preference: ``--history FILE`` (field-data CSV with
``pv_ac_w``), or what the box saved in its data directory (the learned model, else the
``pv_power_w`` telemetry); with none of them it forecasts from its prior.

``sunbox forecast backtest --measured FILE [--weather FILE] [--horizon 24h] [--json]`` replays
history day by day and reports the forecast's accuracy against the measured power.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from appliance.clock import SystemClock
from appliance.commands.common import CommandError, config_from, print_json
from appliance.config import ConfigError, SunboxConfig
from appliance.solar.backtest import BacktestResult, run_backtest
from appliance.solar.forecast import measured_pv
from appliance.solar.forecaster import Forecaster, load_model
from appliance.solar.weather_file import WeatherFileError, read_weather_file
from appliance.state import PowerForecast

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hour|hours|d|day|days)?\s*$", re.IGNORECASE
)
_UNIT_S = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
T = TypeVar("T")


def parse_duration_s(text: str, default_unit: str) -> float:
    """'15min', '1h', '24h', '2d' or a bare number in ``default_unit`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration (e.g. 15min, 1h, 48h)")
    return float(m.group(1)) * _UNIT_S[(m.group(2) or default_unit).lower()]


def _step_min(text: str) -> int:
    seconds = parse_duration_s(text, "min")
    minutes = seconds / 60.0
    if minutes != int(minutes) or not 1 <= minutes <= 60:
        raise argparse.ArgumentTypeError(f"step '{text}' must be whole minutes from 1 min to 1 h")
    return int(minutes)


def _hours(text: str) -> float:
    hours = parse_duration_s(text, "h") / 3600.0
    if not 0 < hours <= 240:
        raise argparse.ArgumentTypeError(
            f"'{text}': the horizon must be more than 0 and at most 240 h"
        )
    return hours


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    fc = subparsers.add_parser(
        "forecast",
        parents=[common],
        help="PV power forecast with P10/P50/P90; 'backtest' scores it on measured history",
        description="AC power forecast of the configured array per slot with P10/P50/P90 and "
        "energy per local day.",
    )
    fc.add_argument(
        "--start",
        metavar="ISO",
        default=None,
        help="issue time, ISO 8601 (without an offset: the site's local time); default now",
    )
    fc.add_argument(
        "--hours",
        metavar="H",
        type=_hours,
        default=None,
        help="horizon (e.g. 48, 48h, 2d; default [forecast] horizon_h)",
    )
    fc.add_argument(
        "--step",
        metavar="STEP",
        type=_step_min,
        default=None,
        help="slot length (e.g. 15min, 1h; default [forecast] step_min)",
    )
    fc.add_argument(
        "--weather",
        metavar="FILE",
        default=None,
        help="weather forecast, field-data CSV (default [forecast] weather_file)",
    )
    fc.add_argument(
        "--history",
        metavar="FILE",
        default=None,
        help="history to learn from: field-data CSV with pv_ac_w (or measured irradiance)",
    )
    fc.add_argument("--json", action="store_true", help="print JSON")
    fc.set_defaults(func=_forecast)
    sub = fc.add_subparsers(dest="forecast_command", metavar="ACTION")
    bt = sub.add_parser(
        "backtest",
        parents=[common],
        help="replay measured history day by day and score the forecast",
        description="At 00:00 local each day forecast the horizon from what came before, then "
        "learn that day's measurements; report MAE, RMSE, bias, skill against "
        "smart persistence, P10/P90 exceedance and pinball loss on daylight slots.",
    )
    bt.add_argument(
        "--measured",
        metavar="FILE",
        required=True,
        help="field-data CSV with pv_ac_w (or measured irradiance: the array is modelled)",
    )
    bt.add_argument("--weather", metavar="FILE", default=None, help="weather feed, field-data CSV")
    bt.add_argument(
        "--horizon", metavar="H", type=_hours, default=24.0, help="forecast horizon (default 24h)"
    )
    bt.add_argument("--json", action="store_true", help="print JSON")
    bt.set_defaults(func=_backtest)


# ---------------------------------------------------------------------- helpers


def _config(args: argparse.Namespace) -> SunboxConfig:
    config = config_from(args)
    try:
        Forecaster(
            config
        )  # physics choices (e.g. an unknown CEC module) fail here, as config errors
    except ValueError as exc:
        raise ConfigError(f"config error: {exc}") from None
    return config


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except (WeatherFileError, ValueError) as exc:
        raise CommandError(str(exc).splitlines()[0]) from None


def _read(path: str, capacity_w: float | None = None) -> pd.DataFrame:
    return _guard(lambda: read_weather_file(path, capacity_w=capacity_w))


def _issue_time(text: str | None, config: SunboxConfig) -> datetime:
    if text is None:
        return SystemClock().now()
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"--start '{text}' is not an ISO 8601 time (e.g. 2024-06-21T06:00+03:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=config.site.zone)
    return moment.astimezone(UTC)


def _history_forecaster(
    args: argparse.Namespace, config: SunboxConfig, now: datetime
) -> Forecaster:
    """A forecaster that has learned from the best history available (see module doc)."""
    if args.history:
        frame = _read(args.history, config.array.dc_kw * 1000.0)
        series, _ = _guard(lambda: measured_pv(config, frame))
        return _learned(config, series, now)
    db = Path(args.data_dir) / "sunbox.db"
    if db.is_file():
        from appliance.store import Store

        store = Store(db)
        try:
            model = load_model(store, config, extend_ahead_s=0.0)
            if model.restore_note == "restored":
                return model
            start = now - timedelta(days=config.forecast.history_days)
            rows = store.telemetry.series("pv_power_w", start, now)
        finally:
            store.close()
        if rows:
            series = pd.Series([v for _, v in rows], index=pd.DatetimeIndex([t for t, _ in rows]))
            return _learned(config, series, now)
    return Forecaster(config, extend_ahead_s=0.0)


def _learned(config: SunboxConfig, series: pd.Series, now: datetime) -> Forecaster:
    fc = Forecaster(config, extend_ahead_s=0.0)
    index = pd.DatetimeIndex(series.index)
    before = np.asarray(index < pd.Timestamp(now))
    fc.observe(index[before], series.to_numpy(dtype=float)[before])
    fc.flush(now)
    fc.learn()
    return fc


def _days(fcst: PowerForecast, config: SunboxConfig) -> list[dict[str, Any]]:
    step_h = fcst.step_s / 3600.0
    local = pd.DatetimeIndex(fcst.times()).tz_convert(config.site.tz)
    frame = pd.DataFrame(
        {"p10": fcst.p10_w * step_h, "p50": fcst.p50_w * step_h, "p90": fcst.p90_w * step_h},
        index=local,
    )
    out = []
    for day, grp in frame.groupby(frame.index.date):
        out.append(
            {
                "date": day.isoformat(),
                "p10_wh": round(float(grp["p10"].sum()), 1),
                "p50_wh": round(float(grp["p50"].sum()), 1),
                "p90_wh": round(float(grp["p90"].sum()), 1),
                "slots": int(len(grp)),
            }
        )
    return out


# ---------------------------------------------------------------------- forecast


def _forecast(args: argparse.Namespace) -> int:
    config = _config(args)
    now = _issue_time(args.start, config)
    weather_path = args.weather or config.forecast.weather_file
    weather = _read(weather_path) if weather_path else None
    fc = _history_forecaster(args, config, now)
    fcst = _guard(lambda: fc.forecast(now, weather, hours=args.hours, step_min=args.step))
    days = _days(fcst, config)
    if args.json:
        print_json(
            {
                "site": config.site.name,
                "tz": config.site.tz,
                "issued_at": fcst.issued_at.isoformat(),
                "step_min": fcst.step_s // 60,
                "source": fcst.source,
                "weather": weather_path,
                "slots": [
                    {
                        "time": t.isoformat(),
                        "p10_w": round(float(a), 1),
                        "p50_w": round(float(b), 1),
                        "p90_w": round(float(c), 1),
                    }
                    for t, a, b, c in zip(
                        fcst.times(), fcst.p10_w, fcst.p50_w, fcst.p90_w, strict=True
                    )
                ],
                "days": days,
                "meta": dict(fcst.meta),
            }
        )
        return 0
    zone = config.site.zone
    print(
        f"{config.site.name}: {config.array.dc_kw:g} kWp {config.array.tracker.replace('_', '-')}, "
        f"issued {fcst.issued_at.astimezone(zone):%Y-%m-%d %H:%M %Z}, source {fcst.source}, "
        f"scale {fcst.meta.get('scale', 1.0)}"
    )
    peak = max(float(fcst.p90_w.max()), 1.0)
    print(f"{'local time':16}  {'P10 W':>8} {'P50 W':>8} {'P90 W':>8}")
    for t, a, b, c in zip(fcst.times(), fcst.p10_w, fcst.p50_w, fcst.p90_w, strict=True):
        bar = "#" * int(round(20 * b / peak))
        print(f"{t.astimezone(zone):%Y-%m-%d %H:%M}  {a:8.0f} {b:8.0f} {c:8.0f}  {bar}")
    print(f"{'local day':16}  {'P10 kWh':>8} {'P50 kWh':>8} {'P90 kWh':>8}")
    for d in days:
        print(
            f"{d['date']:16}  {d['p10_wh'] / 1000:8.2f} {d['p50_wh'] / 1000:8.2f} "
            f"{d['p90_wh'] / 1000:8.2f}"
            + ("  (part of the day)" if d["slots"] * fcst.step_s < 86400 - fcst.step_s else "")
        )
    return 0


# ---------------------------------------------------------------------- backtest


def _backtest(args: argparse.Namespace) -> int:
    config = _config(args)
    measured = _read(args.measured, config.array.dc_kw * 1000.0)
    weather = _read(args.weather) if args.weather else None
    result = _guard(lambda: run_backtest(config, measured, weather=weather, horizon_h=args.horizon))
    if args.json:
        print_json(result.as_dict())
        return 0
    _print_backtest(config, result)
    return 0


def _print_backtest(config: SunboxConfig, r: BacktestResult) -> None:
    print(
        f"{config.site.name}: {r.days} days, horizon {r.horizon_h:g} h, {r.step_min} min slots, "
        f"{r.slots} daylight slots scored; measured: {r.measured_source}; "
        f"weather: {r.weather or 'none'}"
    )
    rows = [
        ("MAE", f"{r.mae_w:.0f} W  (nMAE {r.nmae:.1%} of {r.capacity_w / 1000:g} kWp)"),
        ("RMSE", f"{r.rmse_w:.0f} W  (smart persistence {r.rmse_smart_persistence_w:.0f} W)"),
        ("bias", f"{r.bias_w:+.0f} W  (mean measured {r.mean_measured_w:.0f} W)"),
        ("skill vs smart persistence", f"{r.skill_vs_smart_persistence:.3f}  (P50)"),
        ("", f"{r.skill_of_mean_vs_smart_persistence:.3f}  (expected value)"),
        ("P10 exceedance", f"{r.p10_exceedance:.1%}  (calibrated: 10 %)"),
        ("P90 exceedance", f"{r.p90_exceedance:.1%}  (calibrated: 10 %)"),
        ("pinball loss", f"{r.pinball_loss:.0f} W"),
    ]
    for name, value in rows:
        print(f"  {name:27} {value}")
