"""Site config -> balena device variables -> load_config gives the same config back."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config import ConfigError, _parse_env_value, load_config, parse_config
from appliance.fleet.env_config import config_to_env, env_value, toml_value
from tests.conftest import REPO, demo_config_data

# A Dutch neighbourhood box: two links, an RTU battery, limits with case and dots, strings that
# would read back as other types if sent bare.
DUTCH_SITE = """
[site]
name = "utrecht-lombok-3"
lat = 52.0907
lon = 5.1214
altitude_m = 5
tz = "Europe/Amsterdam"

[array]
dc_kw = 4.2
tracker = "single_axis"
inverter_ac_kw = 3.6

[battery]
capacity_wh = 13500
reserve_pct = 25

[[devices]]
name = "gx"
role = "inverter"
host = "192.168.1.50"
port = 502
unit_id = 100
map = "victron"
vebus_unit_id = 227
[devices.limits]
"victron.2901" = { min = 10, max = 80 }

[[devices]]
name = "bms"
role = "battery"
transport = "rtu"
serial_port = "/dev/ttyUSB0"
baudrate = 19200
parity = "E"
map = "sunspec"
battery_power_sign = -1
[devices.limits]
"802.SoCRsvMin" = { min = 20, max = 90 }

[heat]
enabled = true
setpoint_c = 20.5
wanted = [["17:30", "23:00"], ["05:30", "08:00"]]

[[links]]
name = "kpn-4g"
kind = "cellular"
url = "https://hub.example.org/ingest"
daily_budget_bytes = 2000000
windows = [["10:00", "16:00"]]

[[links]]
name = "iridium"
kind = "satellite_sbd"
transport = "sbd"
serial_port = "/dev/ttyUSB1"
enabled = false

[sync]
hub_url = "https://hub.example.org"
box_token = "true"

[api]
language = "nl"

[fleet]
update_min_soc_pct = 60
"""


def site(tmp_path: Path, text: str = DUTCH_SITE) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def empty_base(tmp_path: Path) -> Path:
    path = tmp_path / "sunbox.toml"
    path.write_text("# empty: configuration from device variables\n", encoding="utf-8")
    return path


def test_fleet_env_round_trip_over_the_empty_base_the_image_writes(tmp_path: Path) -> None:
    config = load_config(site(tmp_path), environ={})
    env = config_to_env(config)
    assert env["SUNBOX_SITE__NAME"] == "utrecht-lombok-3"
    assert env["SUNBOX_SITE__TZ"] == "Europe/Amsterdam"
    assert env["SUNBOX_DEVICES__1__SERIAL_PORT"] == "/dev/ttyUSB0"
    assert env["SUNBOX_DEVICES__0__LIMITS"] == '{"victron.2901" = {min = 10.0, max = 80.0}}'
    assert env["SUNBOX_HEAT__WANTED"] == '[["17:30", "23:00"], ["05:30", "08:00"]]'
    assert env["SUNBOX_SYNC__BOX_TOKEN"] == '"true"'  # bare true would become a bool
    assert env["SUNBOX_LINKS__1__ENABLED"] == "false"
    assert "SUNBOX_SITE__LAT" in env and "SUNBOX_API__PORT" not in env  # defaults stay out
    assert all(k.isupper() or "_" in k for k in env)
    back = load_config(empty_base(tmp_path), environ=env)
    assert back == config
    # A box commissioned offline holds the same TOML on /data: the variables change nothing.
    assert load_config(site(tmp_path), environ=env) == config


def test_fleet_env_round_trip_of_the_demo_config_over_demo_and_empty_bases(tmp_path: Path) -> None:
    demo = load_config(None, environ={})
    assert load_config(empty_base(tmp_path), environ=config_to_env(demo)) == demo
    # Over the demo itself nothing needs to change.
    assert config_to_env(demo, base=demo_config_data()) == {}
    changed = parse_config(
        {**demo_config_data(), "site": {**demo_config_data()["site"], "name": "kisumu-2"}}
    )
    env = config_to_env(changed, base=demo_config_data())
    assert env == {"SUNBOX_SITE__NAME": "kisumu-2"}
    assert load_config(None, environ=env) == changed


def test_fleet_env_cannot_remove_base_entries(tmp_path: Path) -> None:
    config = load_config(site(tmp_path), environ={})  # 2 devices; the demo base has 4
    with pytest.raises(ConfigError, match="cannot remove entries"):
        config_to_env(config, base=demo_config_data())
    base_with_link = {
        "links": [{"name": "kpn-4g", "kind": "cellular", "url": "https://hub.example.org"}]
    }
    with pytest.raises(ConfigError, match="links: the base config has 1 entries"):
        config_to_env(parse_config({}), base=base_with_link)
    with pytest.raises(ConfigError, match="array.inverter_ac_kw: cannot unset"):
        config_to_env(parse_config({}), base=tomllib.loads(DUTCH_SITE))


def test_fleet_env_gap_in_list_is_a_clear_error(tmp_path: Path) -> None:
    env = {"SUNBOX_DEVICES__1__NAME": "x", "SUNBOX_DEVICES__1__ROLE": "meter"}
    with pytest.raises(ConfigError, match=r"devices\.0\.name"):
        load_config(empty_base(tmp_path), environ=env)
    with pytest.raises(ConfigError, match="at most 255"):
        load_config(empty_base(tmp_path), environ={"SUNBOX_DEVICES__999__NAME": "x"})


text_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        text_values,
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False),
        st.lists(st.one_of(text_values, st.integers(min_value=-1000, max_value=1000)), max_size=4),
        st.dictionaries(
            text_values.filter(bool), st.one_of(st.booleans(), text_values), max_size=3
        ),
    )
)
def test_fleet_env_values_read_back_exactly(value: object) -> None:
    """Whatever the value, config's own env parser reads back the same value and type."""
    back = _parse_env_value(env_value(value))
    assert back == value and type(back) is type(value)
    assert tomllib.loads(f"v = {toml_value(value)}")["v"] == value


def test_fleet_sunbox_fleet_env_command(tmp_path: Path) -> None:
    path = site(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance.cli",
            "fleet",
            "env",
            "--config",
            str(path),
            "--data-dir",
            str(tmp_path / "d"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    env = json.loads(out.stdout)
    assert load_config(empty_base(tmp_path), environ=env) == load_config(path, environ={})
