"""``sunbox fleet``: the balena side of the box, for a technician on site or over SSH.

``sunbox fleet status [--json]``: the update lock file and, under balena, what the supervisor
says (running release, update pending) and the device's tags.
``sunbox fleet update [--force]``: ask the supervisor to apply the target release now; with
``--force`` the supervisor overrides our energy-aware update lock.
``sunbox fleet env [--json]``: the config as balena device variables (what provisioning pushes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from appliance.commands.common import CommandError, config_from, print_json
from appliance.fleet.env_config import config_to_env
from appliance.fleet.supervisor import SupervisorClient, SupervisorError
from appliance.fleet.update_lock import UpdateLockFile


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    fleet = subparsers.add_parser(
        "fleet", help="balena fleet: update lock, supervisor, device variables", parents=[common]
    )
    fleet_sub = fleet.add_subparsers(dest="fleet_command", metavar="ACTION")
    status = fleet_sub.add_parser(
        "status", parents=[common], help="update lock and supervisor state"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)
    update = fleet_sub.add_parser(
        "update", parents=[common], help="ask the supervisor to update now"
    )
    update.add_argument(
        "--force",
        action="store_true",
        help="override the update lock (the box may restart mid-night)",
    )
    update.set_defaults(func=_update)
    env = fleet_sub.add_parser(
        "env", parents=[common], help="the config as balena device variables"
    )
    env.add_argument("--json", action="store_true", help="print JSON")
    env.set_defaults(func=_env)
    fleet.set_defaults(func=lambda args: _usage(fleet))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _client(args: argparse.Namespace) -> SupervisorClient | None:
    config = config_from(args)
    return SupervisorClient.from_env(os.environ, config.fleet.supervisor_timeout_s)


def _status(args: argparse.Namespace) -> int:
    config = config_from(args)
    lock = UpdateLockFile(config.fleet.lock_path)
    payload: dict[str, Any] = {
        "lock_path": str(lock.path),
        "lock": "held by sunbox"
        if lock.is_ours()
        else "held by the supervisor"
        if lock.exists()
        else "free",
        "balena": False,
    }
    client = SupervisorClient.from_env(os.environ, config.fleet.supervisor_timeout_s)
    if client is not None:
        payload["balena"] = True
        payload.update(asyncio.run(_supervisor_state(client)))
    if args.json:
        print_json(payload)
        return 0
    print(f"update lock {payload['lock_path']}: {payload['lock']}")
    if not payload["balena"]:
        print("not running under balena (no BALENA_SUPERVISOR_ADDRESS / BALENA_SUPERVISOR_API_KEY)")
        return 0
    if "error" in payload:
        print(f"supervisor: {payload['error']}")
        return 1
    print(
        f"release {payload['commit']}  status {payload['status']}  update pending "
        f"{payload['update_pending']}  downloaded {payload['update_downloaded']}"
    )
    for key, value in sorted(payload["tags"].items()):
        print(f"  tag {key} = {value}")
    return 0


async def _supervisor_state(client: SupervisorClient) -> dict[str, Any]:
    async with client:
        try:
            device = await client.device()
            tags = await client.get_tags()
        except SupervisorError as exc:
            return {"error": str(exc)}
    return {
        "commit": device.commit,
        "status": device.status,
        "update_pending": device.update_pending,
        "update_downloaded": device.update_downloaded,
        "update_failed": device.update_failed,
        "tags": tags,
    }


def _update(args: argparse.Namespace) -> int:
    client = _client(args)
    if client is None:
        raise CommandError("not running under balena: no supervisor to ask for an update")

    async def go(c: SupervisorClient) -> None:
        async with c:
            await c.update(force=args.force)

    try:
        asyncio.run(go(client))
    except SupervisorError as exc:
        raise CommandError(str(exc)) from None
    print(
        "update requested"
        + (
            " (forced: the update lock is overridden)"
            if args.force
            else "; it lands when the update lock is free"
        )
    )
    return 0


def _env(args: argparse.Namespace) -> int:
    variables = config_to_env(config_from(args))
    if args.json:
        print_json(variables)
    else:
        for key, value in variables.items():
            print(f"{key}={value}")
    return 0
