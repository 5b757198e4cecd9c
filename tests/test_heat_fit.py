"""Room model fit: the measured Armadillo building, a known synthetic room, and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from appliance.cli import main
from appliance.config import load_config
from appliance.heat.fit import fit_room
from appliance.heat.record import load_record
from appliance.heat.room import Room2R2CModel, RoomModel
from tests.conftest import FIELD_DATA, REPO

ARMADILLO = FIELD_DATA / "thermal" / "pysip_armadillo_data_H2.csv"


def test_armadillo_fit_beats_constant_mean_by_far() -> None:
    frame = pd.read_csv(ARMADILLO)
    t_int = frame["T_int"].to_numpy()
    constant_mean_rmse = float(np.sqrt(np.mean((t_int - t_int.mean()) ** 2)))
    report = fit_room(load_record(ARMADILLO), "auto")
    one, two = report.candidates
    print(f"\nArmadillo H2 ({report.samples} samples): constant-mean RMSE "
          f"{constant_mean_rmse:.3f} K")
    for c in report.candidates:
        print(f"  {c.kind}: one-step RMSE {c.rmse_one_step_k:.3f} K, free-run RMSE "
              f"{c.rmse_free_run_k:.3f} K, BIC {c.bic:.1f}")
    print(f"  {report.criterion}")
    assert report.constant_mean_rmse_k == pytest.approx(constant_mean_rmse)
    # Bound: 1 K free-run, 0.3 K one-step; a constant-mean model sits at ~4.7 K.
    assert constant_mean_rmse > 4.0
    assert report.chosen.kind == "2r2c" and two.bic < one.bic - 2
    assert two.rmse_free_run_k < 1.0 < constant_mean_rmse
    assert two.rmse_one_step_k < 0.3
    assert one.rmse_one_step_k < 0.3 and one.rmse_free_run_k < constant_mean_rmse / 2
    m = two.model
    assert isinstance(m, Room2R2CModel)
    # Physically plausible for a small test building: tau of days, R of 0.005-0.05 K/W.
    assert 0.005 < m.r_k_per_w < 0.05 and 24 < m.time_constant_s / 3600 < 200


def _synthetic_room(path: Path, noise_k: float, seed: int = 7) -> RoomModel:
    """Ten days at 30 min of a known 1R1C room, written as the plain CSV layout."""
    true = RoomModel(r_k_per_w=0.012, c_j_per_k=6.0e6, solar_aperture_m2=1.5)
    rng = np.random.default_rng(seed)
    start = datetime(2016, 1, 1, tzinfo=UTC)
    rows: list[list[object]] = []
    temp, heat = 18.0, 0.0
    for k in range(480):
        hour = k / 2 % 24
        outdoor = 4 + 4 * math.sin(2 * math.pi * (hour - 9) / 24) + float(rng.normal(0, 0.5))
        if k % 6 == 0:  # a new heating level every 3 h
            heat = float(rng.choice([0.0, 400.0, 800.0]))
        solar = max(0.0, 300 * math.sin(math.pi * (hour - 7) / 10)) if 7 <= hour <= 17 else 0.0
        stamp = (start + timedelta(minutes=30 * k)).isoformat()
        rows.append([stamp, temp + rng.normal(0, noise_k), outdoor, heat, solar])
        temp = true.step(temp, outdoor, heat, 1800.0, solar)
    frame = pd.DataFrame(rows, columns=["time", "indoor_temp_c", "outdoor_temp_c", "heat_w",
                                        "solar_w_m2"])
    frame.loc[100, "outdoor_temp_c"] = np.nan  # one broken row: dropped, not fatal
    frame.to_csv(path, index=False)
    return true


def test_plain_csv_recovers_known_room_and_prefers_1r1c(tmp_path: Path) -> None:
    data = tmp_path / "room.csv"
    true = _synthetic_room(data, noise_k=0.05)
    rec = load_record(data)
    assert rec.layout == "plain" and rec.dropped_rows == 1 and len(rec) == 479
    report = fit_room(rec, "auto")
    m = report.chosen.model
    assert report.chosen.kind == "1r1c", report.criterion
    assert isinstance(m, RoomModel)
    assert m.r_k_per_w == pytest.approx(true.r_k_per_w, rel=0.05)
    assert m.c_j_per_k == pytest.approx(true.c_j_per_k, rel=0.05)
    assert m.solar_aperture_m2 == pytest.approx(true.solar_aperture_m2, rel=0.1)
    # The dropped row makes one 1 h step; the free run still tracks to ~ the sensor noise.
    assert report.chosen.rmse_free_run_k < 0.15


def test_bad_records_are_refused_with_one_line(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("when,inside\n1,2\n")
    with pytest.raises(ValueError, match="needs columns time,indoor_temp_c"):
        load_record(wrong)
    short = tmp_path / "short.csv"
    short.write_text("time,indoor_temp_c,outdoor_temp_c,heat_w\n0,20,5,0\n1800,20,5,0\n")
    with pytest.raises(ValueError, match="at least 20"):
        load_record(short)
    back = tmp_path / "back.csv"
    lines = ["time,indoor_temp_c,outdoor_temp_c,heat_w"]
    lines += [f"{t},20,5,0" for t in range(0, 60000, 1800)]
    lines[5] = "100,20,5,0"
    back.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="does not increase at data row 5"):
        load_record(back)


SITE = """# my site
[site]
name = "delft-1"   # keep this comment
tz = "Europe/Amsterdam"

