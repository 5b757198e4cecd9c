"""Configuration contract: the issue's keys work as written; mistakes exit 2 naming the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config

ISSUE_EXAMPLE = """
[site]
name = "kisumu-01"
lat = -0.0917
lon = 34.768
altitude_m = 1131
tz = "Africa/Nairobi"

[array]
dc_kw = 3.0
tracker = "dual_axis"
tilt_deg = 10
azimuth_deg = 180
axis_azimuth_deg = 0
max_angle_deg = 60
gcr = 0.35
backtrack = true
losses_pct = 14

[battery]
capacity_wh = 10000
soc_min_pct = 10
soc_max_pct = 100
reserve_pct = 30
charge_max_w = 3000
discharge_max_w = 3000
efficiency = 0.95

[compute]
idle_w = 40
max_w = 300

[loads]
base_w = 25

[[devices]]
name = "inverter"
role = "inverter"
transport = "tcp"
host = "127.0.0.1"
port = 1502
unit_id = 1
map = "sunspec"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sunbox.toml"
    p.write_text(text)
    return p


def test_issue_example_loads_exactly(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE), environ={})
    assert cfg.site.name == "kisumu-01" and cfg.site.altitude_m == 1131
    assert cfg.array.tracker == "dual_axis" and cfg.array.gcr == 0.35 and cfg.array.backtrack
    assert cfg.battery.reserve_pct == 30 and cfg.battery.reserve_wh == 3000
    assert cfg.compute.max_w == 300 and cfg.loads.base_w == 25
    dev = cfg.device("inverter")
    assert (dev.role, dev.transport, dev.port, dev.unit_id, dev.map) == ("inverter", "tcp", 1502, 1, "sunspec")


def test_environment_overrides_sections_and_devices_by_name_or_index(tmp_path: Path) -> None:
    env = {
        "SUNBOX_BATTERY__RESERVE_PCT": "35",
        "SUNBOX_SITE__NAME": "kisumu-02",
        "SUNBOX_DEVICES__INVERTER__PORT": "1600",
        "SUNBOX_DEVICES__0__UNIT_ID": "7",
        "SUNBOX_HEAT__WANTED": '[["17:00", "08:00"]]',
        "OTHER_VARIABLE": "ignored",
    }
    cfg = load_config(write(tmp_path, ISSUE_EXAMPLE), environ=env)
    assert cfg.battery.reserve_pct == 35
    assert cfg.site.name == "kisumu-02"
    assert cfg.devices[0].port == 1600 and cfg.devices[0].unit_id == 7
    assert cfg.heat.wanted == [("17:00", "08:00")]


def test_builtin_demo_config_when_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, environ={})
    assert cfg.site.name == "kisumu-demo"
    assert {d.role for d in cfg.devices} >= {"inverter", "battery", "room_sensor", "damper"}


@pytest.mark.parametrize(
    ("mutation", "field", "words"),
    [
        (("lat = -0.0917", "lat = 200"), "site.lat", ["200", "less than or equal to 90"]),
        (('tracker = "dual_axis"', 'tracker = "sun_follower"'), "array.tracker", ["sun_follower"]),
        (("reserve_pct = 30", "reserve_pct = 5"), "battery", ["reserve_pct (5)", "soc_min_pct (10)"]),
        (("reserve_pct = 30", "reserv_pct = 30"), "battery.reserv_pct", ["unknown key", "reserve_pct"]),
        (('tz = "Africa/Nairobi"', 'tz = "Africa/Nairobbi"'), "site.tz", ["IANA"]),
        (("port = 1502", "port = 70000"), "devices.0.port", ["70000"]),
        (("efficiency = 0.95", 'efficiency = "high"'), "battery.efficiency", ["high"]),
    ],
)
def test_bad_config_names_field_value_and_rule(tmp_path: Path, mutation: tuple[str, str], field: str,
                                                words: list[str]) -> None:
    text = ISSUE_EXAMPLE.replace(*mutation)
    assert text != ISSUE_EXAMPLE
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    message = str(info.value)
    assert "\n" not in message
    assert field in message
    for w in words:
        assert w in message


def test_bad_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[site\nname="), environ={})
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="SUNBOX_DEVICES__PUMP__PORT"):
        load_config(write(tmp_path, ISSUE_EXAMPLE), environ={"SUNBOX_DEVICES__PUMP__PORT": "1"})


def test_cli_exit_code_2_and_one_line_without_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, ISSUE_EXAMPLE.replace("lat = -0.0917", "lat = 200"))
    proc = subprocess.run([sys.executable, "-m", "appliance.cli", "config", "check", "--config", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "site.lat = 200" in lines[0]
    ok = subprocess.run([sys.executable, "-m", "appliance.cli", "config", "check", "--config",
                         str(write(tmp_path, ISSUE_EXAMPLE))], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "kisumu-01" in ok.stdout


def test_examples_are_valid() -> None:
    examples = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))
    assert len(examples) >= 2
    for path in examples:
        load_config(path, environ={})
