"""`sunbox sync status [--json]` and `sunbox sync run [--once] [--hub URL]`."""

from __future__ import annotations

import argparse
import asyncio
import json

from appliance.clock import SystemClock
from appliance.commands.common import CommandError, config_from, open_store, print_json


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("sync", help="store and forward: link usage, queue, manual sync")
    sub = parser.add_subparsers(dest="sync_command", metavar="ACTION")
    status = sub.add_parser(
        "status",
        parents=[common],
        help="per link: bytes today vs budget, last success; queue by priority",
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=_status)
    run = sub.add_parser("run", parents=[common], help="sync the outbox over the configured links")
    run.add_argument("--once", action="store_true", help="one pass, then exit")
    run.add_argument(
        "--hub", metavar="URL", help="sync to this hub over HTTP (overrides [sync] hub_url)"
    )
    run.add_argument(
        "--energy-w",
        type=float,
        default=float("inf"),
        help="modem power the energy plan affords (W); default: any",
    )
    run.set_defaults(func=_run)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])


def _status(args: argparse.Namespace) -> int:
    from appliance.sync.status import format_status, sync_status

    config = config_from(args)
    store = open_store(args)
    try:
        status = sync_status(config, store, SystemClock().now())
    finally:
        store.close()
    if args.json:
        print_json(status)
    else:
        print(format_status(status, config.site.tz))
    return 0


def _run(args: argparse.Namespace) -> int:
    from appliance.sync.links import effective_links
    from appliance.sync.service import SyncService, build_for_hub

    config = config_from(args)
    store = open_store(args)
    clock = SystemClock()
    service = (
        build_for_hub(config, store, clock, args.hub)
        if args.hub
        else SyncService(config, store, clock)
    )
    if not effective_links(service.config):
        store.close()
        raise CommandError(
            "no links configured: add [[links]], set [sync] hub_url, or pass --hub URL"
        )

    async def main() -> int:
        try:
            if args.once:
                report = await service.run_once(clock.now(), args.energy_w)
                print(
                    json.dumps(
                        {"items_sent": report.items_sent, "links": [vars(r) for r in report.links]},
                        default=str,
                    )
                )
                return 0
            stop = asyncio.Event()
            await service.run(stop, args.energy_w)
            return 0
        finally:
            await service.close()
            store.close()

    return asyncio.run(main())
