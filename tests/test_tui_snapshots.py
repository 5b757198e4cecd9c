"""Snapshots (pytest-textual-snapshot) of the main screens at 80x24 and 120x40.

Deterministic by construction: a fixed published state in a real store, a manual clock, store
only (no device polling). Update after an intended change with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the SVGs in
tests/__snapshots__/test_tui_snapshots/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from appliance.store import Store
from tests.conftest import make_config
from tests.tui_helpers import make_app, publish_state

SCREENS = {
    "home": (),
    "live": ("l",),
    "scan": ("s",),
    "wizard": ("w",),
    "control": ("c",),
    "selftest": ("t",),
}
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_tui_snapshot(screen: str, size: str, tmp_path: Path, snap_compare: Any) -> None:
    config = make_config(1502)
    store = Store.open_dir(tmp_path)
    publish_state(store, alarm=True)
    app = make_app(config, tmp_path, store=store)

    async def run_before(pilot: Pilot[Any]) -> None:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press(*SCREENS[screen])
        for _ in range(3):
            await pilot.pause()
            await app.workers.wait_for_complete()
        for field in app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor is not a regression

    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
