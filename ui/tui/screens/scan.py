"""Modbus scan: a TCP endpoint or an RS485 line, a unit-id range, a live progress bar; SunSpec
discovery, Victron detection and (optionally) plain units that answer; assign a role to what
was found and it joins the commissioning draft."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Checkbox, DataTable, Input, Label, ProgressBar, Select

from appliance.config import DeviceConfig
from appliance.devices.link import Endpoint
from appliance.devices.scan import parse_unit_ids
from ui.tui.guard import guarded
from ui.tui.scanning import ScanHit, run_scan
from ui.tui.screens.assign import AssignScreen
from ui.tui.widgets import SunboxScreen


class ScanScreen(SunboxScreen):
    HELP = (
        "Tab through the fields; Enter on Scan (or Ctrl+R) starts. In the results: arrows pick a "
        "unit, a assigns it a role. Esc back"
    )
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+r", "scan", "Scan", priority=True),
        Binding("a", "assign", "Assign role"),
    ]
    DEFAULT_CSS = """
    ScanScreen Horizontal { height: 1; margin: 1 0 0 0; }
    ScanScreen Label { padding: 0 1; width: auto; }
    #scan-transport { width: 12; }
    #scan-where { width: 1fr; }
    #scan-port { width: 8; }
    #scan-units { width: 14; }
    #scan-timeout { width: 6; }
    #scan-generic { margin: 0 1; }
    #scan-progress-row { height: 1; margin: 1 0 1 0; }
    #scan-progress { width: 44; }
    #scan-results { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[ScanHit] = []
        self.endpoint: Endpoint | None = None
        self.scans = 0

    def compose_body(self) -> ComposeResult:
        cfg = self.tui.ctx.config
        first = cfg.devices[0] if cfg.devices else None
        rtu = first is not None and first.transport == "rtu"
        where = (
            (first.serial_port or "") if rtu and first else (first.host if first else "127.0.0.1")
        )
        port = str(first.baudrate if rtu and first else (first.port if first else 502))
        with Horizontal():
            yield Label("Where")
            yield Select(
                [("TCP", "tcp"), ("RS485", "rtu")],
                value="rtu" if rtu else "tcp",
                allow_blank=False,
                id="scan-transport",
                compact=True,
            )
            yield Input(where, placeholder="host or /dev/ttyUSB0", id="scan-where", compact=True)
            yield Label("port/baud")
            yield Input(port, type="integer", id="scan-port", compact=True)
        with Horizontal():
            yield Label("Units")
            yield Input("1-247", placeholder="1-247", id="scan-units", compact=True)
            yield Label("timeout s")
            yield Input(
                f"{cfg.tui.scan_timeout_s:g}", type="number", id="scan-timeout", compact=True
            )
            yield Checkbox("plain units too", value=False, id="scan-generic", compact=True)
            yield Button("Scan", id="scan-go", variant="primary", compact=True)
        with Horizontal(id="scan-progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="scan-progress")
            yield Label("", id="scan-progress-label")
        yield DataTable(id="scan-results", cursor_type="row")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#scan-results", DataTable).add_columns(
            "unit", "kind", "device", "models", "values"
        )

    def _endpoint(self) -> Endpoint:
        transport = str(self.query_one("#scan-transport", Select).value)
        where = self.query_one("#scan-where", Input).value.strip()
        number = int(self.query_one("#scan-port", Input).value or "0")
        if not where:
            raise ValueError("say where to scan: a host, or a serial device such as /dev/ttyUSB0")
        if transport == "tcp":
            if not 0 < number < 65536:
                raise ValueError(f"port {number} is not a TCP port")
            return Endpoint("tcp", host=where, port=number)
        if number < 300:
            raise ValueError(f"baud rate {number} is too low")
        return Endpoint("rtu", serial_port=where, baudrate=number)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "scan-go":
            self.action_scan()

    @guarded
    def action_scan(self) -> None:
        endpoint = self._endpoint()
        units = parse_unit_ids(self.query_one("#scan-units", Input).value)
        timeout = float(self.query_one("#scan-timeout", Input).value or "0")
        if not 0 < timeout <= 1.0:
            raise ValueError("timeout must be within (0, 1] seconds")
        generic = self.query_one("#scan-generic", Checkbox).value
        self.run_worker(
            self.scan(endpoint, units, timeout, generic),
            group="scan",
            exclusive=True,
            exit_on_error=False,
        )

    @guarded
    async def scan(
        self, endpoint: Endpoint, units: list[int], timeout: float, generic: bool
    ) -> None:
        bar = self.query_one("#scan-progress", ProgressBar)
        label = self.query_one("#scan-progress-label", Label)
        bar.update(total=len(units), progress=0)
        self.tui.say(f"scanning {endpoint}: {len(units)} unit(s)")

        def progress(done: int, total: int, unit: int) -> None:
            bar.update(total=total, progress=done)
            label.update(f" unit {unit} ({done}/{total})")

        self.endpoint = endpoint
        self.hits = await run_scan(endpoint, units, timeout, generic, progress)
        self.scans += 1
        bar.update(progress=len(units))
        self.show_hits()
        named = sum(1 for h in self.hits if h.kind != "generic")
        self.tui.say(
            f"{len(self.hits)} unit(s) answered at {endpoint} ({named} SunSpec/Victron)"
            + ("; pick one and press a to assign a role" if self.hits else "")
        )

    def show_hits(self) -> None:
        table = self.query_one("#scan-results", DataTable)
        table.clear()
        for h in self.hits:
            models = (
                f"VE.Bus {h.vebus_unit_id}"
                if h.vebus_unit_id is not None
                else ",".join(map(str, h.model_ids))
            )
            table.add_row(
                str(h.unit_id), h.kind, h.describe(), models, h.key_values(), key=str(h.unit_id)
            )
        if self.hits:
            table.focus()

    @guarded
    def action_assign(self) -> None:
        table = self.query_one("#scan-results", DataTable)
        if not self.hits or self.endpoint is None:
            self.tui.say("nothing to assign yet: scan first", "warning")
            return
        hit = self.hits[max(0, min(table.cursor_row, len(self.hits) - 1))]
        draft = self.tui.draft
        taken = {d.name for d in draft.config.devices}

        def done(dev: DeviceConfig | None) -> None:
            if dev is None:
                return
            try:
                draft.add_device(dev)
            except Exception as exc:  # noqa: BLE001 - becomes a message
                from ui.tui.guard import report

                report(self, exc)
                return
            self.tui.say(
                f"{dev.name} ({dev.role}, unit {dev.unit_id}) added to the draft of "
                f"{draft.path.name}: review and save in the wizard (w)"
            )

        self.app.push_screen(AssignScreen(hit, self.endpoint, draft.config.battery, taken), done)