[heat]
enabled = true
setpoint_c = 20.0
band_c = 1.0
wanted = [["18:00", "07:00"]]
room_r_k_per_w = 0.01           # room's thermal resistance to outdoors
room_c_j_per_k = 8.0e6          # room's heat capacity
"""


def test_cli_fit_json_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "sunbox.toml"
    cfg.write_text(SITE)
    code = main(["heat", "fit", "--data", str(ARMADILLO), "--write", str(cfg), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["chosen"] == "2r2c"
    changes = {c["key"]: (c["old"], c["new"]) for c in out["written"]["changes"]}
    assert changes["heat.room_r_k_per_w"][0] == 0.01
    assert changes["heat.room_r2_k_per_w"][0] is None
    text = cfg.read_text()
    assert "# keep this comment" in text and "# my site" in text
    loaded = load_config(cfg, environ={})
    assert loaded.heat.room_r2_k_per_w == out["config"]["room_r2_k_per_w"]
    assert loaded.heat.room_c2_j_per_k == out["config"]["room_c2_j_per_k"]
    assert loaded.site.name == "delft-1"
    # Back to 1R1C: the 2R2C keys are removed again; the text report names the changes.
    assert main(["heat", "fit", "--data", str(ARMADILLO), "--model", "1r1c", "--write",
                 str(cfg)]) == 0
    printed = capsys.readouterr().out
    assert "free K" in printed and "constant-mean RMSE (baseline): 4.732 K" in printed
    assert "heat.room_r2_k_per_w: 0.003047 -> -" in printed
    assert load_config(cfg, environ={}).heat.room_r2_k_per_w is None


def test_cli_refuses_bad_inputs_and_leaves_config_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(SITE + "\n[battery]\ncapacity_whh = 5000\n")
    before = broken.read_text()
    assert main(["heat", "fit", "--data", str(ARMADILLO), "--write", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert "battery.capacity_whh: unknown key" in err and len(err.splitlines()) == 1
    assert broken.read_text() == before
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["heat", "fit", "--data", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sunbox: ") and len(err.splitlines()) == 1


def test_sunbox_command_runs_as_a_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "appliance.cli", "heat", "fit", "--data",
                           str(ARMADILLO), "--model", "1r1c"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1r1c" in proc.stdout and "selection: model 1r1c requested" in proc.stdout
