"""``sunbox devices scan``: find Modbus devices on TCP or RS485 and print what they are."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from appliance.commands.common import CommandError, print_json
from appliance.devices.link import Endpoint
from appliance.devices.scan import FoundDevice, parse_unit_ids, scan


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    devices = sub.add_parser("devices", help="Modbus devices: scan a bus or endpoint")
    dsub = devices.add_subparsers(dest="devices_command", metavar="ACTION")
    p = dsub.add_parser("scan", parents=[common], help="find SunSpec and Victron GX devices")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Modbus TCP host")
    where.add_argument("--serial", metavar="DEV", help="RS485 serial device, e.g. /dev/ttyUSB0")
    p.add_argument("--port", type=int, default=502, help="Modbus TCP port (default 502)")
    p.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    p.add_argument("--parity", choices=["N", "E", "O"], default="N")
    p.add_argument("--unit-ids", default="1-247", help="unit ids to probe, e.g. 1-247 or 1,2,100")
    p.add_argument("--timeout", type=float, default=0.5, help="seconds per request (<= 1)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_scan)
    devices.set_defaults(func=lambda args: (devices.print_help(), 2)[1])


def describe(dev: FoundDevice) -> str:
    ident = dev.identity
    head = f"unit {dev.unit_id:>3}  {dev.kind:<8}"
    who = " ".join(x for x in (ident.get("manufacturer"), ident.get("model")) if x)
    serial = f"serial {ident['serial']}" if ident.get("serial") else ""
    models = f"models {','.join(str(m) for m in dev.model_ids)}" if dev.model_ids else ""
    if dev.vebus_unit_id is not None:
        models = f"VE.Bus unit {dev.vebus_unit_id}"
    keys = ("soc_pct", "battery_power_w", "pv_power_w", "ac_load_power_w", "battery_voltage_v")
    vals = "  ".join(f"{k}={dev.values[k]:g}" for k in keys if k in dev.values)
    return "  ".join(x for x in (head, who, serial, models, vals) if x)


def run_scan(args: argparse.Namespace) -> int:
    try:
        units = parse_unit_ids(args.unit_ids)
    except ValueError as exc:
        raise CommandError(str(exc), 2) from None
    if not 0 < args.timeout <= 1.0:
        raise CommandError("--timeout must be within (0, 1] seconds", 2)
    if args.host:
        endpoint = Endpoint("tcp", host=args.host, port=args.port)
    else:
        endpoint = Endpoint("rtu", serial_port=args.serial, baudrate=args.baud, parity=args.parity)

    def progress(done: int, total: int, unit: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\rscanning {endpoint}: unit {unit} ({done}/{total})", end="", file=sys.stderr, flush=True)

    found = asyncio.run(scan(endpoint, units, timeout_s=args.timeout, progress=progress))
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        print_json({"endpoint": str(endpoint), "devices": [d.as_dict() for d in found]})
    else:
        print(f"{len(found)} device(s) at {endpoint}")
        for dev in found:
            print(describe(dev))
    return 0 if found else 1
