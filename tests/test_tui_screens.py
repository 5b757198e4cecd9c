"""The TUI's screens driven by keystrokes (Textual pilot), offline against real parts: the
simulator over Modbus TCP on 127.0.0.1, a real SQLite store, the bounded writer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.sim import SimulatorSet, build_simulators
from appliance.store import Store
from appliance.sync.messages import decode_log
from tests.conftest import free_port, make_config
from tests.sim_helpers import KISUMU_NOON, sim_config
from tests.tui_helpers import make_app, publish_state, refresh, settle, shown, table_rows
from ui.tui.app import SunboxTui
from ui.tui.screens.assign import AssignScreen
from ui.tui.screens.control import ControlScreen
from ui.tui.screens.home import HomeScreen
from ui.tui.screens.live import LiveScreen
from ui.tui.screens.scan import ScanScreen
from ui.tui.screens.selftest import SelfTestScreen
from ui.tui.widgets import ConfirmScreen

Body = Callable[[SunboxTui, Any, SimulatorSet, ManualClock], Awaitable[None]]


def with_simulator(
    config: SunboxConfig, tmp: Path, body: Body, size: tuple[int, int] = (100, 30)
) -> None:
    """Simulated devices on a manual clock, the TUI offline on them (polling), run ``body``."""

    async def main() -> None:
        clock = ManualClock(KISUMU_NOON)
        sims = build_simulators(config, clock, compute_power_w=lambda: 150.0)
        clock.advance(60.0)
        async with sims:
            app = make_app(config, tmp, clock=clock, poll=True)
            async with app.run_test(size=size) as pilot:
                await settle(pilot, app)
                await body(app, pilot, sims, clock)

    asyncio.run(main())


def test_tui_home_shows_the_product_and_the_box_state(tmp_path: Path) -> None:
    config = sim_config(free_port())
    store = Store.open_dir(tmp_path)
    publish_state(store, alarm=True)

    async def main() -> None:
        app = make_app(config, tmp_path, store=store)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            assert isinstance(app.screen, HomeScreen)
            summary = shown(app, "#summary")
            status = shown(app, "#status")
            assert "SUNBOX" in shown(app, "#banner") and "SUNBOX" in status
            assert "kisumu-demo" in status and "Sun 12:00 EAT" in status  # the site's local time
            assert "NORMAL  plan followed" in summary
            assert "64.2 %  reserve 30.0 %  +2214 W charging" in summary
            assert "2404 W" in summary and "175 W  (compute 150 W)" in summary
            assert "1: battery: over temperature" in summary
            assert "4/4 answering" in summary
            assert "OFFLINE (store only)" in summary
            # every screen opens from home and Esc comes back
            for key, screen in (
                ("l", LiveScreen),
                ("s", ScanScreen),
                ("c", ControlScreen),
                ("t", SelfTestScreen),
            ):
                await pilot.press(key)
                await settle(pilot, app)
                assert isinstance(app.screen, screen)
                assert app.screen.query_one("#help").content  # a help line on every screen
                await pilot.press("escape")
                await settle(pilot, app)
                assert isinstance(app.screen, HomeScreen)
            assert not [m for m in app.messages if m[0] == "error"]

    asyncio.run(main())


def test_tui_live_view_updates_as_the_simulator_changes(tmp_path: Path) -> None:
    config = sim_config(free_port())

    async def body(app: SunboxTui, pilot: Any, sims: SimulatorSet, clock: ManualClock) -> None:
        await pilot.press("l")
        await settle(pilot, app)
        await pilot.press("2")  # devices tab: the register table of the first device
        await refresh(pilot, app)
        assert isinstance(app.screen, LiveScreen)
        devices = table_rows(app, "#devices-table")
        assert [d[0] for d in devices] == ["inverter", "battery", "room", "damper"]
        assert all(d[2] == "ok" for d in devices)
        regs = {r[0]: r for r in table_rows(app, "#registers-table")}
        assert float(regs["101.W"][2]) == pytest.approx(sims.snapshot.load_power_w, abs=2)
        assert regs["124.MinRsvPct"][5] == "10..100"  # the configured write limit
        # raw register x 10^sf = scaled: the scale factor the value was read with
        sf = int(regs["101.W_SF"][2])
        assert float(regs["101.W"][1]) * 10**sf == pytest.approx(float(regs["101.W"][2]))
        soc_before = app.box.soc_pct if app.box else None

        # the simulated world moves: an hour later, the node drawing 260 W
        sims.set_compute_override(260.0)
        clock.advance(3600.0)
        await refresh(pilot, app)
        assert app.box is not None
        assert app.box.soc_pct == pytest.approx(sims.snapshot.soc_pct, abs=0.15)
        assert app.box.soc_pct != soc_before
        await pilot.press("1")
        await refresh(pilot, app)
        flow = shown(app, "#flow-text")
        assert f"{sims.snapshot.pv_power_w:.0f} W" in flow
        assert "SoC" in flow and f"{app.box.soc_pct:.1f} %" in flow

        # the battery stops answering: the device table says so on the next refresh
        sims.inject("silent", "battery")
        await sims.settle()
        clock.advance(5.0)
        await pilot.press("2")
        await refresh(pilot, app)
        devices = {d[0]: d for d in table_rows(app, "#devices-table")}
        assert devices["battery"][2].startswith("FAILING x1")
        assert devices["inverter"][2] == "ok"
        sims.clear()

    with_simulator(config, tmp_path, body)


def test_tui_scan_finds_the_simulators_devices_and_assigns_a_role(tmp_path: Path) -> None:
    port = free_port()
    config = sim_config(port)

    async def body(app: SunboxTui, pilot: Any, sims: SimulatorSet, clock: ManualClock) -> None:
        await pilot.press("s")
        await settle(pilot, app)
        screen = app.screen
        assert isinstance(screen, ScanScreen)
        # the form starts at the configured endpoint; ask for units 1-5 and plain units too
        assert screen.query_one("#scan-port").value == str(port)
        screen.query_one("#scan-units").focus()
        await pilot.press(*"1-5")
        screen.query_one("#scan-generic").focus()
        await pilot.press("space")
        await pilot.press("ctrl+r")
        await settle(pilot, app, rounds=5)
        rows = {r[0]: r for r in table_rows(app, "#scan-results")}
        assert set(rows) == {"1", "2", "3"}
        assert rows["1"][1] == "sunspec" and rows["1"][3] == "1,101,160,124"
        assert rows["2"][1] == "sunspec" and rows["2"][3] == "1,802"
        assert rows["3"][1] == "generic"  # room sensor + damper: registers, no self-description
        assert f"SoC {sims.snapshot.soc_pct:.1f}"[:7] in rows["2"][4]
        bar = screen.query_one("#scan-progress")
        assert (bar.total, bar.progress) == (5, 5)
        assert "3 unit(s) answered" in app.last_message()

        # assign the battery (unit 2): its name is free-d up ('battery' is taken), role guessed
        await pilot.press("down")
        await pilot.press("a")
        await settle(pilot, app)
        assert isinstance(app.screen, AssignScreen)
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        added = app.draft.config.device("battery2")
        assert (added.role, added.unit_id, added.map, added.port) == ("battery", 2, "sunspec", port)
        assert added.limits["802.SoCRsvMin"].min == config.battery.soc_min_pct
        assert "battery2 (battery, unit 2) added to the draft" in app.last_message()

    with_simulator(config, tmp_path, body)


def test_tui_write_outside_limits_is_refused_with_a_message(tmp_path: Path) -> None:
    config = sim_config(free_port())

    async def body(app: SunboxTui, pilot: Any, sims: SimulatorSet, clock: ManualClock) -> None:
        store = app.ctx.store
        assert store is not None
        await pilot.press("c")
        await settle(pilot, app)
        screen = app.screen
        assert isinstance(screen, ControlScreen)
        assert [r[1] for r in table_rows(app, "#setpoints")] == [
            "124.MinRsvPct",
            "124.WChaMax",
            "802.SoCRsvMin",
            "damper_pct",
        ]
        reserve_before = sims.plant.reserve_pct
        await pilot.press("enter")  # to the value field of 124.MinRsvPct
        await pilot.press(*"150", "enter")
        await settle(pilot, app)
        assert isinstance(app.screen, ControlScreen)  # no confirmation asked: refused outright
        assert (
            app.last_message()
            == "refused: inverter.124.MinRsvPct = 150 is outside its limits 10..100"
        )
        assert app.messages[-1][0] == "error"
        assert sims.plant.reserve_pct == reserve_before
        assert not store.events.list(kinds=["write"])

        # inside the limits: asked first, written, read back, logged as an event
        screen.query_one("#value").value = ""
        await pilot.press(*"35", "enter")
        await settle(pilot, app)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot, app)
        assert sims.plant.reserve_pct == pytest.approx(35.0)
        assert app.last_message() == "wrote inverter.124.MinRsvPct = 35, read back 35.0"
        events = store.events.list(kinds=["write"])
        assert len(events) == 1 and "wrote inverter.124.MinRsvPct = 35" in events[0].message

        # offline there is no daemon to hold safe mode: refused with the reason, nothing crashes
        screen.query_one("#setpoints").focus()
        await pilot.press("m")
        await settle(pilot, app)
        await pilot.press("y")
        await settle(pilot, app)
        assert app.last_message().startswith("offline: safe mode is held by the daemon")

    with_simulator(config, tmp_path, body)


def test_tui_selftest_writes_the_report_with_the_checks_results(tmp_path: Path) -> None:
    config = sim_config(free_port(), selftest={"clock_floor": "2024-01-01"})

    async def body(app: SunboxTui, pilot: Any, sims: SimulatorSet, clock: ManualClock) -> None:
        store = app.ctx.store
        assert store is not None
        await pilot.press("t")
        await settle(pilot, app)
        await pilot.press("r")
        await settle(pilot, app, rounds=6)
        screen = app.screen
        assert isinstance(screen, SelfTestScreen) and screen.saved is not None
        on_screen = {r[1]: r[0] for r in table_rows(app, "#checks")}
        md, js = screen.saved.markdown_path, screen.saved.json_path
        assert (
            md.parent == tmp_path / "reports" and md.name == "20240321T090100Z.md" and js.exists()
        )
        report = json.loads(js.read_text())
        by_id = {c["id"]: c for c in report["checks"]}
        # the file holds what the screen showed
        assert {c["title"]: c["status"].upper() for c in report["checks"]} == on_screen
        assert report["started_at"] == "2024-03-21T09:01:00+00:00"
        assert report["started_local"] == "2024-03-21T12:01:00+03:00"
        assert report["source"] == "this console's poll of the devices"
        for name in ("inverter", "battery", "room", "damper"):
            assert by_id[f"device:{name}"]["status"] == "pass"
        assert by_id["daemon"]["status"] == "warn"  # offline: nobody controls the box
        assert by_id["values"]["status"] == "pass"
        assert by_id["values"]["figures"]["values"]["soc_pct"] == pytest.approx(
            sims.snapshot.soc_pct, abs=0.15
        )
        assert by_id["battery"]["status"] == "pass"
        assert by_id["clock"]["status"] == "pass"
        assert report["status"] == "warn"
        text = md.read_text()
        assert "| WARN | daemon running |" in text and "| PASS | values plausible |" in text
        # the fleet manager gets it through the outbox (sync's log stream), and the box logs it
        item = store.outbox.pending()[0]
        lines = decode_log(item.payload)
        assert (item.kind, item.stream) == ("log", "log")
        assert (
            lines[0] == "selftest 2024-03-21T09:01:00Z kisumu-demo: WARN (1 warn, 9 pass, 2 skip)"
        )
        assert "WARN daemon: no daemon running" in lines[1]
        assert any(
            "report reports/20240321T090100Z.md" in e.message
            for e in store.events.list(kinds=["system"])
        )
        assert "self-test WARN" in app.last_message()

    with_simulator(config, tmp_path, body)


def test_tui_fault_selftest_drives_the_simulator_and_recovers(tmp_path: Path) -> None:
    config = sim_config(free_port())

    async def body(app: SunboxTui, pilot: Any, sims: SimulatorSet, clock: ManualClock) -> None:
        await pilot.press("c")
        await settle(pilot, app)
        await pilot.press("f")
        await settle(pilot, app)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot, app, rounds=8)
        rows = table_rows(app, "#fault-results")
        assert [(r[0], r[1]) for r in rows] == [
            ("silent", "PASS"),
            ("exception", "PASS"),
            ("soc_range", "PASS"),
            ("alarm", "PASS"),
        ]
        assert "soc_pct = 180 outside 0..100" in rows[2][2]
        assert not sims.world.faults.active()  # everything cleared afterwards
        reports = sorted((tmp_path / "reports").glob("*.json"))
        assert len(reports) == 1 and json.loads(reports[0].read_text())["kind"] == "faults"
        assert "fault self-test PASS (4 pass)" in app.last_message()

    with_simulator(config, tmp_path, body)


def test_tui_errors_become_messages_never_tracebacks(tmp_path: Path) -> None:
    """A dead endpoint, a bad unit range, a store without state: one line each, app alive."""
    config = sim_config(free_port())

    async def main() -> None:
        app = make_app(config, tmp_path)  # store only, nothing published
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            assert "waiting" in shown(app, "#summary") or "not published" in shown(app, "#summary")
            await pilot.press("s")
            await settle(pilot, app)
            app.screen.query_one("#scan-units").value = "9-3"
            await pilot.press("ctrl+r")
            await settle(pilot, app)
            assert app.last_message() == "unit ids: '9-3' must lie within 0-255, low to high"
            app.screen.query_one("#scan-units").value = "1-2"
            await pilot.press("ctrl+r")  # nothing listens on the configured port
            await settle(pilot, app, rounds=6)
            assert "0 unit(s) answered" in app.last_message()
            await pilot.press("escape", "t", "r")
            await settle(pilot, app, rounds=4)
            assert (
                app.last_message() == "store only, and the store holds no published state to test"
            )
            assert app.messages[-1][0] == "error"
            assert app.is_running and app.return_code is None

    asyncio.run(main())


def test_tui_unforeseen_crash_ends_with_one_line_not_a_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The backstop: an exception no handler guards stops the app with one line (the traceback
    goes to the log), never a traceback painted on the technician's terminal."""
    import logging

    from ui.tui.widgets import SunboxScreen

    class Broken(SunboxScreen):
        def on_mount(self) -> None:
            raise RuntimeError("wiring fault")

    config = sim_config(free_port())
    log_file = tmp_path / "tui.log"
    logger = logging.getLogger("ui.tui")
    handler = logging.FileHandler(log_file)
    logger.addHandler(handler)
    logger.propagate = False

    async def main() -> SunboxTui:
        app = make_app(config, tmp_path)
        with pytest.raises(RuntimeError, match="wiring fault"):  # run_test re-raises for the test
            async with app.run_test(size=(80, 24)) as pilot:
                await settle(pilot, app)
                await app.push_screen(Broken())
                await settle(pilot, app)
        return app

    try:
        app = asyncio.run(main())
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    assert app.return_code == 1
    out, err = capfd.readouterr()
    said = out + err
    assert "sunbox tui stopped: unexpected RuntimeError: wiring fault (details in the log)" in said
    assert "Traceback" not in said
    assert "Traceback (most recent call last)" in log_file.read_text()


