"""``sunbox tui``: the technician's terminal UI (ui/tui).

Online it is a client of the daemon's local API with the dashboard's auth: a technician's name
(``--user``, ``SUNBOX_TUI_USER``, ``[tui] user``) and password (``SUNBOX_TUI_PASSWORD`` or a
prompt). When no API answers (or with ``--offline``) it works on the store and the devices
directly; ``--store-only`` never touches the devices (a database copied from a dead box).
Log lines (and any traceback) go to ``<data dir>/tui.log``, never onto the screen.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import Any

from appliance.clock import Clock, SystemClock
from appliance.commands.common import CommandError, config_from, data_dir, open_store
from appliance.config import DEFAULT_CONFIG_NAME, SunboxConfig, default_config_path
from appliance.store import Store

PASSWORD_ENV = "SUNBOX_TUI_PASSWORD"
USER_ENV = "SUNBOX_TUI_USER"
LOG_NAME = "tui.log"


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "tui", parents=[common], help="the technician's terminal UI (commission, diagnose, report)"
    )
    p.add_argument(
        "--url",
        default=None,
        help="the daemon's API (default [tui] url, else http://<[api] host>:<port>)",
    )
    p.add_argument(
        "--user", default=None, help=f"technician account (default ${USER_ENV}, else [tui] user)"
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--offline",
        action="store_true",
        help="do not use the API: the store and the devices directly",
    )
    how.add_argument(
        "--store-only", action="store_true", help="offline, and never talk to the devices"
    )
    p.add_argument(
        "--refresh",
        type=float,
        default=None,
        metavar="SECONDS",
        help="refresh period (default [tui])",
    )
    p.set_defaults(func=run)


def api_url(config: SunboxConfig, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    if config.tui.url:
        return config.tui.url.rstrip("/")
    host = config.api.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{config.api.port}"


def setup_logging(path: Path) -> None:
    """Everything to the log file: a stray line on stderr would tear the screen."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def password_for(user: str, url: str) -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise CommandError(
            f"no password for '{user}': set {PASSWORD_ENV} or run at a terminal (or use --offline)"
        )
    return getpass.getpass(f"Password for {user} at {url}: ")


def connect(
    args: argparse.Namespace, config: SunboxConfig, store: Store, clock: Clock
) -> tuple[Any, list[str]]:
    """The backend for this session and notes to show at start (why offline, role limits)."""
    from ui.tui.api_client import ApiBackend, login, probe
    from ui.tui.backend import BackendError
    from ui.tui.offline import OfflineBackend

    if args.store_only:
        return OfflineBackend(config, store, clock, poll=False, why="--store-only"), []
    if args.offline:
        return OfflineBackend(config, store, clock, why="--offline"), []
    url = api_url(config, args.url)
    timeout = config.tui.api_timeout_s
    info = probe(url, timeout)
    if info is None:
        note = f"no API answers at {url}: offline diagnostics on the store and the devices"
        return OfflineBackend(config, store, clock, why=f"no API at {url}"), [note]
    if info.get("setup_needed"):
        raise CommandError(
            f"the dashboard at {url} has no users yet: add a technician with "
            "`sunbox users add NAME --role technician` (or run with --offline)"
        )
    user = args.user or os.environ.get(USER_ENV) or config.tui.user
    try:
        session = login(url, user, password_for(user, url), timeout)
    except BackendError as exc:  # LoginRefused included: the API's own words
        raise CommandError(str(exc)) from None
    notes = []
    if session.role not in ("technician", "admin"):
        who = f"{session.user} ({session.role})"
        notes.append(f"logged in as {who}: setpoints and safe mode need a technician")
    return ApiBackend(session, timeout), notes


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if args.refresh is not None and not 0.5 <= args.refresh <= 60:
        raise CommandError("--refresh must be within 0.5..60 seconds", 2)
    config_path = (
        Path(args.config) if args.config else (default_config_path() or Path(DEFAULT_CONFIG_NAME))
    )
    ddir = data_dir(args)
    log_path = ddir / LOG_NAME
    setup_logging(log_path)
    store = open_store(args)
    clock = SystemClock()
    backend, notes = connect(args, config, store, clock)
    from ui.tui.app import SunboxTui, TuiContext

    user = getattr(getattr(backend, "session", None), "user", "") or os.environ.get("USER", "")
    ctx = TuiContext(
        config=config,
        config_path=config_path,
        data_dir=ddir,
        store=store,
        backend=backend,
        clock=clock,
        refresh_s=args.refresh or config.tui.refresh_s,
        operator=user,
        log_path=log_path,
        notes=notes,
    )
    app = SunboxTui(ctx)
    try:
        app.run()
    finally:
        store.close()
    return int(app.return_code or 0)
