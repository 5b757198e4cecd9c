"""Live view: power flow and SoC, each device's register table (raw, scaled, age), the event
and alarm tail, jobs and links; refreshed on the app's timer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from ui.tui.guard import guarded
from ui.tui.registers import register_rows
from ui.tui.views import BoxState, DeviceView, EventView, JobView, LinksView
from ui.tui.widgets import SunboxScreen, pct, site_time, soc_bar, watts

TABS = ("flow", "devices", "events", "jobs", "links")
SEVERITY_STYLE = {"alarm": "bold red", "warning": "yellow", "info": ""}


def flow_text(state: BoxState | None) -> Text:
    """PV -> battery / loads, with the SoC against the reserve."""
    t = Text()
    if state is None or not state.ready:
        t.append("no state yet", style="dim")
        return t
    bw = state.battery_w
    t.append("  PV ", style="bold yellow")
    t.append(f"{watts(state.pv_w):>8}")
    t.append("  --+--> ", style="dim")
    t.append("battery ", style="bold")
    t.append(watts(bw, signed=True))
    if bw is not None:
        t.append(
            "  charging" if bw > 5 else ("  discharging" if bw < -5 else "  idle"), style="dim"
        )
    t.append("\n")
    t.append("                 |     ", style="dim")
    t.append("SoC ")
    t.append_text(soc_bar(state.soc_pct, state.reserve_pct, 24))
    t.append(f" {pct(state.soc_pct)}\n")
    t.append("                 |     ", style="dim")
    t.append(f"reserve {pct(state.reserve_pct)}", style="yellow")
    if state.soc_min_pct is not None:
        t.append(f", BMS floor {pct(state.soc_min_pct)}", style="dim")
    t.append("\n")
    t.append("                 +--> ", style="dim")
    t.append("loads   ", style="bold")
    t.append(watts(state.load_w))
    parts = []
    if state.compute_w is not None:
        parts.append(f"compute {watts(state.compute_w)}")
    if state.base_w is not None:
        parts.append(f"base {watts(state.base_w)}")
    if parts:
        t.append(" = " + " + ".join(parts))
    t.append("\n\n")
    if state.room_temp_c is not None:
        t.append(f"  Room {state.room_temp_c:.1f} C")
        if state.damper_pct is not None:
            t.append(f", damper {state.damper_pct:.0f} % of the node's heat to the room")
        t.append("\n")
    if state.stale:
        t.append(f"  Stale: {', '.join(state.stale)}\n", style="bold red")
    for a in state.alarms[:4]:
        t.append(f"  ALARM {a.get('source', '')}: {a.get('message', '')}\n", style="bold red")
    return t


class LiveScreen(SunboxScreen):
    HELP = (
        "1-5 switch tabs (flow, devices, events, jobs, links); arrows move; Tab to the register "
        "table; r refreshes now; Esc back"
    )
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('flow')", "Flow"),
        Binding("2", "tab('devices')", "Devices"),
        Binding("3", "tab('events')", "Events"),
        Binding("4", "tab('jobs')", "Jobs"),
        Binding("5", "tab('links')", "Links"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = """
    #flow-text { padding: 1 1; height: auto; }
    #devices-table { height: 6; }
    #links-summary { height: auto; padding: 0 1; }
    LiveScreen TabbedContent { height: 1fr; }
    LiveScreen TabbedContent ContentSwitcher { height: 1fr; }
    LiveScreen TabPane { height: 1fr; padding: 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.device_views: list[DeviceView] = []
        self.selected_device: str | None = None

    def compose_body(self) -> ComposeResult:
        with TabbedContent(initial="flow"):
            with TabPane("1 Flow", id="flow"):
                yield Static(id="flow-text")
            with TabPane("2 Devices", id="devices"):
                yield DataTable(id="devices-table", cursor_type="row")
                yield DataTable(id="registers-table", cursor_type="row", zebra_stripes=True)
            with TabPane("3 Events", id="events"):
                yield DataTable(id="events-table", cursor_type="row")
            with TabPane("4 Jobs", id="jobs"):
                yield DataTable(id="jobs-table", cursor_type="row")
            with TabPane("5 Links", id="links"):
                yield Static(id="links-summary")
                yield DataTable(id="links-table", cursor_type="row")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#devices-table", DataTable).add_columns(
            "device", "role", "status", "identity"
        )
        self.query_one("#registers-table", DataTable).add_columns(
            "point", "raw", "scaled", "unit", "age", "limits"
        )
        self.query_one("#events-table", DataTable).add_columns("time", "sev", "kind", "message")
        self.query_one("#jobs-table", DataTable).add_columns(
            "job", "kind", "state", "power", "done", "why"
        )
        self.query_one("#links-table", DataTable).add_columns(
            "link", "kind", "budget", "last ok", "decision"
        )
        self.show_flow()

    @property
    def active_tab(self) -> str:
        return self.query_one(TabbedContent).active or "flow"

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name
        self.tui.request_refresh()

    def action_refresh(self) -> None:
        self.tui.request_refresh()

    def show_flow(self) -> None:
        self.query_one("#flow-text", Static).update(flow_text(self.tui.box))

    @guarded
    async def reload(self) -> None:
        self.show_flow()
        backend = self.tui.ctx.backend
        tab = self.active_tab
        if tab == "devices":
            devices = await backend.devices()
            if self.showing():
                self.show_devices(devices)
        elif tab == "events":
            events = await backend.events(100)
            if self.showing():
                self.show_events(events)
        elif tab == "jobs":
            jobs = await backend.jobs(100)
            if self.showing():
                self.show_jobs(jobs)
        elif tab == "links":
            links = await backend.links()
            if self.showing():
                self.show_links(links)

    # ------------------------------------------------------------------ tables
    @staticmethod
    def _refill(
        table: DataTable[object], rows: Sequence[tuple[object, ...]], keys: Sequence[str]
    ) -> None:
        """Replace the rows, keeping the cursor on the same row (by key) where possible."""
        current: str | None = None
        if table.row_count and 0 <= table.cursor_row < table.row_count:
            current = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for row, key in zip(rows, keys, strict=True):
            table.add_row(*row, key=key)
        if current is not None and current in keys:
            table.move_cursor(row=list(keys).index(current), scroll=False)

    def show_devices(self, views: list[DeviceView]) -> None:
        self.device_views = views
        table = self.query_one("#devices-table", DataTable)
        rows = []
        for v in views:
            status = (
                Text("ok", style="green")
                if v.connected
                else Text(f"FAILING x{v.failures}: {v.last_error}"[:60], style="bold red")
            )
            ident = " ".join(
                x for x in (v.identity.get("manufacturer"), v.identity.get("model")) if x
            )
            rows.append((v.name, v.role, status, ident))
        self._refill(table, rows, [v.name for v in views])
        if self.selected_device is None and views:
            self.selected_device = views[0].name
        self.show_registers()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "devices-table" and event.row_key.value is not None:
            self.selected_device = str(event.row_key.value)
            self.show_registers()

    def show_registers(self) -> None:
        table = self.query_one("#registers-table", DataTable)
        view = next((v for v in self.device_views if v.name == self.selected_device), None)
        if view is None:
            self._refill(table, [], [])
            return
        config = self.tui.ctx.config
        dev = next((d for d in config.devices if d.name == view.name), None)
        now = (
            self.tui.box.at
            if self.tui.box is not None and self.tui.box.at
            else self.tui.clock.now()
        )
        rows, keys = [], []
        for r in register_rows(view, dev, now):
            style = "red" if r.stale else ""
            rows.append(
                (
                    r.point,
                    r.raw,
                    Text(r.scaled, style=style or "bold"),
                    r.unit,
                    Text(r.age, style=style),
                    r.limits,
                )
            )
            keys.append(r.point)
        if not rows and view.alarms:
            rows = [
                (a.get("code", ""), "", Text(a.get("message", ""), style="red"), "", Text(""), "")
                for a in view.alarms
            ]
            keys = [f"alarm{i}" for i in range(len(rows))]
        self._refill(table, rows, keys)

    def _local(self, moment: datetime | None) -> str:
        if moment is None:
            return "-"
        tz = self.tui.box.tz if self.tui.box is not None else self.tui.ctx.config.site.tz
        return site_time(moment, tz)

    def show_events(self, events: list[EventView]) -> None:
        rows = [
            (
                self._local(e.at),
                Text(e.severity, style=SEVERITY_STYLE.get(e.severity, "")),
                e.kind,
                e.message,
            )
            for e in events
        ]
        self._refill(
            self.query_one("#events-table", DataTable),
            rows,
            [str(e.id if e.id is not None else i) for i, e in enumerate(events)],
        )

    def show_jobs(self, jobs: list[JobView]) -> None:
        rows = [
            (j.name, j.kind, j.state, watts(j.power_w), pct(j.progress_pct), j.why[:60])
            for j in jobs
        ]
        self._refill(
            self.query_one("#jobs-table", DataTable),
            rows,
            [j.id or str(i) for i, j in enumerate(jobs)],
        )

    def show_links(self, links: LinksView) -> None:
        queue = ", ".join(f"{v} {k}" for k, v in links.queue.items() if v) or "empty"
        oldest = (
            ""
            if links.oldest_age_s is None
            else f"; oldest waiting {links.oldest_age_s / 60:.0f} min"
        )
        self.query_one("#links-summary", Static).update(f"Outbox: {queue}{oldest}")
        rows = [
            (
                lk.name,
                lk.kind,
                "-" if lk.used_pct is None else f"{lk.used_pct:.0f} %",
                self._local(lk.last_success),
                lk.decision[:50],
            )
            for lk in links.links
        ]
        self._refill(
            self.query_one("#links-table", DataTable), rows, [lk.name for lk in links.links]
        )
