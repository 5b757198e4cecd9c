"""Shared pieces of the TUI tests: a store with a published state, the app around a backend,
waiting for the refresh workers, and the text a widget shows."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from appliance import snapshot
from appliance.clock import ManualClock
from appliance.config import SunboxConfig
from appliance.state import Alarm, DeviceHealth, Mode, Reading, Severity, SiteState
from appliance.store import Store
from ui.tui.app import SunboxTui, TuiContext
from ui.tui.backend import Backend
from ui.tui.offline import OfflineBackend

NOW = datetime(2026, 6, 21, 9, 0, tzinfo=UTC)  # 12:00 in Kisumu (EAT)


def publish_state(
    store: Store,
    at: datetime = NOW,
    *,
    soc: float = 64.2,
    alarm: bool = False,
    failing: str | None = None,
) -> None:
    """A daemon's published snapshot, as appliance/daemon.py writes it, with fixed figures."""

    def r(value: float, source: str) -> Reading:
        return Reading(value, at, 15.0, source)

    readings = {
        "soc_pct": r(soc, "battery"),
        "pv_power_w": r(2404.0, "inverter"),
        "battery_power_w": r(2214.0, "battery"),
        "ac_load_power_w": r(175.0, "inverter"),
        "compute_power_w": r(150.0, "inverter"),
        "battery_reserve_pct": r(30.0, "battery"),
        "battery_charge_max_w": r(3000.0, "battery"),
        "battery_discharge_max_w": r(3000.0, "battery"),
        "room_temp_c": r(21.4, "room"),
        "damper_pct": r(0.0, "damper"),
    }
    devices = {
        n: DeviceHealth(
            n,
            connected=n != failing,
            last_ok=at if n != failing else None,
            consecutive_failures=3 if n == failing else 0,
            last_error="timeout" if n == failing else "",
        )
        for n in ("inverter", "battery", "room", "damper")
    }
    alarms = (
        (Alarm("battery", "OVER_TEMP", "battery: over temperature", Severity.ALARM),)
        if alarm
        else ()
    )
    state = SiteState(at=at, readings=readings, alarms=alarms, devices=devices)
    snapshot.publish(
        store,
        snapshot.from_state(
            state,
            Mode.NORMAL,
            "plan followed",
            {"heartbeat": at.isoformat(), "speed": 1.0, "pid": 1},
        ),
    )


def make_app(
    config: SunboxConfig,
    tmp: Path,
    *,
    backend: Backend | None = None,
    store: Store | None = None,
    clock: ManualClock | None = None,
    config_path: Path | None = None,
    poll: bool = False,
    refresh_s: float = 60.0,
) -> SunboxTui:
    """The TUI on ``tmp`` (data dir); offline on the store by default. ``refresh_s`` is long so the
    tests decide when a refresh happens (r, or ``app.request_refresh``)."""
    clock = clock or ManualClock(NOW)
    store = store or Store.open_dir(tmp)
    backend = backend or OfflineBackend(config, store, clock, poll=poll)
    ctx = TuiContext(
        config=config,
        config_path=config_path or tmp / "sunbox.toml",
        data_dir=tmp,
        store=store,
        backend=backend,
        clock=clock,
        refresh_s=refresh_s,
        operator="tester",
    )
    return SunboxTui(ctx)


async def settle(pilot: Pilot[Any], app: SunboxTui, rounds: int = 3) -> None:
    """Let messages, workers (refresh, scan, writes) and screen changes finish."""
    for _ in range(rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
    await pilot.pause()


async def refresh(pilot: Pilot[Any], app: SunboxTui) -> None:
    await settle(pilot, app)
    app.request_refresh()
    await settle(pilot, app)


def plain(content: Any, width: int = 140) -> str:
    """What a renderable (Text, a rich Table, a string) shows, as plain text."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(content)
    return console.export_text()


def shown(app: SunboxTui, selector: str) -> str:
    return plain(app.screen.query_one(selector, Static).content)


def table_rows(app: SunboxTui, selector: str) -> list[list[str]]:
    from textual.widgets import DataTable

    table = app.screen.query_one(selector, DataTable)
    return [[plain(c).strip() for c in table.get_row_at(i)] for i in range(table.row_count)]
