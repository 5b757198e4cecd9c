"""The first screen: what this is, and how the box is doing right now."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from ui.tui.guard import guarded
from ui.tui.views import BoxState
from ui.tui.widgets import SunboxScreen, mode_text, pct, site_time, soc_bar, watts

BANNER = "SUNBOX  -  sun -> battery -> compute -> heat"
MENU = (
    ("l", "Live view: power flow, devices, registers, events, jobs, links"),
    ("s", "Modbus scan: find devices, assign roles"),
    ("w", "Commissioning wizard: site, array, battery, devices"),
    ("c", "Control: setpoints within limits, safe mode, fault test"),
    ("t", "Self-test and commissioning report"),
)


def summary(state: BoxState | None, backend: str, tz_fallback: str) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    if state is None:
        grid.add_row("State", Text("waiting for the box...", style="dim"))
        grid.add_row("Source", backend)
        return grid
    if not state.ready:
        grid.add_row("State", Text("the daemon has not published a state yet", style="yellow"))
    mode = mode_text(state)
    if state.mode_reason:
        mode.append(f"  {state.mode_reason}", style="")
    grid.add_row("Mode", mode)
    bat = soc_bar(state.soc_pct, state.reserve_pct)
    bat.append(f" {pct(state.soc_pct)}  reserve {pct(state.reserve_pct)}")
    if state.battery_w is not None:
        bat.append(
            f"  {watts(state.battery_w, signed=True)}"
            + (" charging" if state.battery_w > 0 else "")
        )
    grid.add_row("Battery", bat)
    grid.add_row("PV", watts(state.pv_w))
    load = watts(state.load_w)
    if state.compute_w is not None:
        load += f"  (compute {watts(state.compute_w)})"
    grid.add_row("Load", load)
    if state.alarms:
        alarms = Text(f"{len(state.alarms)}: ", style="bold red")
        alarms.append("; ".join(a.get("message", a.get("code", "")) for a in state.alarms[:2]))
        grid.add_row("Alarms", alarms)
    else:
        grid.add_row("Alarms", Text("none", style="green"))
    ok, total = state.devices_answering()
    grid.add_row(
        "Devices", Text(f"{ok}/{total} answering", style="green" if ok == total else "bold red")
    )
    busy = {
        k: v
        for k, v in state.jobs.items()
        if v and k in ("running", "admitted", "suspended", "pending")
    }
    grid.add_row("Jobs", ", ".join(f"{v} {k}" for k, v in busy.items()) or "none active")
    if state.at is not None:
        grid.add_row("State at", site_time(state.at, state.tz or tz_fallback))
    grid.add_row("Source", backend)
    return grid


class HomeScreen(SunboxScreen):
    HELP = "Press a letter to open a screen. r refreshes, q quits. Every screen: Esc goes back."
    BINDINGS = [
        Binding("l", "open('live')", "Live"),
        Binding("s", "open('scan')", "Scan"),
        Binding("w", "open('wizard')", "Wizard"),
        Binding("c", "open('control')", "Control"),
        Binding("t", "open('selftest')", "Self-test"),
        Binding("r", "refresh", "Refresh"),
        Binding("q", "app.quit", "Quit"),
        Binding("escape", "back", "Back", show=False),
    ]
    DEFAULT_CSS = """
    #banner { text-style: bold; color: $warning; padding: 1 1 0 1; }
    #summary { padding: 1 1; height: auto; }
    #menu { padding: 0 1; height: auto; color: $text-muted; }
    """

    def compose_body(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(BANNER, id="banner")
            yield Static(id="summary")
            menu = Text()
            for key, text in MENU:
                menu.append(f" {key} ", style="bold reverse")
                menu.append(f" {text}\n")
            yield Static(menu, id="menu")

    def on_mount(self) -> None:
        super().on_mount()
        self.show_summary()

    def show_summary(self) -> None:
        app = self.tui
        self.query_one("#summary", Static).update(
            summary(app.box, app.ctx.backend.describe(), app.ctx.config.site.tz)
        )

    async def reload(self) -> None:
        self.show_summary()

    @guarded
    def action_open(self, name: str) -> None:
        self.tui.open(name)

    def action_refresh(self) -> None:
        self.tui.request_refresh()
