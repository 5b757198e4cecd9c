"""The self-test's checks on figures: measured field data against the sun, the forecaster's
last hour, battery limits vs the BMS, the clock, and the report's trip to the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from appliance.config import load_config
from appliance.selftest.checks import (
    RESERVE_POINTS,
    Status,
    check_battery_limits,
    check_clock,
    check_forecast,
    check_values,
)
from appliance.selftest.evidence import Evidence, ReadingEvidence
from appliance.selftest.report import (
    OUTBOX_KIND,
    OUTBOX_STREAM,
    Report,
    outbox_payload,
    save_report,
)
from appliance.selftest.sun import check_site
from appliance.solar.pvsystem import ac_power_w
from appliance.store import Store
from appliance.store.outbox import Priority
from appliance.sync.messages import decode_log
from tests.conftest import FIELD_DATA, REPO, make_config
from tests.tui_helpers import NOW
from ui.tui.scanning import RESERVE_POINT

MESA = FIELD_DATA / "solar" / "nrel_mesa_1axis_tracker_2010-06-25_30_pv.csv"


def evidence(**values: float) -> Evidence:
    return Evidence(
        at=NOW,
        source="test",
        mode="normal",
        readings={k: ReadingEvidence(v, 1.0, True, "battery") for k, v in values.items()},
    )


def test_tui_sun_check_on_measured_tracker_power_moves_4_minutes_per_degree(tmp_path: Path) -> None:
    """NREL Mesa's measured AC power (6 days, 15-min) against the sun at its own site and at
    sites 15 degrees east and 7.5 degrees west: the offset moves by 4 minutes per degree."""
    config = load_config(REPO / "examples" / "nrel_mesa_tracker.toml", environ={})
    store = Store.open_dir(tmp_path)
    frame = pd.read_csv(MESA, parse_dates=["time"], index_col="time")
    for t, v in frame["pv_ac_w"].dropna().items():
        store.telemetry.record(t.to_pydatetime(), {"pv_power_w": float(v)})
    now = datetime(2010, 7, 1, 6, 0, tzinfo=UTC)
    own = check_site(config.site, config.array, store, now)
    east = check_site(
        config.site.model_copy(update={"lon": config.site.lon + 15}), config.array, store, now
    )
    west = check_site(
        config.site.model_copy(update={"lon": config.site.lon - 7.5}), config.array, store, now
    )
    assert own.days_used == east.days_used == 6
    assert (
        own.offset_min is not None and east.offset_min is not None and west.offset_min is not None
    )
    # this data set runs about half an hour ahead of the sun at its published position
    assert -35 <= own.offset_min <= -20 and own.status == "warn"
    assert east.offset_min - own.offset_min == pytest.approx(60, abs=4)
    assert west.offset_min - own.offset_min == pytest.approx(-30, abs=4)
    assert west.status == "fail" and "points to lon" in west.detail
    # whatever longitude is typed, the data point at the same place
    assert east.implied_lon == pytest.approx(own.implied_lon, abs=1.0)
    assert own.solar_noon_local == "13:04 MDT"


def test_tui_sun_check_warns_about_a_time_zone_that_puts_noon_at_dawn(tmp_path: Path) -> None:
    config = make_config(None, site={"tz": "America/New_York"})  # Kisumu on New York's clock
    res = check_site(config.site, config.array, Store.open_dir(tmp_path), NOW)
    assert (
        res.status == "skip"
        and "solar noon falls at 05:" in res.detail
        and "time zone right?" in res.detail
    )


def test_tui_forecast_check_against_the_last_hour(tmp_path: Path) -> None:
    config = make_config(None)
    times = pd.date_range(NOW - timedelta(hours=1), NOW, freq="1min", inclusive="left")
    clear = ac_power_w(config.site, config.array, times)

    def run(factor: float, sub: str) -> Any:
        store = Store.open_dir(tmp_path / sub)
        for t, v in zip(times, clear, strict=True):
            store.telemetry.record(t.to_pydatetime(), {"pv_power_w": float(v) * factor})
        return check_forecast(config, store, NOW)

    ok, double, dark = run(1.0, "clear"), run(2.0, "double"), run(0.001, "dark")
    assert ok.status is Status.PASS and ok.figures["p10_w"] <= ok.figures["measured_w"]
    assert ok.figures["measured_w"] == pytest.approx(float(clear.mean()), rel=0.01)
    assert double.status is Status.WARN and "above the band" in double.detail
    assert dark.status is Status.FAIL and "almost nothing" in dark.detail
    empty = check_forecast(config, Store.open_dir(tmp_path / "none"), NOW)
    assert empty.status is Status.SKIP and "0% of the last hour" in empty.detail


def test_tui_battery_limits_against_what_the_bms_reports() -> None:
    config = make_config(None)
    fine = check_battery_limits(
        config,
        evidence(battery_reserve_pct=30, battery_charge_max_w=3000, battery_discharge_max_w=3500),
    )
    assert fine.status is Status.PASS
    high = check_battery_limits(config, evidence(battery_reserve_pct=45))
    assert (
        high.status is Status.FAIL
        and "the BMS holds 45 %, above the configured reserve 30 %" in high.detail
    )
    drift = check_battery_limits(config, evidence(battery_reserve_pct=20))
    assert drift.status is Status.WARN and "does not stick" in drift.detail
    weak = check_battery_limits(config, evidence(battery_reserve_pct=30, battery_charge_max_w=2000))
    assert (
        weak.status is Status.FAIL and "charge limit 3000 W exceeds the BMS's 2000 W" in weak.detail
    )
    narrow = make_config(
        None,
        devices=[
            {
                "name": "bms",
                "role": "battery",
                "port": 1502,
                "unit_id": 2,
                "limits": {"802.SoCRsvMin": {"min": 40, "max": 100}},
            }
        ],
        heat={"enabled": False, "damper": None, "room_sensor": None},
    )
    unreachable = check_battery_limits(narrow, evidence())
    assert (
        unreachable.status is Status.FAIL
        and "outside the write limits of bms.802.SoCRsvMin" in unreachable.detail
    )


def test_tui_values_and_clock_checks() -> None:
    config = make_config(None)
    bad = check_values(evidence(soc_pct=180.0, pv_power_w=10.0))
    assert bad.status is Status.FAIL and bad.detail == "soc_pct = 180 outside 0..100"
    stale = Evidence(at=NOW, source="t", readings={"soc_pct": ReadingEvidence(50.0, 300.0, False)})
    assert check_values(stale).status is Status.WARN
    lost = check_clock(
        config, datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC), 1.0, None
    )
    assert lost.status is Status.FAIL and "it has lost its time" in lost.detail
    back = check_clock(config, NOW, NOW, 1.0, NOW + timedelta(hours=2))
    assert back.status is Status.FAIL and "2.0 h behind the newest stored data" in back.detail
    drift = check_clock(config, NOW, NOW + timedelta(minutes=10), 1.0, NOW)
    assert drift.status is Status.WARN and "differ by 10 min" in drift.detail
    assert (
        check_clock(config, NOW, NOW - timedelta(hours=5), 30.0, NOW).status is Status.PASS
    )  # demo clock


def test_tui_report_fits_the_smallest_link_that_carries_logs(tmp_path: Path) -> None:
    sbd = {
        "name": "iridium",
        "kind": "satellite_sbd",
        "transport": "sbd",
        "serial_port": "/dev/ttyUSB9",
    }
    config = make_config(None, links=[sbd])
    from appliance.selftest.checks import CheckResult

    checks = [CheckResult(f"c{i}", f"check {i}", Status.FAIL, "x" * 60) for i in range(10)]
    report = Report("selftest", "box-7", "kisumu-demo", "Africa/Nairobi", NOW, NOW, "test", checks)
    store = Store.open_dir(tmp_path)
    saved = save_report(report, config, tmp_path, store)
    assert saved.outbox is not None
    assert len(saved.outbox.payload) <= 340 - 64  # an Iridium message, with room for the framing
    lines = decode_log(saved.outbox.payload)
    assert (
        lines[0] == "selftest 2026-06-21T09:00:00Z kisumu-demo: FAIL (10 fail)"
        and 1 <= len(lines) < 11
    )
    assert (saved.outbox.kind, saved.outbox.stream, saved.outbox.priority) == (
        "log",
        "log",
        Priority.LOG,
    )
    assert saved.outbox.idempotency_key == "kisumu-demo:log:1"
    # without a size limit every line goes
    assert len(decode_log(outbox_payload(report.outbox_lines(), None))) == 11
    again = save_report(report, config, tmp_path, store, enqueue=False)
    assert again.markdown_path.name == "20260621T090000Z-2.md" and again.outbox is None


def test_tui_selftest_speaks_the_same_names_as_the_daemon_and_sync() -> None:
    from appliance.daemon import RESERVE_POINTS as DAEMON_RESERVE_POINTS
    from appliance.sync.service import STREAMS

    assert RESERVE_POINTS == DAEMON_RESERVE_POINTS
    assert set(RESERVE_POINT.values()) <= set(RESERVE_POINTS)
    assert STREAMS[OUTBOX_KIND] == (OUTBOX_STREAM, Priority.LOG)