def test_tui_scan_detects_a_victron_gx(tmp_path: Path) -> None:
    port = free_port()
    config = make_config(
        port,
        devices=[
            {
                "name": "gx",
                "role": "battery",
                "host": "127.0.0.1",
                "port": port,
                "unit_id": 100,
                "map": "victron",
            }
        ],
        heat={"enabled": False, "damper": None, "room_sensor": None},
        sim={"measurement_noise": False, "tick_s": 0.05},
    )

    async def body(app: SunboxTui, pilot: Any, sims: SimulatorSet, clock: ManualClock) -> None:
        await pilot.press("s")
        await settle(pilot, app)
        app.screen.query_one("#scan-units").value = "100,227"
        await pilot.press("ctrl+r")
        await settle(pilot, app, rounds=5)
        rows = table_rows(app, "#scan-results")
        assert len(rows) == 1
        unit, kind, device, models, values = rows[0]
        assert (unit, kind, device, models) == ("100", "victron", "Victron Energy GX", "VE.Bus 227")
        assert values.startswith(f"SoC {sims.snapshot.soc_pct:.0f} bat ")
        await pilot.press("a")
        await settle(pilot, app)
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        gx = app.draft.config.devices[-1]  # appended to the draft (a new file: the demo config)
        assert (gx.name, gx.map, gx.unit_id, gx.vebus_unit_id) == ("battery2", "victron", 100, 227)
        assert gx.limits["victron.2901"].min == config.battery.soc_min_pct

    with_simulator(config, tmp_path, body)
