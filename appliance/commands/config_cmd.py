"""``sunbox config check|show``: validate a config (exit 2 naming the field) or print it."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.commands.common import config_from
from appliance.config import dump_config


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("config", help="check or show the site configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    check = csub.add_parser("check", parents=[common], help="validate; exit 2 with the reason if invalid")
    check.set_defaults(func=run_check)
    show = csub.add_parser("show", parents=[common], help="print the effective config (file + environment)")
    show.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_check(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    print(f"config ok: site {cfg.site.name}, {cfg.array.dc_kw:g} kWp {cfg.array.tracker}, "
          f"{cfg.battery.capacity_wh / 1000:g} kWh battery, {len(cfg.devices)} device(s)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    print(dump_config(config_from(args)), end="")
    return 0
