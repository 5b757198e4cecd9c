"""The technician's terminal UI: commission, diagnose, leave a report.

Keyboard only (a serial console has no mouse), readable at 80x24, every screen with its keys
in the footer. One refresh timer asks the backend for the box's state and lets the screen on
top fetch what it shows; every handler is guarded (ui/tui/guard.py), so a failure is a line in
the message bar, never a traceback on the screen.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker

from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.store import Store
from ui.tui.backend import Backend
from ui.tui.config_edit import ConfigDraft
from ui.tui.guard import guarded, one_line
from ui.tui.views import BoxState
from ui.tui.widgets import SunboxScreen

log = logging.getLogger("ui.tui")
MESSAGES_KEPT = 200


@dataclass
class TuiContext:
    """What the TUI works with; built by ``sunbox tui`` (or a test)."""

    config: SunboxConfig
    config_path: Path  # where the wizard writes (may not exist yet)
    data_dir: Path
    store: Store | None
    backend: Backend
    clock: Clock
    refresh_s: float = 2.0
    operator: str = ""
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)  # said once at start (why offline, ...)


class SunboxTui(App[int]):
    TITLE = "Sunbox"
    SUB_TITLE = "technician"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { background: $background; }
    .title { text-style: bold; color: $accent; padding: 0 1; }
    DataTable { height: 1fr; }
    """
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, ctx: TuiContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.clock = ctx.clock
        self.box: BoxState | None = None
        self.messages: list[tuple[str, str]] = []  # (severity, text), oldest first
        self.refreshes = 0
        self._draft: ConfigDraft | None = None
        self._refresh_worker: Worker[None] | None = None

    # ------------------------------------------------------------------ screens
    def get_default_screen(self) -> Screen[None]:
        from ui.tui.screens.home import HomeScreen

        return HomeScreen()

    def on_mount(self) -> None:
        for note in self.ctx.notes:
            self.say(note, "warning")
        self.set_interval(self.ctx.refresh_s, self.request_refresh)
        self.request_refresh()

    def open(self, name: str) -> None:
        """Push a screen by name (home's menu keys)."""
        from ui.tui.screens import SCREENS

        if name == "wizard":
            _ = self.draft  # a config file that cannot be opened is a message, not a broken screen
        self.push_screen(SCREENS[name]())

    # ------------------------------------------------------------------ data
    @property
    def draft(self) -> ConfigDraft:
        """The config being commissioned (wizard + scan assignments), opened on first use."""
        if self._draft is None:
            self._draft = ConfigDraft.open(self.ctx.config_path)
        return self._draft

    def request_refresh(self) -> None:
        """Start a refresh unless one is still running (a slow device must not pile them up,
        and cancelling one mid-request would leave a Modbus link in doubt)."""
        if self._refresh_worker is not None and self._refresh_worker.is_running:
            return
        self._refresh_worker = self.run_worker(
            self.refresh_now(), group="refresh", exit_on_error=False
        )

    @guarded
    async def refresh_now(self) -> None:
        """Ask the backend for the state, then let the screen on top fetch what it shows."""
        try:
            self.box = await self.ctx.backend.state()
        finally:
            self.refreshes += 1
            screen = self.screen
            if isinstance(screen, SunboxScreen):
                screen.show_status()
        screen = self.screen
        if isinstance(screen, SunboxScreen) and screen.ready:
            await screen.reload()

    # ------------------------------------------------------------------ messages
    def say(self, text: str, severity: str = "information") -> None:
        """One message for the technician: kept on the message line, logged, and toasted."""
        self.messages.append((severity, text))
        del self.messages[:-MESSAGES_KEPT]
        log.info("%s: %s", severity, text)
        screen = self.screen if self.screen_stack else None
        if isinstance(screen, SunboxScreen):
            screen.show_message(text, severity)
        timeout = 8.0 if severity == "error" else 4.0
        level: SeverityLevel = "information"
        if severity == "warning":
            level = "warning"
        elif severity == "error":
            level = "error"
        self.notify(
            Text(text).plain,
            severity=level,
            timeout=timeout,
            markup=False,
        )

    def last_message(self) -> str:
        return self.messages[-1][1] if self.messages else ""

    def _handle_exception(self, error: Exception) -> None:
        """Last line of defence: an exception no handler caught ends the app with one line on
        the terminal and the traceback in the log, never a traceback on the screen."""
        log.error("unhandled: %s\n%s", error, "".join(traceback.format_exception(error)))
        self._return_code = 1
        if self._exception is None:
            self._exception = error
            self._exception_event.set()
        said = one_line(error)
        if self.ctx.log_path is not None:
            said = said.replace("(details in the log)", f"(traceback in {self.ctx.log_path})")
        self._exit_renderables.append(Text(f"sunbox tui stopped: {said}"))
        self._close_messages_no_wait()

    async def on_unmount(self) -> None:
        await self.ctx.backend.close()
