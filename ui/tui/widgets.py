"""Pieces every screen shares: the status bar (box, site time, mode), the message line, the
help line, the power-flow panel, and the base screen that wires them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from ui.tui.views import BoxState

if TYPE_CHECKING:
    from ui.tui.app import SunboxTui

MODE_STYLE = {"normal": "bold green", "shed": "bold yellow", "safe": "bold red"}


def watts(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return f"{value / 1000:+.1f} kW" if signed else f"{value / 1000:.1f} kW"
    return f"{value:+.0f} W" if signed else f"{value:.0f} W"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def site_time(moment: datetime, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%a %H:%M %Z")


def soc_bar(soc: float | None, reserve: float | None, width: int = 20) -> Text:
    """SoC as a bar with the reserve marked: the line the battery must not cross by choice."""
    text = Text()
    if soc is None:
        return Text("[" + "?" * width + "]", style="dim")
    filled = max(0, min(width, round(soc / 100.0 * width)))
    mark = None if reserve is None else max(0, min(width - 1, round(reserve / 100.0 * width)))
    style = "green" if reserve is None or soc >= reserve else "red"
    text.append("[")
    for i in range(width):
        ch = "#" if i < filled else "."
        if mark is not None and i == mark:
            text.append("|", style="bold yellow")
        else:
            text.append(ch, style=style if i < filled else "dim")
    text.append("]")
    return text


def mode_text(state: BoxState | None) -> Text:
    if state is None or not state.mode:
        return Text.assemble(("NO DAEMON", "bold magenta"))
    return Text.assemble((state.mode.upper(), MODE_STYLE.get(state.mode, "bold")))


class StatusBar(Static):
    """Top line: product, site, the site's local time, mode, SoC, where the data comes from."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    """

    def show(self, app: SunboxTui) -> None:
        state = app.box
        now = app.clock.now()
        tz = state.tz if state is not None else app.ctx.config.site.tz
        line = Text()
        line.append("SUNBOX ", style="bold yellow")
        line.append(f"{app.ctx.config.site.name}  {site_time(now, tz)}  ")
        line.append_text(mode_text(state))
        if state is not None and state.soc_pct is not None:
            line.append(f"  SoC {state.soc_pct:.0f} %")
        line.append(
            "  " + ("online" if app.ctx.backend.online else "OFFLINE"),
            style="green" if app.ctx.backend.online else "bold magenta",
        )
        self.update(line)


class MessageLine(Static):
    """The last message, kept on screen (a toast is easy to miss in full sun)."""

    DEFAULT_CSS = """
    MessageLine { height: 1; padding: 0 1; color: $text-muted; }
    MessageLine.-error { color: $error; text-style: bold; }
    MessageLine.-warning { color: $warning; }
    """

    def show(self, text: str, severity: str) -> None:
        self.set_class(severity == "error", "-error")
        self.set_class(severity == "warning", "-warning")
        self.update(Text(text))


class HelpLine(Static):
    DEFAULT_CSS = """
    HelpLine { height: auto; max-height: 2; padding: 0 1; color: $text-muted; background: $boost; }
    """


class SunboxScreen(Screen[None]):
    """Status bar on top; message line, help line and key bindings (footer) at the bottom."""

    HELP = ""
    DEFAULT_CSS = """
    SunboxScreen #body { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "back", "Back")]
    ready = False  # set once mounted: the refresh timer may fire before

    @property
    def tui(self) -> SunboxTui:
        from ui.tui.app import SunboxTui

        app = self.app
        assert isinstance(app, SunboxTui)
        return app

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="body"):
            yield from self.compose_body()
        yield MessageLine(id="message")
        yield HelpLine(self.HELP, id="help")
        yield Footer()

    def on_mount(self) -> None:
        self.ready = True
        self.show_status()
        last = self.tui.messages[-1] if self.tui.messages else None
        if last is not None:
            self.query_one(MessageLine).show(last[1], last[0])

    def show_status(self) -> None:
        if self.ready:
            self.query_one(StatusBar).show(self.tui)

    def show_message(self, text: str, severity: str) -> None:
        if self.ready:
            self.query_one(MessageLine).show(text, severity)

    async def reload(self) -> None:
        """Fetch what this screen shows (called on every refresh tick and on 'r')."""

    def showing(self) -> bool:
        """Still on top? An answer that arrives after the technician left is dropped."""
        return self.is_attached and self.app.screen is self

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no, by keyboard: y / n (or Escape)."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Static { width: 70; max-width: 95%; height: auto; border: thick $warning;
                             background: $surface; padding: 1 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text(self.question + "\n\n") + Text("y = yes, n / Esc = no", style="bold"))
        yield Footer()

    def action_answer(self, yes: Any) -> None:
        self.dismiss(bool(yes))
