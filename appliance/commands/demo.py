"""``sunbox demo`` (simulated devices on loopback + the daemon) and ``sunbox run`` (real hardware).

Both start the same daemon; the demo also starts the simulator servers on 127.0.0.1 and feeds
them the compute node's power, so the simulated battery feels the jobs the box runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from appliance.clock import Clock, ScaledClock, SystemClock
from appliance.commands.common import CommandError, config_from, data_dir, open_store
from appliance.config import ConfigError, SunboxConfig
from appliance.daemon import Daemon, ExtraLoop
from appliance.devices.gateway import ModbusGateway
from appliance.store import Store
from appliance.workloads.process import ProcessExecutor


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser("demo", parents=[common],
                          help="simulated devices over Modbus TCP on 127.0.0.1 + the daemon + dashboard")
    _run_options(demo)
    demo.add_argument("--speed", type=float, default=1.0, help="virtual clock N x faster (default 1)")
    demo.add_argument("--start", default=None, help="virtual start time, ISO 8601 with offset (default now)")
    demo.add_argument("--weather", metavar="FILE", default=None,
                      help="field-data CSV: the simulator uses measured irradiance instead of clear sky")
    demo.set_defaults(func=lambda args: _main(args, simulate=True))
    run = sub.add_parser("run", parents=[common], help="the daemon on real hardware (as on a balena device)")
    _run_options(run)
    run.set_defaults(func=lambda args: _main(args, simulate=False))


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop cleanly after this many wall-clock seconds (default: until Ctrl-C)")
    p.add_argument("--port", type=int, default=None, help="dashboard/API port on the API host (default [api] port)")
    p.add_argument("--host", default=None, help="dashboard/API bind address (default [api] host)")
    p.add_argument("--no-api", action="store_true", help="do not serve the dashboard/API")
    p.add_argument("--hub", metavar="URL", default=None, help="sync to this hub (store and forward)")
    p.add_argument("--forecast-weather", metavar="FILE", default=None,
                   help="a weather FORECAST file (field-data CSV) for the forecaster, e.g. an NWP feed")


@dataclass
class Runtime:
    """What a running box is made of, for the optional parts to plug into."""

    config: SunboxConfig
    store: Store
    clock: Clock
    daemon: Daemon
    data_dir: Path
    args: argparse.Namespace


# Optional parts (API, sync, fleet) register a starter here: given the runtime, return an
# extra daemon loop (or None when not configured). Kept as a list so that `run.py` does not
# import parts that are absent from a build.
Starter = Callable[[Runtime], ExtraLoop | None]
STARTERS: list[Starter] = []

from appliance.api.serve import api_starter  # noqa: E402  (dashboard + API)
from appliance.starters import fleet_starter, sync_starter  # noqa: E402

STARTERS.extend([api_starter, sync_starter, fleet_starter])


def _parse_start(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--start {text!r} is not ISO 8601 (e.g. 2026-06-21T06:00+03:00)", 2) from None
    if moment.tzinfo is None:
        raise CommandError("--start needs a UTC offset, e.g. 2026-06-21T06:00+03:00", 2)
    return moment.astimezone(UTC)


def _weather(path: str | None, config: SunboxConfig) -> pd.DataFrame | None:
    if path is None:
        return None
    from appliance.solar.weather_file import WeatherFileError, read_weather_file

    try:
        return read_weather_file(path, capacity_w=config.array.dc_kw * 1000)
    except (WeatherFileError, OSError) as exc:
        raise CommandError(f"weather file: {exc}", 2) from None


def _main(args: argparse.Namespace, *, simulate: bool) -> int:
    config = config_from(args)
    if args.port is not None:
        config.api.port = args.port
    if args.host is not None:
        config.api.host = args.host
    if args.hub is not None:
        config.sync.hub_url = args.hub
    if getattr(args, "speed", 1.0) <= 0:
        raise CommandError("--speed must be positive", 2)
    if args.duration is not None and args.duration <= 0:
        raise CommandError("--duration must be positive", 2)
    if simulate and any(d.transport == "rtu" for d in config.devices):
        raise CommandError("the demo simulates Modbus TCP devices only; this config has RTU devices", 2)
    weather = _weather(getattr(args, "weather", None), config) if simulate else None
    forecast_weather = _weather(args.forecast_weather, config)
    return asyncio.run(_serve(args, config, weather, forecast_weather, simulate))


async def _serve(args: argparse.Namespace, config: SunboxConfig, weather: pd.DataFrame | None,
                 forecast_weather: pd.DataFrame | None, simulate: bool) -> int:
    """Run the box. ``weather`` drives the simulated world (what the sky really does);
    ``forecast_weather`` is what the box is told it will do: never the same thing."""
    speed = getattr(args, "speed", 1.0)
    clock: Clock = ScaledClock(_parse_start(getattr(args, "start", None)), speed) if simulate and (
        speed != 1.0 or getattr(args, "start", None)) else SystemClock()
    ddir = data_dir(args)
    store = open_store(args)
    executor = ProcessExecutor(config.compute, ddir, clock)
    daemon_ref: list[Daemon] = []

    def node_power_w() -> float:
        return daemon_ref[0].node_power_w() if daemon_ref else config.compute.idle_w

    sims = None
    if simulate:
        from appliance.sim.server import SimBuildError, build_simulators

        try:
            sims = build_simulators(config, clock, compute_power_w=node_power_w, weather=weather)
        except SimBuildError as exc:
            raise ConfigError(f"config error: {exc}") from None
        try:
            await sims.start()
        except OSError as exc:
            ports = sorted({d.port for d in config.devices})
            raise CommandError(f"cannot start the simulated devices on 127.0.0.1 port(s) {ports}: "
                               f"{exc.strerror or exc}", 1) from None
    gateway = ModbusGateway(config, clock)
    daemon = Daemon(config, store, clock, gateway, executor, ddir, forecast_weather=forecast_weather)
    daemon_ref.append(daemon)
    runtime = Runtime(config, store, clock, daemon, ddir, args)
    for starter in STARTERS:
        extra = starter(runtime)
        if extra is not None:
            daemon.extra_loops.append(extra)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)

    what = "Sunbox demo" if simulate else "Sunbox"
    print(f"{what}: site {config.site.name} ({config.site.lat:g}, {config.site.lon:g}, {config.site.tz}), "
          f"clock x{clock.speed:g}")
    if sims is not None:
        for line in sims.describe():
            print(f"  simulated {line}")
    print(f"  store:     {store.path}")
    print(f"  status:    sunbox status --data-dir {ddir}" + (f" --config {args.config}" if args.config else ""))
    if not args.no_api:
        print(f"  dashboard: http://{config.api.host}:{config.api.port}/")
    print("  stop with Ctrl-C" + (f" (or after {args.duration:g} s)" if args.duration else ""), flush=True)
    try:
        await daemon.run(stop)
    finally:
        if sims is not None:
            await sims.stop()
        store.close()
    print(f"{what} stopped after {daemon.stats.cycles} control cycles.")
    sys.stdout.flush()
    return 0
