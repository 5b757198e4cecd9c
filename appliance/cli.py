"""The ``sunbox`` command: one subcommand module per capability in appliance/commands/.

Every subcommand takes ``--config FILE`` and ``--data-dir DIR``. A configuration mistake
exits with status 2 and one line naming the field, the value and the rule.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from appliance import __version__
from appliance.commands.common import CommandError, common_parser
from appliance.config import ConfigError

# Each module has ``register(subparsers, common)`` adding its subcommand(s); a subcommand sets
# ``func(args) -> int`` as its handler.
COMMAND_MODULES = (
    "appliance.commands.demo",
    "appliance.commands.sim",
    "appliance.commands.devices",
    "appliance.commands.status",
    "appliance.commands.config_cmd",
    "appliance.commands.forecast",
    "appliance.commands.jobs",
    "appliance.commands.replay",
    "appliance.commands.heat",
    "appliance.commands.hub",
    "appliance.commands.sync",
    "appliance.commands.tui",
    "appliance.commands.fleet",
    "appliance.commands.users",
    "appliance.commands.selftest",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sunbox",
        description="Sunbox: an off-grid solar micro-datacentre. Sun -> battery -> compute -> heat.",
    )
    parser.add_argument("--version", action="version", version=f"sunbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_parser()
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # capability not installed in this build
                continue
            raise
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pymodbus logs every timeout as an ERROR; the device layer reports failures itself (device
    # health, events, safe mode), once and with a reason
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"sunbox: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
