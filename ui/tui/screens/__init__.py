"""The TUI's screens, by the name the home screen's keys open them with."""

from __future__ import annotations

from ui.tui.screens.control import ControlScreen
from ui.tui.screens.home import HomeScreen
from ui.tui.screens.live import LiveScreen
from ui.tui.screens.scan import ScanScreen
from ui.tui.screens.selftest import SelfTestScreen
from ui.tui.screens.wizard import WizardScreen
from ui.tui.widgets import SunboxScreen

SCREENS: dict[str, type[SunboxScreen]] = {
    "home": HomeScreen,
    "live": LiveScreen,
    "scan": ScanScreen,
    "wizard": WizardScreen,
    "control": ControlScreen,
    "selftest": SelfTestScreen,
}

__all__ = ["SCREENS"]
