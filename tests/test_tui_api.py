"""The TUI online: a real `sunbox demo` (simulated devices over Modbus, the daemon, its API) as
a subprocess; the TUI logs in as a technician with the dashboard's auth and acts through the
same API."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from appliance.clock import SystemClock
from appliance.commands.common import CommandError
from appliance.commands.tui import api_url, connect
from appliance.config import load_config
from appliance.store import Store
from tests.api_demo import Box, running_box
from tests.tui_helpers import settle, shown, table_rows
from ui.tui.api_client import ApiBackend, LoginRefused, login
from ui.tui.app import SunboxTui, TuiContext
from ui.tui.screens.control import ControlScreen
from ui.tui.screens.selftest import SelfTestScreen
from ui.tui.widgets import ConfirmScreen

START = "2026-06-21T09:00+03:00"  # a Kisumu morning: sun on the tracker
TECH = ("tech1", "tui-technician-pass")
VIEWER = ("view1", "tui-viewer-password")


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("tui-api"), speed=30, start=START) as b:
        admin = b.client()
        for (name, password), role in ((TECH, "technician"), (VIEWER, "viewer")):
            r = admin.post("/api/users", json={"name": name, "role": role, "password": password})
            assert r.status_code == 201, r.text
        admin.close()
        yield b


def online_app(box: Box, user: tuple[str, str], tmp: Path) -> SunboxTui:
    config = load_config(box.data_dir.parent / "sunbox.toml", environ={})
    session = login(box.url, *user, timeout_s=10)
    ctx = TuiContext(
        config=config,
        config_path=tmp / "sunbox.toml",
        data_dir=box.data_dir,
        store=Store.open_dir(box.data_dir),
        backend=ApiBackend(session, 10.0),
        clock=SystemClock(),
        refresh_s=60.0,
        operator=session.user,
    )
    return SunboxTui(ctx)


async def until(
    pilot: Any, app: SunboxTui, ok: Callable[[], bool], timeout_s: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.request_refresh()
        await settle(pilot, app)
        if ok():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met; last message: {app.last_message()}")


def test_tui_online_shows_the_daemons_state_through_its_api(box: Box, tmp_path: Path) -> None:
    async def main() -> None:
        app = online_app(box, TECH, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, app, lambda: app.box is not None and app.box.ready)
            summary = shown(app, "#summary")
            assert f"API {box.url} as tech1 (technician)" in summary
            assert "online" in shown(app, "#status")
            assert app.box is not None and app.box.mode in ("normal", "shed")
            assert f"{app.box.soc_pct:.1f} %" in summary
            await pilot.press("l", "2")
            await until(pilot, app, lambda: len(table_rows(app, "#registers-table")) > 10)
            regs = {r[0] for r in table_rows(app, "#registers-table")}
            assert {
                "101.W",
                "124.MinRsvPct",
            } <= regs  # the inverter's register table, via /api/devices
            await pilot.press("3")
            await until(
                pilot,
                app,
                lambda: any(
                    r[2] == "system" and r[3].startswith("daemon started (sunbox")
                    for r in table_rows(app, "#events-table")
                ),
            )

    asyncio.run(main())


def test_tui_online_write_outside_limits_is_refused_and_inside_is_written(
    box: Box, tmp_path: Path
) -> None:
    async def main() -> None:
        app = online_app(box, TECH, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, app)
            await pilot.press("c")
            await until(pilot, app, lambda: len(table_rows(app, "#setpoints")) == 4)
            screen = app.screen
            assert isinstance(screen, ControlScreen)
            await pilot.press("down", "enter", *"3500", "enter")  # 124.WChaMax, limits 0..3000
            await settle(pilot, app)
            assert (
                app.last_message()
                == "refused: inverter.124.WChaMax = 3500 is outside its limits 0..3000"
            )
            # the daemon's bounded writer says no as well, in the same words
            out = await app.ctx.backend.write_setpoint("inverter", "124.WChaMax", 3500.0, "test")
            assert not out.written and "outside its limits 0..3000" in out.reason
            screen.query_one("#value").value = ""
            await pilot.press(*"2500", "enter")
            await settle(pilot, app)
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot, app)
            assert app.last_message() == "wrote inverter.124.WChaMax = 2500, read back 2500.0"
            events = await app.ctx.backend.events(20)
            assert any(
                "wrote inverter.124.WChaMax = 2500" in e.message
                and "(by tech1 (technician))" in e.message
                for e in events
            )

    asyncio.run(main())


def test_tui_online_safe_mode_is_held_and_released(box: Box, tmp_path: Path) -> None:
    async def main() -> None:
        app = online_app(box, TECH, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, app)
            await pilot.press("c")
            await settle(pilot, app)
            await pilot.press("m", "y")
            await until(pilot, app, lambda: app.box is not None and app.box.mode == "safe")
            assert (
                app.box is not None
                and "manual safe mode set by tech1 (technician)" in app.box.mode_reason
            )
            assert "HELD by a technician" in shown(app, "#safe-state")
            await pilot.press("m", "y")
            await until(pilot, app, lambda: app.box is not None and app.box.mode != "safe")

    asyncio.run(main())


def test_tui_online_selftest_judges_the_daemons_own_view(box: Box, tmp_path: Path) -> None:
    async def main() -> None:
        app = online_app(box, TECH, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, app, lambda: app.box is not None and app.box.ready)
            await pilot.press("t", "r")
            await settle(pilot, app, rounds=8)
            screen = app.screen
            assert isinstance(screen, SelfTestScreen) and screen.saved is not None
            report = json.loads(screen.saved.json_path.read_text())
            by_id = {c["id"]: c for c in report["checks"]}
            assert report["source"] == f"the daemon's API ({box.url})"
            assert report["operator"] == "tech1"
            assert by_id["daemon"]["status"] == "pass"
            assert all(
                by_id[f"device:{n}"]["status"] == "pass"
                for n in ("inverter", "battery", "room", "damper")
            )
            assert (
                by_id["clock"]["status"] == "pass" and "demo clock x30" in by_id["clock"]["detail"]
            )
            assert (
                screen.saved.outbox is not None
            )  # the daemon's own outbox carries it to the fleet

    asyncio.run(main())


def test_tui_online_viewer_is_told_not_crashed(box: Box, tmp_path: Path) -> None:
    async def main() -> None:
        app = online_app(box, VIEWER, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, app)
            await pilot.press("c")
            await settle(pilot, app)
            # the API's own words, on the message line
            assert (
                app.last_message().startswith("GET /api/setpoints: ")
                and "technician" in app.last_message()
            )
            assert app.messages[-1][0] == "error" and app.is_running

    asyncio.run(main())


def test_tui_login_and_command_connection_rules(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LoginRefused, match=r"login as 'tech1' at .* refused: "):
        login(box.url, "tech1", "not-the-password", 10)
    config = load_config(box.data_dir.parent / "sunbox.toml", environ={})
    assert api_url(config, None) == f"http://127.0.0.1:{config.api.port}"
    store = Store.open_dir(box.data_dir)
    args = argparse.Namespace(url=box.url, user="tech1", offline=False, store_only=False)
    monkeypatch.delenv("SUNBOX_TUI_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin", open("/dev/null"))  # noqa: SIM115 - no terminal to ask at
    with pytest.raises(CommandError, match="no password for 'tech1': set SUNBOX_TUI_PASSWORD"):
        connect(args, config, store, SystemClock())
    monkeypatch.setenv("SUNBOX_TUI_PASSWORD", TECH[1])
    backend, notes = connect(args, config, store, SystemClock())
    assert (
        backend.online
        and backend.describe() == f"API {box.url} as tech1 (technician)"
        and notes == []
    )
    asyncio.run(backend.close())
    monkeypatch.setenv("SUNBOX_TUI_PASSWORD", "wrong-password-here")
    with pytest.raises(CommandError, match="refused"):
        connect(args, config, store, SystemClock())
    # nothing answers: offline, with the reason said at start
    args.url = "http://127.0.0.1:9"
    backend, notes = connect(args, config, store, SystemClock())
    assert not backend.online and notes == [
        "no API answers at http://127.0.0.1:9: offline diagnostics on the store and the devices"
    ]
    asyncio.run(backend.close())
    store.close()
    assert httpx.get(f"{box.url}/healthz").status_code == 200
