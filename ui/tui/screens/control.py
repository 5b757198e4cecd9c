"""Safe manual control: write a configured setpoint within its limits (asked first, refused
outside them), hold or release safe mode, run the fault self-test against the simulator."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Static

from appliance.selftest.checks import CheckResult
from appliance.selftest.faults import run_fault_selftest
from appliance.selftest.report import save_report
from ui.tui.guard import guarded
from ui.tui.views import Setpoint
from ui.tui.widgets import ConfirmScreen, SunboxScreen

STATUS_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim"}


class ControlScreen(SunboxScreen):
    HELP = (
        "Arrows pick a setpoint, Enter (or Tab) to the value, type it, Enter writes (asks first). "
        "m safe mode on/off, f fault self-test (simulator only). Esc back"
    )
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("m", "safe_mode", "Safe mode"),
        Binding("f", "fault_test", "Fault test"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = """
    #setpoints { height: 1fr; }
    ControlScreen Horizontal { height: 1; margin: 1 0; }
    ControlScreen Label { padding: 0 1; width: auto; }
    #value { width: 16; }
    #reason { width: 1fr; }
    #fault-results { height: auto; max-height: 8; }
    #safe-state { height: 1; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.setpoints: list[Setpoint] = []
        self.current: dict[str, object] = {}
        self.last_outcome = ""

    def compose_body(self) -> ComposeResult:
        yield Static(id="safe-state")
        yield DataTable(id="setpoints", cursor_type="row")
        with Horizontal():
            yield Label("value")
            yield Input(type="number", placeholder="new value", id="value", compact=True)
            yield Label("why")
            yield Input(placeholder="reason (goes into the event log)", id="reason", compact=True)
        yield DataTable(id="fault-results", cursor_type="row", show_cursor=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#setpoints", DataTable).add_columns("device", "point", "min", "max", "now")
        results = self.query_one("#fault-results", DataTable)
        results.add_columns("fault", "status", "what the box saw")
        results.display = False
        self.query_one("#setpoints", DataTable).focus()
        self.run_worker(self.load_setpoints(), group="setpoints", exit_on_error=False)

    def action_refresh(self) -> None:
        self.tui.request_refresh()

    @guarded
    async def load_setpoints(self) -> None:
        self.setpoints = await self.tui.ctx.backend.setpoints()
        if self.showing():
            await self.reload()

    @guarded
    async def reload(self) -> None:
        self.show_safe_state()
        if not self.setpoints:
            self.show_setpoints()
            return
        try:
            devices = await self.tui.ctx.backend.devices()
        except Exception:  # noqa: BLE001 - current values are a nicety; the table stays usable
            devices = []
        if not self.showing():
            return
        points = {d.name: d.points for d in devices}
        self.current = {s.key: points.get(s.device, {}).get(s.point) for s in self.setpoints}
        self.show_setpoints()

    def show_safe_state(self) -> None:
        box = self.tui.box
        t = Text("Safe mode: ")
        if box is None or box.mode is None:
            t.append("no daemon answers (offline)", style="magenta")
        elif self.forced_safe():
            t.append("HELD by a technician", style="bold red")
            t.append(" - m releases it")
        else:
            t.append(f"not held (mode {box.mode.upper()})", style="green")
            t.append(" - m holds the box in safe mode")
        self.query_one("#safe-state", Static).update(t)

    def forced_safe(self) -> bool:
        box = self.tui.box
        return box is not None and box.mode == "safe" and "manual safe mode" in box.mode_reason

    def show_setpoints(self) -> None:
        table = self.query_one("#setpoints", DataTable)
        row = table.cursor_row
        table.clear()
        for s in self.setpoints:
            now = self.current.get(s.key)
            table.add_row(
                s.device,
                s.point,
                f"{s.min:g}",
                f"{s.max:g}",
                "-" if now is None else f"{now}",
                key=s.key,
            )
        if self.setpoints:
            table.move_cursor(row=max(0, min(row, len(self.setpoints) - 1)), scroll=False)

    def selected(self) -> Setpoint | None:
        if not self.setpoints:
            return None
        table = self.query_one("#setpoints", DataTable)
        return self.setpoints[max(0, min(table.cursor_row, len(self.setpoints) - 1))]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "setpoints":
            self.query_one("#value", Input).focus()

    # ------------------------------------------------------------------ writing
    @guarded
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id in ("value", "reason"):
            self.request_write()

    def request_write(self) -> None:
        sp = self.selected()
        if sp is None:
            self.tui.say("no writable points: the config gives none a limit", "warning")
            return
        text = self.query_one("#value", Input).value.strip()
        try:
            value = float(text)
        except ValueError:
            self.tui.say(f"'{text}' is not a number", "error")
            return
        if not math.isfinite(value):
            self.tui.say("the value must be a finite number", "error")
            return
        refusal = sp.refusal(value)
        if refusal is not None:
            self.last_outcome = refusal
            self.tui.say(refusal, "error")
            return
        reason = self.query_one("#reason", Input).value.strip() or "set from the TUI"
        where = (
            "through the daemon"
            if self.tui.ctx.backend.online
            else "DIRECTLY to the device (offline)"
        )
        question = (
            f"Write {sp.key} = {value:g} (limits {sp.min:g}..{sp.max:g}) {where}?\n"
            f"Reason: {reason}\nIt is read back and logged as an event."
        )

        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(self.write(sp, value, reason), group="write", exit_on_error=False)
            else:
                self.tui.say("not written")

        self.app.push_screen(ConfirmScreen(question), done)

    @guarded
    async def write(self, sp: Setpoint, value: float, reason: str) -> None:
        out = await self.tui.ctx.backend.write_setpoint(sp.device, sp.point, value, reason)
        if out.written:
            self.last_outcome = f"wrote {sp.key} = {value:g}, read back {out.read_back}"
            self.tui.say(self.last_outcome)
        else:
            self.last_outcome = f"{sp.key} = {value:g} not written: {out.reason}"
            self.tui.say(self.last_outcome, "error")
        await self.reload()

    # ------------------------------------------------------------------ safe mode
    @guarded
    def action_safe_mode(self) -> None:
        on = not self.forced_safe()
        question = (
            "Hold the box in SAFE mode? Deferrable jobs are shed until you release it."
            if on
            else "Release the manual safe mode? The box returns to its plan."
        )

        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(self.safe_mode(on), group="safe", exit_on_error=False)

        self.app.push_screen(ConfirmScreen(question), done)

    @guarded
    async def safe_mode(self, on: bool) -> None:
        self.tui.say(await self.tui.ctx.backend.set_safe_mode(on))
        self.tui.request_refresh()

    # ------------------------------------------------------------------ fault test
    @guarded
    def action_fault_test(self) -> None:
        question = (
            "Run the fault self-test? It makes the SIMULATOR's devices fail one by one (silent, "
            "exception, SoC out of range, alarm) and checks the box notices; a running daemon "
            "will go to safe mode for those seconds. Refused unless the devices are a local "
            "simulator."
        )

        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(
                    self.fault_test(), group="faults", exclusive=True, exit_on_error=False
                )

        self.app.push_screen(ConfirmScreen(question), done)

    @guarded
    async def fault_test(self) -> None:
        ctx = self.tui.ctx
        table = self.query_one("#fault-results", DataTable)
        table.clear()
        table.display = True
        self.tui.say("fault self-test running...")

        def progress(r: CheckResult) -> None:
            table.add_row(
                r.id.removeprefix("fault:"),
                Text(r.status.value.upper(), style=STATUS_STYLE[r.status]),
                r.detail,
            )

        report = await run_fault_selftest(ctx.config, ctx.clock, progress)
        report.operator = ctx.operator
        saved = save_report(report, ctx.config, ctx.data_dir, ctx.store)
        severity = {"fail": "error", "warn": "warning"}.get(report.status.value, "information")
        self.tui.say(f"fault self-test {report.summary()}; report {saved.markdown_path}", severity)
