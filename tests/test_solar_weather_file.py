"""The field-data CSV format: round trips, one-line errors naming file/line/column/rule, and the
readers of the raw public files (checked against known values and the committed conversions)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from appliance.solar.field_readers import read_dtu_lyngby, read_nrel_mesa, read_opsd_household
from appliance.solar.weather_file import (
    WeatherFileError,
    read_weather_file,
    validate_weather_frame,
    write_weather_file,
)
from tests.conftest import FIELD_DATA

SOLAR = FIELD_DATA / "solar"
HEADER = "time,ghi_w_m2,temp_air_c,pv_ac_w\n"


def _write(tmp_path: Path, text: str, name: str = "w.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _rows(n: int, step_min: int = 10, ghi: float = 300.0) -> str:
    t0 = pd.Timestamp("2024-06-01T00:00:00+02:00")
    return "".join(
        f"{(t0 + pd.Timedelta(minutes=step_min * i)).isoformat()},{ghi},20.5,{1000 + i}\n"
        for i in range(n)
    )


def test_round_trip_gzip_offsets_and_gaps(tmp_path: Path) -> None:
    text = (
        "time,ghi_w_m2,dni_w_m2,dhi_w_m2,temp_air_c,wind_speed_m_s,cloud_cover_pct,pv_ac_w\n"
        "2024-06-01T10:00:00+02:00,500,600,100,21.5,2.0,40,1500\n"
        "2024-06-01T10:15:00+02:00,,,,21.7,2.1,,1510\n"  # a gap in some columns
        "2024-06-01T09:00:00Z,520,610,105,22.0,2.2,35,1600\n"  # 11:00 local: a missing row before
    )
    frame = read_weather_file(_write(tmp_path, text))
    assert str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-06-01T08:00:00Z")
    assert frame.index[-1] == pd.Timestamp("2024-06-01T09:00:00Z")
    assert np.isnan(frame["ghi_w_m2"].iloc[1]) and frame["pv_ac_w"].iloc[1] == 1510.0
    assert frame.attrs["step_s"] == pytest.approx(1800.0)  # median of 15 min and 45 min
    out = write_weather_file(frame, tmp_path / "copy.csv.gz")
    with gzip.open(out, "rt") as fh:
        first = fh.readlines()[1]
    assert first.startswith("2024-06-01T08:00:00+00:00,500,600,100,21.5,2,40,1500")
    again = read_weather_file(out)
    pd.testing.assert_frame_equal(again, frame, check_freq=False)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("time,ghi,temp_air_c\n", ["line 1", "unknown column 'ghi'", "did you mean 'ghi_w_m2'"]),
        ("when,ghi_w_m2\n2024-01-01T00:00Z,1\n", ["line 1", "no 'time' column"]),
        (
            HEADER + "2024-06-01T00:00:00+00:00,1,2,3\n2024-06-01 00:10:00,1,2,3\n",
            ["line 3", "no UTC offset"],
        ),
        (
            HEADER + "2024-06-01T00:00:00+00:00,1,2,3\nyesterday+01:00,1,2,3\n",
            ["line 3", "not ISO 8601"],
        ),
        (
            HEADER + "2024-06-01T00:00:00+00:00,1,warm,3\n",
            ["line 2", "column 'temp_air_c'", "'warm' is not a number"],
        ),
        (
            HEADER + _rows(3) + "2024-06-01T00:20:00+02:00,1,2,3\n",
            ["line 5", "repeats the previous time"],
        ),
        (HEADER + _rows(3) + "2024-06-01T00:05:00+02:00,1,2,3\n", ["line 5", "goes back in time"]),
        (
            HEADER + _rows(3, step_min=10) + "2024-06-01T00:20:30+02:00,1,2,3\n",
            ["line 5", "30 s apart"],
        ),
        (HEADER + _rows(4, step_min=120), ["typical step is 2 h", "1 min to 1 h"]),
        (HEADER + _rows(3, ghi=2000.0), ["line 2", "column 'ghi_w_m2'", "above 1600", "W/m²"]),
        (HEADER + _rows(200, ghi=0.85), ["column 'ghi_w_m2'", "looks like kW/m²"]),
        (
            HEADER + _rows(3).replace(",20.5,", ",293.6,"),
            ["column 'temp_air_c'", "above 65", "kelvin"],
        ),
        (
            "time,cloud_cover_pct\n2024-06-01T00:00Z,0.2\n2024-06-01T01:00Z,0.9\n",
            ["a fraction", "percent"],
        ),
        ("", ["empty file"]),
        ("time,ghi_w_m2\n", ["no data rows"]),
    ],
)
def test_bad_files_fail_with_one_line_naming_the_rule(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(WeatherFileError) as err:
        read_weather_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, message


def test_pv_units_are_checked_against_capacity(tmp_path: Path) -> None:
    t = pd.date_range("2024-06-01", periods=3 * 96, freq="15min", tz="UTC")
    day = np.clip(np.sin((t.hour + t.minute / 60 - 6) / 12 * np.pi), 0, None)
    kw = pd.DataFrame({"pv_ac_w": 2.8 * day}, index=t)  # kW written in a W column
    path = write_weather_file(kw, tmp_path / "kw.csv")
    assert read_weather_file(path)["pv_ac_w"].max() == pytest.approx(2.8)  # no capacity: no check
    with pytest.raises(
        WeatherFileError, match=r"largest value 2.8 W is under 2 % of the array's 3000 W"
    ):
        read_weather_file(path, capacity_w=3000.0)
    watts = pd.DataFrame({"pv_ac_w": 2800.0 * day}, index=t)
    path = write_weather_file(watts, tmp_path / "w.csv")
    assert read_weather_file(path, capacity_w=3000.0)["pv_ac_w"].max() == pytest.approx(2800.0)
    with pytest.raises(
        WeatherFileError, match=r"line 35, column 'pv_ac_w': 1555.6 W is above 150 %"
    ):
        read_weather_file(path, capacity_w=1000.0)


def test_missing_file_and_frames_from_elsewhere(tmp_path: Path) -> None:
    with pytest.raises(WeatherFileError, match="no such file"):
        read_weather_file(tmp_path / "absent.csv")
    naive = pd.DataFrame({"ghi_w_m2": [1.0]}, index=pd.DatetimeIndex(["2024-01-01"]))
    with pytest.raises(WeatherFileError, match="timezone-aware"):
        validate_weather_frame(naive)
    odd = pd.DataFrame({"irradiance": [1.0]}, index=pd.DatetimeIndex(["2024-01-01"], tz="UTC"))
    with pytest.raises(WeatherFileError, match="unknown column 'irradiance'"):
        validate_weather_frame(odd, "hub feed")


def test_nrel_mesa_reader() -> None:
    frame = read_nrel_mesa(SOLAR / "nrel_mesa_1axis_tracker_ac_power_2010-06-25_30.csv")
    assert len(frame) == 576 and list(frame.columns) == ["pv_ac_w"]
    assert frame.index[0] == pd.Timestamp("2010-06-25T06:00:00Z")  # 00:00 at UTC-06:00
    assert frame["pv_ac_w"].max() == pytest.approx(328580.0)  # 328.58 kW
    committed = read_weather_file(
        SOLAR / "nrel_mesa_1axis_tracker_2010-06-25_30_pv.csv", capacity_w=380e3
    )
    np.testing.assert_allclose(
        committed["pv_ac_w"].to_numpy(), frame["pv_ac_w"].to_numpy(), rtol=1e-5
    )


def test_opsd_reader_turns_the_counter_into_hourly_power() -> None:
    frame = read_opsd_household(
        SOLAR / "opsd_household_DE_KN_residential4_60min_2015-10_2017-02.csv"
    )
    # Counter 2366.250 kWh at 11:00Z and 2373.735 kWh at 12:00Z on 2016-03-19.
    assert frame.loc[pd.Timestamp("2016-03-19T11:00:00Z"), "pv_ac_w"] == pytest.approx(7485.0)
    assert frame.loc[pd.Timestamp("2016-03-19T22:00:00Z"), "pv_ac_w"] == pytest.approx(0.0)
    assert frame["pv_ac_w"].min() >= 0.0 and frame["pv_ac_w"].max() < 10_000.0
    committed = read_weather_file(SOLAR / "opsd_konstanz_residential4_pv_60min.csv.gz")
    assert len(committed) == len(frame)


def test_dtu_reader_and_committed_5min_file() -> None:
    frame = read_dtu_lyngby(SOLAR / "dtu_lyngby_2016_1min.csv.gz", step_min=5)
    committed = read_weather_file(SOLAR / "dtu_lyngby_2016_5min.csv.gz")
    assert list(committed.columns) == [
        "ghi_w_m2",
        "dni_w_m2",
        "dhi_w_m2",
        "temp_air_c",
        "wind_speed_m_s",
    ]
    assert committed.attrs["step_s"] == 300.0
    assert 105_000 <= len(committed) <= 105_408
    np.testing.assert_allclose(
        committed["ghi_w_m2"].to_numpy(), frame["ghi_w_m2"].to_numpy(), rtol=1e-5, atol=1e-3
    )
    june = committed.loc["2016-06-21"]
    assert 800.0 < june["ghi_w_m2"].max() < 1000.0  # Lyngby, midsummer noon
    assert committed["ghi_w_m2"].min() == 0.0
