"""Commissioning wizard: keystrokes in, a valid TOML file out (through the config's own models,
comments kept, diff shown first), and the site's position checked against the sun."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from appliance.config import ConfigError, DeviceConfig, demo_config_text, load_config
from appliance.solar.pvsystem import ac_power_w
from appliance.store import Store
from tests.tui_helpers import NOW, make_app, publish_state, settle, shown, table_rows
from ui.tui.config_edit import ConfigDraft
from ui.tui.screens.wizard import WizardScreen
from ui.tui.widgets import ConfirmScreen


def measured_pv(store: Store, days: int = 2) -> None:
    """Two days of PV as the configured array at Kisumu delivers it (the one PV chain), 5-min."""
    config = load_config(None, environ={})
    times = pd.date_range(NOW - timedelta(days=days), NOW, freq="5min", inclusive="left")
    power = ac_power_w(config.site, config.array, times)
    for t, p in zip(times, power, strict=True):
        store.telemetry.record(t.to_pydatetime(), {"pv_power_w": float(p)})


def test_tui_wizard_produces_a_valid_config_from_keystrokes(tmp_path: Path) -> None:
    path = tmp_path / "sunbox.toml"
    path.write_text(demo_config_text(), encoding="utf-8")
    config = load_config(path, environ={})
    store = Store.open_dir(tmp_path)
    publish_state(store)
    measured_pv(store)

    async def main() -> None:
        app = make_app(config, tmp_path, store=store, config_path=path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            await pilot.press("w")
            await settle(pilot, app)
            assert isinstance(app.screen, WizardScreen)
            # 1 Site: name, lat, lon (15 degrees off on purpose), altitude, tz
            await pilot.press(*"kisumu-2", "tab", *"-0.1", "tab", *"19.768")
            await pilot.press("ctrl+k")
            await settle(pilot, app)
            assert app.last_message().startswith(
                "sun check FAIL: PV comes 60 min earlier than the sun"
            )
            assert "points to lon 34.8" in app.last_message()
            assert "FAIL" in shown(app, "#sun-result")
            await pilot.press("end", "ctrl+u", *"34.768", "ctrl+n")  # ctrl+u clears the field
            await settle(pilot, app)
            assert app.last_message().startswith("sun check PASS: PV comes 0 min")
            # 2 Array: 4.5 kWp
            await pilot.press(*"4.5", "ctrl+n")
            await settle(pilot, app)
            # 3 Battery: a reserve under the BMS floor is refused by the model, the step stays
            await pilot.press("tab", "tab", "tab", *"5", "ctrl+n")
            await settle(pilot, app)
            assert (
                app.last_message()
                == "[battery] reserve_pct (5) must be at or above soc_min_pct (10)"
            )
            assert app.screen.step == 2
            await pilot.press("end", "ctrl+u", *"35", "ctrl+n")
            await settle(pilot, app)
            # 4 Devices: the damper cannot go while [heat] names it; the inverter can
            await pilot.press("down", "down", "down", "d", "y")
            await settle(pilot, app)
            assert "heat.damper names device 'damper'" in app.last_message()
            await pilot.press("up", "up", "up", "d")
            await settle(pilot, app)
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot, app)
            assert [r[0] for r in table_rows(app, "#devices-list")] == ["battery", "room", "damper"]
            # 5 Review: the diff, then save (asked first)
            await pilot.press("ctrl+n")
            await settle(pilot, app)
            diff = shown(app, "#review-diff")
            assert '-name = "kisumu-demo"' in diff and '+name = "kisumu-2"' in diff
            assert (
                "+lat = -0.1" in diff and "+reserve_pct = 35.0" in diff and "+dc_kw = 4.5" in diff
            )
            assert '-name = "inverter"' in diff
            assert "Valid:" in shown(app, "#review-status")
            await pilot.press("ctrl+s")
            await settle(pilot, app)
            await pilot.press("y")
            await settle(pilot, app)
            assert app.last_message().startswith(f"saved {path} (previous kept as sunbox.toml.bak)")

    asyncio.run(main())
    saved = load_config(path, environ={})
    assert (saved.site.name, saved.site.lat, saved.site.lon) == ("kisumu-2", -0.1, 34.768)
    assert saved.array.dc_kw == 4.5 and saved.battery.reserve_pct == 35.0
    assert [d.name for d in saved.devices] == ["battery", "room", "damper"]
    text = path.read_text()
    assert text.startswith("# Built-in demo box")  # the file's comments survive
    assert (tmp_path / "sunbox.toml.bak").read_text() == demo_config_text()


def test_tui_config_draft_rolls_back_what_the_models_refuse(tmp_path: Path) -> None:
    draft = ConfigDraft.open(tmp_path / "new.toml")  # a new file starts from the demo config
    assert not draft.exists and draft.diff().startswith("--- /dev/null")
    before = draft.text()
    with pytest.raises(ConfigError, match=r"\[site\] tz: must be an IANA time zone"):
        draft.set_section("site", {"tz": "Mars/Olympus"})
    with pytest.raises(ConfigError, match="already configured"):
        draft.add_device(DeviceConfig(name="battery", role="battery"))
    assert draft.text() == before
    # unchanged values leave the file alone; an emptied optional field returns to its default
    draft.set_section("array", {"dc_kw": 3.0, "inverter_ac_kw": 2.5})
    assert "inverter_ac_kw = 2.5" in draft.text() and "dc_kw = 3.0\n" in draft.text()
    draft.set_section("array", {"inverter_ac_kw": None})
    assert "inverter_ac_kw" not in draft.text() and draft.text() == before
    draft.add_device(
        DeviceConfig(
            name="meter",
            role="meter",
            port=1502,
            unit_id=9,
            limits={"damper_pct": {"min": 0, "max": 1}},
        )
    )
    assert draft.save() is None
    reread = load_config(tmp_path / "new.toml", environ={})
    assert (
        reread.device("meter").unit_id == 9 and reread.device("meter").limits["damper_pct"].max == 1
    )


def test_tui_wizard_on_a_broken_file_says_why_and_stays_home(tmp_path: Path) -> None:
    path = tmp_path / "sunbox.toml"
    path.write_text("[site\nname = 'x'\n", encoding="utf-8")

    async def main() -> None:
        app = make_app(load_config(None, environ={}), tmp_path, config_path=path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            await pilot.press("w")
            await settle(pilot, app)
            assert not isinstance(app.screen, WizardScreen)
            assert app.last_message().startswith(f"config error in {path}: not valid TOML")
            assert app.is_running

    asyncio.run(main())
