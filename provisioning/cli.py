"""``sunbox-fleet`` / ``python -m provisioning``: provision boxes, watch the fleet, roll out.

Offline commands (``env``, ``profile``) need no account. Online commands talk to the balena
API given by ``--api-url`` (default balenaCloud; openBalena works too) with the token from
``--token`` or BALENA_API_KEY, on the fleet ``--fleet org/name`` or BALENA_FLEET.
Mistakes exit 1 (2 for a config error) with one line; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from balena import Balena
from balena.exceptions import BalenaException

from appliance.config import ConfigError, SunboxConfig, load_config
from appliance.fleet.env_config import config_to_env
from provisioning import report as report_mod
from provisioning import rollout as rollout_mod
from provisioning.bandwidth import PROFILES, profile, profile_name_for
from provisioning.devices import FleetError, device_id, list_fleet, provision, push_config
from provisioning.sdk import DEFAULT_API_URL, connect


class UsageError(Exception):
    """Wrong or missing option: one line, exit 1."""


def _now() -> datetime:
    return datetime.now(UTC)


def _site_config(path: str) -> SunboxConfig:
    """A site's TOML validated exactly as the box will, ignoring this shell's SUNBOX_* vars."""
    return load_config(Path(path), environ={})


def _sdk(args: argparse.Namespace) -> Balena:
    token = args.token or os.environ.get("BALENA_API_KEY") or ""
    if not token:
        raise UsageError("no balena API token: pass --token or set BALENA_API_KEY")
    return connect(token, args.api_url)


def _fleet(args: argparse.Namespace) -> str:
    fleet = args.fleet or os.environ.get("BALENA_FLEET") or ""
    if "/" not in fleet:
        raise UsageError("name the fleet as org/name with --fleet or BALENA_FLEET")
    return str(fleet)


def _print(payload: Any, as_json: bool, text: Callable[[], str]) -> None:
    print(json.dumps(payload, indent=2, default=str) if as_json else text())


# --------------------------------------------------------------------------- handlers


def cmd_env(args: argparse.Namespace) -> int:
    variables = config_to_env(_site_config(args.config))
    _print(variables, args.json, lambda: "\n".join(f"{k}={v}" for k, v in variables.items()))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    name = args.link_kind
    if args.config:
        name = profile_name_for(_site_config(args.config))
    if not name:
        raise UsageError("give a link kind or --config SITE.toml")
    values = dict(profile(name))
    _print(
        {"profile": name, "config_vars": values},
        args.json,
        lambda: "\n".join([f"# profile {name}", *(f"{k}={v}" for k, v in values.items())]),
    )
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    config = _site_config(args.config)
    result = provision(
        _sdk(args),
        _fleet(args),
        config,
        uuid=args.uuid,
        device_type=args.device_type,
        ring=args.ring,
        link_kind=args.link_kind,
    )
    payload = {
        "uuid": result.uuid,
        "device_id": result.device_id,
        "name": result.name,
        "registered": result.registered,
        "ring": result.ring,
        "profile": result.profile,
        "env_set": list(result.env.set),
        "env_removed": list(result.env.removed),
        "config_vars_set": list(result.config_vars.set),
        "config_vars_removed": list(result.config_vars.removed),
    }
    _print(
        payload,
        args.json,
        lambda: (
            f"{'registered' if result.registered else 'updated'} {result.name} uuid={result.uuid}\n"
            f"  config: {len(result.env.set)} variables set, {len(result.env.removed)} removed\n"
            f"  bandwidth profile {result.profile}: {len(result.config_vars.set)} set, "
            f"{len(result.config_vars.removed)} removed\n"
            f"  ring: {result.ring or '(fleet)'}"
        ),
    )
    return 0


def cmd_push_config(args: argparse.Namespace) -> int:
    sdk, fleet = _sdk(args), _fleet(args)
    changes = push_config(sdk, device_id(sdk, fleet, args.uuid), _site_config(args.config))
    _print(
        {"env_set": list(changes.set), "env_removed": list(changes.removed)},
        args.json,
        lambda: f"{len(changes.set)} variables set, {len(changes.removed)} removed",
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    devices = list_fleet(_sdk(args), _fleet(args))
    report_rows = report_mod.rows(devices, _now(), args.stale_after_h)
    cols = ("name", "ring", "online", "running_release", "soc_pct", "mode", "update_lock", "health")

    def table() -> str:
        lines = ["  ".join(f"{c:<14}" for c in cols)]
        for row in report_rows:
            cells = [str(row[c])[:12] if c.endswith("release") else str(row[c]) for c in cols]
            lines.append("  ".join(f"{c:<14}" for c in cells))
        return "\n".join(lines)

    _print(report_rows, args.json, table)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    now = _now()
    report_rows = report_mod.rows(list_fleet(_sdk(args), _fleet(args)), now, args.stale_after_h)
    text = (
        report_mod.to_csv(report_rows)
        if args.format == "csv"
        else report_mod.to_json(report_rows, now)
    )
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {len(report_rows)} devices to {args.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_rollout_start(args: argparse.Namespace) -> int:
    rings = [r.strip() for r in args.rings.split(",") if r.strip()]
    r = rollout_mod.start(_sdk(args), _fleet(args), args.commit, _now(), rings)
    print(
        f"rollout of {r.release[:12]} started at ring {r.ring!r} (previous {r.previous[:12]}); "
        f"steps: {' -> '.join(r.steps())}"
    )
    return 0


def cmd_rollout_status(args: argparse.Namespace) -> int:
    st = rollout_mod.status(_sdk(args), _fleet(args))
    summary = rollout_mod.summary(st)

    def text() -> str:
        r = st.rollout
        verdict = "ready to promote" if st.ready else "waiting"
        if st.failing:
            verdict = "failing: roll back"
        lines = [f"rollout {r.release[:12]} ({r.phase.value}) at {r.ring!r}: {verdict}"]
        lines += [f"  {d.verdict.value:<9} {d.name:<20} {d.reason}" for d in st.devices]
        return "\n".join(lines)

    _print(summary, args.json, text)
    return 0 if not st.failing else 3


def cmd_rollout_promote(args: argparse.Namespace) -> int:
    r = rollout_mod.promote(_sdk(args), _fleet(args), force=args.force)
    where = "the whole fleet" if r.ring == rollout_mod.FLEET_STEP else f"ring {r.ring!r}"
    print(f"{r.release[:12]} promoted to {where}")
    return 0


def cmd_rollout_rollback(args: argparse.Namespace) -> int:
    r, count = rollout_mod.rollback(_sdk(args), _fleet(args))
    print(f"rolled back: {count} devices re-pinned to {r.previous[:12]}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    online = argparse.ArgumentParser(add_help=False)
    online.add_argument(
        "--api-url",
        default=os.environ.get("BALENA_API_URL", DEFAULT_API_URL),
        help=f"balena API (default {DEFAULT_API_URL} or BALENA_API_URL)",
    )
    online.add_argument("--token", default=None, help="API token (default BALENA_API_KEY)")
    online.add_argument("--fleet", default=None, help="fleet slug org/name (default BALENA_FLEET)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(
        prog="sunbox-fleet",
        description="Fleet manager's tool for Sunbox boxes on balena: provision, list, "
        "report, roll out.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "env", parents=[out], help="print the device variables of a site config (offline)"
    )
    p.add_argument("config", help="site TOML")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("profile", parents=[out], help="print a bandwidth profile (offline)")
    p.add_argument("link_kind", nargs="?", choices=sorted(PROFILES), help="link kind")
    p.add_argument("--config", help="pick the profile from this site's links instead")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser(
        "provision", parents=[online, out], help="register a box and push its config"
    )
    p.add_argument("config", help="site TOML")
    p.add_argument("--uuid", help="existing or pre-chosen device UUID (default: a new one)")
    p.add_argument("--device-type", help="balena device type slug (default: the fleet's)")
    p.add_argument("--ring", help="rollout ring tag (e.g. canary)")
    p.add_argument(
        "--link-kind", choices=sorted(PROFILES), help="bandwidth profile (default: from [[links]])"
    )
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser("push-config", parents=[online, out], help="update a box's config variables")
    p.add_argument("uuid")
    p.add_argument("config", help="site TOML")
    p.set_defaults(func=cmd_push_config)

    p = sub.add_parser("list", parents=[online, out], help="list the fleet with health tags")
    p.add_argument("--stale-after-h", type=float, default=13.0)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("report", parents=[online], help="fleet report as CSV or JSON")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--output", help="file (default stdout)")
    p.add_argument("--stale-after-h", type=float, default=13.0)
    p.set_defaults(func=cmd_report)

    ro = sub.add_parser("rollout", help="ring rollouts: start, status, promote, rollback")
    rsub = ro.add_subparsers(dest="rollout_command", metavar="STEP")
    p = rsub.add_parser("start", parents=[online], help="pin the first ring to a release")
    p.add_argument("commit", help="release commit (>= 7 characters)")
    p.add_argument("--rings", default=",".join(rollout_mod.DEFAULT_RINGS), help="ordered ring tags")
    p.set_defaults(func=cmd_rollout_start)
    p = rsub.add_parser(
        "status", parents=[online, out], help="health of the current ring (exit 3 if failing)"
    )
    p.set_defaults(func=cmd_rollout_status)
    p = rsub.add_parser("promote", parents=[online], help="move to the next ring when healthy")
    p.add_argument("--force", action="store_true", help="promote even if the ring is not healthy")
    p.set_defaults(func=cmd_rollout_promote)
    p = rsub.add_parser(
        "rollback", parents=[online], help="re-pin reached devices to the previous release"
    )
    p.set_defaults(func=cmd_rollout_rollback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (UsageError, FleetError, ValueError) as exc:
        print(f"sunbox-fleet: {exc}", file=sys.stderr)
        return 1
    except BalenaException as exc:
        message = getattr(exc, "message", "") or exc.code
        print(f"sunbox-fleet: balena: {str(message).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except requests.RequestException as exc:
        cause = re.search(r"\[Errno -?\d+\] ([^\"')]+)", str(exc))
        why = cause.group(1) if cause else type(exc).__name__
        api = getattr(args, "api_url", "")
        print(f"sunbox-fleet: cannot reach the balena API at {api}: {why}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"sunbox-fleet: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(
                ": "
            ),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
