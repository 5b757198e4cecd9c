"""``sunbox sim``: one simulated device on real Modbus, for technicians and tests.

Serves the configured site's physics (PV for its place and array, its battery, its loads) as a
SunSpec hybrid inverter (models 1, 101, 160, 124, 802) or a Victron GX (unit 100 + VE.Bus 227),
over TCP or an RTU serial line, until Ctrl-C or SIGTERM (exit 0). Faults can be set at start
(``--fault``) or at run time over Modbus through the service unit (247).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from datetime import datetime

from appliance.clock import Clock, ScaledClock, SystemClock, as_utc
from appliance.commands.common import CommandError, config_from
from appliance.sim import FAULT_NAMES, FaultKind, SimBuildError, SimulatorSet, build_simulators
from appliance.sim.plant import PlantSnapshot
from appliance.sim.server import standalone_config


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        "sim",
        parents=[common],
        help="run one simulated device (SunSpec or Victron) on Modbus TCP or RTU",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--map",
        choices=("sunspec", "victron"),
        default="sunspec",
        help="register layout (default sunspec)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=1502, help="TCP port (default 1502)")
    p.add_argument(
        "--unit-id",
        type=_unit_id,
        default=None,
        help="unit id of the device (default 1 for SunSpec, 100 for the Victron GX)",
    )
    p.add_argument(
        "--fault", choices=FAULT_NAMES, default=None, help="start with this fault active"
    )
    p.add_argument(
        "--fault-duration",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="clear the --fault by itself after this many (clock) seconds",
    )
    p.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="virtual clock speed (600 = a day in 2.4 minutes)",
    )
    p.add_argument(
        "--start",
        type=_moment,
        default=None,
        metavar="ISO",
        help="virtual start time, e.g. 2024-06-21T06:00+03:00 (default now)",
    )
    p.add_argument(
        "--compute-w",
        type=_non_negative,
        default=None,
        metavar="W",
        help="compute node power (default its idle power from the config)",
    )
    p.add_argument(
        "--serial", default=None, metavar="DEV", help="serve Modbus RTU on this serial device"
    )
    p.add_argument("--baud", type=int, default=9600, help="RTU baud rate (default 9600)")
    p.add_argument(
        "--status-every",
        type=_positive,
        default=10.0,
        metavar="SECONDS",
        help="wall seconds between status lines (default 10)",
    )
    p.set_defaults(func=run)


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} outside 1..65535")
    return value


def _unit_id(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 246:
        raise argparse.ArgumentTypeError(
            f"unit id {value} outside 1..246 (247 is the service unit)"
        )
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


def _moment(text: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    config = standalone_config(
        config_from(args),
        map_name=args.map,
        host=args.host,
        port=args.port,
        unit_id=args.unit_id,
        serial_port=args.serial,
        baudrate=args.baud,
    )
    clock: Clock
    if args.start is None and args.speed == 1.0:
        clock = SystemClock()
    else:
        clock = ScaledClock(args.start or SystemClock().now(), args.speed)
    compute_w = args.compute_w if args.compute_w is not None else config.compute.idle_w
    try:
        sims = build_simulators(
            config,
            clock,
            compute_power_w=lambda: compute_w,
            serial_ports={args.serial: args.serial} if args.serial else None,
        )
    except SimBuildError as exc:
        raise CommandError(str(exc)) from None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    return asyncio.run(_serve(sims, args, clock))


async def _serve(sims: SimulatorSet, args: argparse.Namespace, clock: Clock) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sims.start()
    except OSError as exc:
        raise CommandError(str(exc)) from None
    try:
        if args.fault:
            sims.inject(FaultKind.parse(args.fault), duration_s=args.fault_duration)
            await sims.settle()
        zone = sims.world.config.site.zone
        print(
            f"sunbox sim: {sims.world.config.site.name}, clock x{clock.speed:g} from "
            f"{clock.now().astimezone(zone):%Y-%m-%d %H:%M %Z}",
            flush=True,
        )
        for line in sims.describe():
            print(line, flush=True)
        print("Ctrl-C stops.", flush=True)
        while not stop.is_set():
            print(_status(sims), flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.status_every)
    finally:
        await sims.stop()
    print("sunbox sim: stopped", flush=True)
    return 0


def _status(sims: SimulatorSet) -> str:
    snap: PlantSnapshot = sims.world.advance()
    zone = sims.world.config.site.zone
    faults = sorted({k.label for k in sims.world.faults.active().values()}) or ["none"]
    requests = sum(u.requests for ep in sims.endpoints for u in ep.units.values())
    return (
        f"{snap.at.astimezone(zone):%Y-%m-%d %H:%M:%S} "
        f"PV {snap.pv_power_w:6.0f} W (of {snap.pv_available_w:.0f})  "
        f"load {snap.load_power_w:5.0f} W  "
        f"battery {snap.battery_power_w:+6.0f} W  SoC {snap.soc_pct:5.1f} %  "
        f"room {snap.room_temp_c:4.1f} C  fault {','.join(faults)}  requests {requests}"
        + ("  BROWNOUT" if snap.brownout else "")
    )
