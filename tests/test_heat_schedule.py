"""Comfort schedule: windows across midnight, DST in Europe/Amsterdam, edge windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.config import HeatConfig
from appliance.heat.schedule import ComfortSchedule


def ams(wanted: list[tuple[str, str]]) -> ComfortSchedule:
    return ComfortSchedule.from_config(HeatConfig(wanted=wanted), "Europe/Amsterdam")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wanted_hours(s: ComfortSchedule, start: datetime, end: datetime) -> float:
    n = int((end - start).total_seconds() // 60)
    return float(s.wanted_mask(start + timedelta(minutes=i) for i in range(n)).sum()) / 60.0


def test_evening_window_crosses_midnight_in_winter() -> None:
    s = ams([("18:00", "07:00")])  # CET = UTC+1 in January
    assert not s.wanted(utc(2024, 1, 15, 16, 59))  # 17:59 local
    assert s.wanted(utc(2024, 1, 15, 17, 0))  # 18:00 local
    assert s.wanted(utc(2024, 1, 15, 22, 59))  # 23:59 local
    assert s.wanted(utc(2024, 1, 15, 23, 0))  # 00:00 local
    assert s.wanted(utc(2024, 1, 16, 5, 59))  # 06:59 local
    assert not s.wanted(utc(2024, 1, 16, 6, 0))  # 07:00 local
    assert wanted_hours(s, utc(2024, 1, 15, 12), utc(2024, 1, 16, 12)) == 13.0
    assert s.comfort_floor_c == 19.0


def test_dst_changes_keep_local_wall_clock_and_change_night_length() -> None:
    s = ams([("18:00", "07:00")])
    # Spring forward 2024-03-31 01:00 UTC: the morning ends at 07:00 CEST = 05:00 UTC ...
    assert s.wanted(utc(2024, 3, 31, 4, 59))
    assert not s.wanted(utc(2024, 3, 31, 5, 0))
    # ... while the day before 05:00 UTC was still 06:00 CET, inside the window.
    assert s.wanted(utc(2024, 3, 30, 5, 0))
    # That night has one real hour less; the autumn one (2024-10-27) one more.
    assert wanted_hours(s, utc(2024, 3, 30, 12), utc(2024, 3, 31, 12)) == 12.0
    assert wanted_hours(s, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12)) == 14.0
    assert s.wanted(utc(2024, 10, 27, 5, 59)) and not s.wanted(utc(2024, 10, 27, 6, 0))
    # The evening starts at 18:00 local on both sides of the change.
    assert not s.wanted(utc(2024, 3, 31, 15, 59)) and s.wanted(utc(2024, 3, 31, 16, 0))


def test_window_inside_the_skipped_hour_never_fires_that_night() -> None:
    s = ams([("02:15", "02:45")])
    assert wanted_hours(s, utc(2024, 3, 30, 12), utc(2024, 3, 31, 12)) == 0.0
    assert wanted_hours(s, utc(2024, 3, 29, 12), utc(2024, 3, 30, 12)) == 0.5
    # The repeated autumn hour happens twice: both count.
    assert wanted_hours(s, utc(2024, 10, 26, 12), utc(2024, 10, 27, 12)) == 1.0


@pytest.mark.parametrize(
    ("wanted", "hours"),
    [([], 0.0), ([("00:00", "00:00")], 24.0), ([("06:00", "08:00"), ("18:00", "22:00")], 6.0),
     ([("22:00", "02:00"), ("01:00", "03:00")], 5.0)],
)
def test_edge_windows(wanted: list[tuple[str, str]], hours: float) -> None:
    s = ams(wanted)
    assert wanted_hours(s, utc(2024, 1, 10, 0), utc(2024, 1, 11, 0)) == hours


def test_other_zone_and_naive_time_rejected() -> None:
    s = ComfortSchedule.from_config(HeatConfig(), "Africa/Nairobi")  # UTC+3, no DST
    assert s.wanted(utc(2024, 6, 1, 15, 0)) and not s.wanted(utc(2024, 6, 1, 14, 59))
    with pytest.raises(ValueError, match="naive"):
        s.wanted(datetime(2024, 6, 1, 15, 0))


@pytest.mark.parametrize(
    "start",
    [
        datetime(2016, 3, 26, 11, 7, tzinfo=UTC),  # the night the clocks go forward is inside
        datetime(2016, 6, 1, 0, 0, tzinfo=UTC),
        datetime(2016, 10, 29, 20, 0, tzinfo=UTC),  # ... and back
    ],
)
def test_wanted_grid_agrees_with_wanted_at_every_slot_midpoint(start: datetime) -> None:
    s = ComfortSchedule.from_config(HeatConfig(wanted=[("17:00", "07:00")]), "Europe/Copenhagen")
    grid = s.wanted_grid(start, 900, 192)
    one_by_one = [s.wanted(start + timedelta(seconds=(i + 0.5) * 900)) for i in range(192)]
    assert grid.tolist() == one_by_one
    assert 0 < grid.sum() < 192
