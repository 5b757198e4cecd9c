"""``sunbox forecast`` and ``sunbox forecast backtest``: output shapes, learning sources, and
one-line errors with the right exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from appliance.cli import main
from appliance.config import load_config
from appliance.solar.forecaster import Forecaster, save_model
from appliance.solar.pvsystem import ac_power_w
from appliance.store import Store
from tests.conftest import FIELD_DATA, REPO

MESA_CONFIG = REPO / "examples" / "nrel_mesa_tracker.toml"
MESA_PV = FIELD_DATA / "solar" / "nrel_mesa_1axis_tracker_2010-06-25_30_pv.csv"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_forecast_json_in_a_subprocess(tmp_path: Path) -> None:
    proc = _run(
        "forecast",
        "--start",
        "2024-06-21T05:00",
        "--hours",
        "30",
        "--step",
        "30min",
        "--json",
        "--data-dir",
        str(tmp_path / "data"),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    slots = out["slots"]
    assert len(slots) == 60 and out["step_min"] == 30 and out["source"] == "prior"
    first = datetime.fromisoformat(slots[0]["time"])
    assert first == datetime(2024, 6, 21, 2, 0, tzinfo=UTC)  # 05:00 in Nairobi time is 02:00 UTC
    for s in slots:
        assert 0.0 <= s["p10_w"] <= s["p50_w"] <= s["p90_w"]
    assert [d["date"] for d in out["days"]] == ["2024-06-21", "2024-06-22"]
    day = out["days"][0]
    assert day["p50_wh"] == pytest.approx(sum(s["p50_w"] for s in slots[:38]) * 0.5, rel=1e-3)
    assert 0 < day["p10_wh"] < day["p50_wh"] < day["p90_wh"]
    assert not (tmp_path / "data").exists()  # a forecast writes nothing


def test_forecast_table_learns_from_a_history_file(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "forecast",
            "--config",
            str(MESA_CONFIG),
            "--history",
            str(MESA_PV),
            "--start",
            "2010-06-30T00:00-06:00",
            "--hours",
            "24",
            "--step",
            "1h",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "nrel-mesa: 380 kWp single-axis" in text and "source climatology" in text
    rows = [line for line in text.splitlines() if line.startswith("2010-06-30 ")]
    assert len(rows) == 24 + 1  # 24 hourly slots and the day's total
    noon = [line for line in rows if line.startswith("2010-06-30 12:00")][0]
    p10, p50, p90 = (float(v) for v in noon.split()[2:5])
    assert 150_000 < p50 < 320_000 and p10 <= p50 <= p90


def test_forecast_uses_what_the_box_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(MESA_CONFIG)
    start = datetime(2010, 6, 1, tzinfo=UTC)
    slots = pd.date_range(start, periods=20 * 96, freq="15min")
    clear = ac_power_w(config.site, config.array, slots + pd.Timedelta(minutes=7.5))
    store = Store(tmp_path / "sunbox.db")
    now = start + timedelta(days=20)
    # Telemetry only: the command learns from the pv_power_w channel.
    for t, v in zip(slots[::4], 0.3 * clear[::4], strict=True):
        store.telemetry.record(t.to_pydatetime(), {"pv_power_w": float(v)})
    store.close()
    args = [
        "forecast",
        "--config",
        str(MESA_CONFIG),
        "--data-dir",
        str(tmp_path),
        "--start",
        now.isoformat(),
        "--hours",
        "24",
        "--json",
    ]
    assert main(args) == 0
    from_telemetry = json.loads(capsys.readouterr().out)
    assert from_telemetry["source"].endswith("climatology")
    # A saved model wins over telemetry: this one learned a clear climate.
    fc = Forecaster(config)
    fc.observe(slots, clear)
    store = Store(tmp_path / "sunbox.db")
    save_model(store, fc, now)
    store.close()
    assert main(args) == 0
    from_model = json.loads(capsys.readouterr().out)
    cloudy = sum(s["p50_w"] for s in from_telemetry["slots"])
    sunny = sum(s["p50_w"] for s in from_model["slots"])
    assert sunny > 2.0 * cloudy


def test_backtest_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "forecast",
            "backtest",
            "--config",
            str(MESA_CONFIG),
            "--measured",
            str(MESA_PV),
            "--horizon",
            "24h",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "days",
        "mae_w",
        "nmae",
        "rmse_w",
        "bias_w",
        "skill_vs_smart_persistence",
        "p10_exceedance",
        "p90_exceedance",
        "pinball_loss",
    ):
        assert isinstance(out[key], int | float), key
    assert out["days"] == 5 and out["skill_vs_smart_persistence"] > 0
    assert (
        main(["forecast", "backtest", "--config", str(MESA_CONFIG), "--measured", str(MESA_PV)])
        == 0
    )
    text = capsys.readouterr().out
    assert "skill vs smart persistence" in text and "P10 exceedance" in text


def test_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time,pv_ac_kw\n2010-06-25T00:00:00-06:00,1\n", encoding="utf-8")
    proc = _run("forecast", "backtest", "--config", str(MESA_CONFIG), "--measured", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown column 'pv_ac_kw'" in proc.stderr and "did you mean 'pv_ac_w'" in proc.stderr
    kw = tmp_path / "kw.csv"
    t = pd.date_range("2010-06-25", periods=3 * 96, freq="15min", tz="UTC")
    kw.write_text(
        "time,pv_ac_w\n"
        + "".join(
            f"{x.isoformat()},{v:.3f}\n"
            for x, v in zip(t, np.linspace(0, 300, t.size), strict=True)
        )
    )
    assert main(["forecast", "backtest", "--config", str(MESA_CONFIG), "--measured", str(kw)]) == 1
    cec = tmp_path / "cec.toml"
    cec.write_text(MESA_CONFIG.read_text() + 'dc_model = "cec"\ncec_module = "NoSuchModule"\n')
    assert main(["forecast", "--config", str(cec), "--hours", "1"]) == 2
    assert main(["forecast", "--start", "tomorrow", "--hours", "1"]) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["forecast", "--step", "90min"])
    assert exit_info.value.code == 2
