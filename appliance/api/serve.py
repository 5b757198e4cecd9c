"""Serving the dashboard from the daemon: a uvicorn server in the daemon's own event loop.

``api_starter`` plugs into ``sunbox demo`` / ``sunbox run`` (appliance/commands/demo.py
STARTERS). It binds the socket itself, so a busy port is a one-line error at start instead of
a server that dies later, and it leaves SIGINT/SIGTERM to the daemon (uvicorn would take them).
First run: the demo creates the admin with a generated password and prints it once; a real box
(``sunbox run``) lets the first visitor of the dashboard create the admin.

This module is imported by every ``sunbox`` command, so the web stack is imported lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from appliance.api import schema  # noqa: F401  (registers the users migration before a Store opens)
from appliance.api.messages import text
from appliance.api.passwords import generate_password
from appliance.state import Event, EventKind

if TYPE_CHECKING:
    from appliance.api.context import ApiContext
    from appliance.commands.demo import Runtime
    from appliance.daemon import Daemon, ExtraLoop

SHUTDOWN_S = 3.0
DEMO_ADMIN = "admin"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or CommandError naming the address (exit 1, one line)."""
    from appliance.commands.common import CommandError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(512)
        sock.setblocking(False)
    except OSError as exc:
        raise CommandError(
            f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return sock


def bootstrap_admin(ctx: ApiContext, demo: bool) -> list[str]:
    """Lines for the console on first run (no users yet); nothing afterwards."""
    users = ctx.users.count()
    if users:
        return [f"  users:     {text('user.count_hint', n=users)}"]
    if not demo:
        return [f"  first run: {text('user.setup_hint')}"]
    password = generate_password()
    ctx.users.add_first_admin(DEMO_ADMIN, password, ctx.clock.now())
    ctx.store.events.add(
        Event(ctx.clock.now(), EventKind.AUTH, text("event.demo_admin", user=DEMO_ADMIN), "api")
    )
    return [
        f"  admin:     user '{DEMO_ADMIN}', password {password}",
        f"             (shown once; change it with: sunbox users passwd {DEMO_ADMIN})",
    ]


def _server(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    class DaemonServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the daemon owns the signals
            yield

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(SHUTDOWN_S),
        timeout_keep_alive=30,
    )
    return DaemonServer(config)


def make_loop(ctx: ApiContext, sock: socket.socket) -> ExtraLoop:
    from appliance.api.app import create_app

    app = create_app(ctx)

    async def api(daemon: Daemon, stop: asyncio.Event) -> None:
        server = _server(app, sock)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="api-server")
        watching = asyncio.create_task(ctx.live.run(stop), name="api-live")
        try:
            await stop.wait()
        finally:
            ctx.live.shutdown()
            server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(serving, SHUTDOWN_S + 1.0)
            watching.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await watching
            sock.close()

    return api


def api_starter(runtime: Runtime) -> ExtraLoop | None:
    if getattr(runtime.args, "no_api", False):
        return None
    from appliance.api.context import ApiContext

    cfg = runtime.config.api
    sock = bind(cfg.host, cfg.port)
    ctx = ApiContext.build(runtime.config, runtime.store, runtime.clock, runtime.daemon)
    for line in bootstrap_admin(ctx, demo=getattr(runtime.args, "command", "") == "demo"):
        print(line, flush=True)
    return make_loop(ctx, sock)
