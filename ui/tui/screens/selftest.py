"""Self-test and commissioning report: run the checks, watch them come in, and leave a
Markdown + JSON report in the data directory (and a summary in the outbox for the fleet)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.selftest import CHECK_TITLES, CheckResult, SavedReport, run_selftest, save_report
from ui.tui.guard import guarded
from ui.tui.widgets import SunboxScreen

STATUS_STYLE = {"pass": "bold green", "warn": "bold yellow", "fail": "bold red", "skip": "dim"}


class SelfTestScreen(SunboxScreen):
    HELP = "r runs the self-test and saves the report (data dir/reports, and the outbox). Esc back"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("r", "run", "Run self-test")]
    DEFAULT_CSS = """
    #selftest-summary { height: auto; padding: 0 1; }
    #checks { height: 1fr; }
    #check-detail { height: auto; max-height: 4; padding: 0 1; background: $boost; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.results: list[CheckResult] = []
        self.saved: SavedReport | None = None
        self.running = False

    def compose_body(self) -> ComposeResult:
        yield Static(Text("Not run yet: press r.", style="dim"), id="selftest-summary")
        yield DataTable(id="checks", cursor_type="row")
        yield Static(id="check-detail")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#checks", DataTable)
        table.add_columns("status", "check", "detail")
        for cid, title in CHECK_TITLES:
            table.add_row(Text("-", style="dim"), title, "", key=cid)
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The whole detail of the highlighted check (the table cuts it at 80 columns)."""
        found = next((r for r in self.results if r.id == event.row_key.value), None)
        detail = self.query_one("#check-detail", Static)
        if found is None:
            detail.update("")
            return
        t = Text.assemble((f"{found.status.value.upper()} ", STATUS_STYLE[found.status.value]))
        t.append(f"{found.title}: ", style="bold")
        t.append(found.detail)
        detail.update(t)

    @guarded
    def action_run(self) -> None:
        if self.running:
            self.tui.say("the self-test is already running", "warning")
            return
        self.run_worker(self.run_checks(), group="selftest", exclusive=True, exit_on_error=False)

    @guarded
    async def run_checks(self) -> None:
        ctx = self.tui.ctx
        table = self.query_one("#checks", DataTable)
        summary = self.query_one("#selftest-summary", Static)
        self.running = True
        try:
            table.clear()
            self.results = []
            summary.update(Text("Running...", style="bold"))

            def progress(r: CheckResult) -> None:
                self.results.append(r)
                table.add_row(
                    Text(r.status.value.upper(), style=STATUS_STYLE[r.status.value]),
                    r.title,
                    r.detail,
                    key=r.id,
                )

            doc, source = await ctx.backend.evidence()
            report = await run_selftest(
                ctx.config,
                ctx.store,
                ctx.data_dir,
                ctx.clock,
                state_doc=doc,
                state_source=source,
                wall=ctx.clock,
                progress=progress,
                operator=ctx.operator,
            )
            self.saved = save_report(report, ctx.config, ctx.data_dir, ctx.store)
        finally:
            self.running = False
        style = STATUS_STYLE[report.status.value]
        t = Text.assemble(("Result: ", "bold"))
        t.append(report.summary(), style=style)
        t.append(f"\nReport: {self.saved.markdown_path} (+ .json)")
        if self.saved.outbox is not None:
            t.append(f"; queued for the fleet manager (outbox #{self.saved.outbox.id})")
        summary.update(t)
        severity = {"fail": "error", "warn": "warning"}.get(report.status.value, "information")
        self.tui.say(
            f"self-test {report.summary()}; report {self.saved.markdown_path.name}", severity
        )
