"""`sunbox hub`: the receiving side many boxes sync to; `sunbox hub push`: queue an inbound item."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from appliance.commands.common import CommandError, data_dir, print_json

DEFAULT_HUB_PORT = 8090


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "hub",
        parents=[common],
        help="run the hub boxes sync to (FastAPI + SQLite)",
        description="Accepts batches from many boxes, deduplicates, acknowledges, stores per box, "
        "and serves inbound items (config patches, jobs, weather files) to them.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_HUB_PORT, help=f"port (default {DEFAULT_HUB_PORT})"
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("SUNBOX_HUB_ADMIN_TOKEN"),
        help="token for admin calls (default $SUNBOX_HUB_ADMIN_TOKEN; none: loopback only)",
    )
    parser.add_argument(
        "--mqtt", metavar="URL", help="also bridge boxes over this broker (mqtt://host:port)"
    )
    parser.add_argument(
        "--mqtt-prefix", default="sunbox", help="MQTT topic prefix (default sunbox)"
    )
    parser.set_defaults(func=_serve)
    sub = parser.add_subparsers(dest="hub_command", metavar="ACTION")
    push = sub.add_parser("push", parents=[common], help="queue an inbound item for a box")
    push.add_argument("--box", required=True, help="box id (its site name)")
    push.add_argument("--kind", required=True, choices=["config", "job", "weather", "message"])
    push.add_argument("--name", default=None, help="item name (default: the file name)")
    push.add_argument("file", help="file to send (config/job: JSON object; weather: CSV)")
    push.set_defaults(func=_push)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from appliance.sync.hub import HubStore, create_hub_app

    if not 1 <= args.port <= 65535:
        raise CommandError(f"--port {args.port}: must be 1..65535")
    store = HubStore.open_dir(data_dir(args))
    app = create_hub_app(
        store, admin_token=args.admin_token, mqtt_url=args.mqtt, mqtt_prefix=args.mqtt_prefix
    )
    print(f"sunbox hub on http://{args.host}:{args.port} (data {store.path})", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    finally:
        store.close()
    return 0


def _push(args: argparse.Namespace) -> int:
    import json

    from appliance.clock import SystemClock
    from appliance.sync.hub import HubStore

    path = Path(args.file)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}") from exc
    if args.kind in ("config", "job"):
        try:
            value = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CommandError(f"{path}: a {args.kind} item must be a JSON object ({exc})") from exc
        if not isinstance(value, dict):
            raise CommandError(f"{path}: a {args.kind} item must be a JSON object")
    store = HubStore.open_dir(data_dir(args))
    try:
        item_id = store.add_inbound(
            args.box, args.kind, args.name or path.name, payload, SystemClock().now()
        )
    finally:
        store.close()
    print_json({"id": item_id, "box": args.box, "kind": args.kind, "size_bytes": len(payload)})
    return 0
