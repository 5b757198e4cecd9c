"""What every subcommand shares: --config, --data-dir, loading them, and clean errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from appliance.config import SunboxConfig, load_config
from appliance.store import Store

DEFAULT_DATA_DIR = "./sunbox-data"


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status ``exit_code`` (1 by default)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=None,
                        help="site config TOML (default ./sunbox.toml, else the built-in demo)")
    common.add_argument("--data-dir", metavar="DIR", default=DEFAULT_DATA_DIR,
                        help=f"where the SQLite database and state live (default {DEFAULT_DATA_DIR})")
    return common


def config_from(args: argparse.Namespace) -> SunboxConfig:
    """The validated config the user pointed at; raises ConfigError (exit 2) on mistakes."""
    return load_config(args.config)


def data_dir(args: argparse.Namespace) -> Path:
    path = Path(args.data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_store(args: argparse.Namespace) -> Store:
    return Store.open_dir(data_dir(args))


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, default=str, sort_keys=False))
