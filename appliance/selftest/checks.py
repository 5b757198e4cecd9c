"""The self-test's checks: each one question about the box, answered pass/warn/fail/skip with
one line a technician can act on and the figures behind it.

Checks are plain functions of the evidence (appliance/selftest/evidence.py), the config and
the store, so the TUI, ``sunbox selftest`` and the tests run the very same code.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import SunboxConfig
from appliance.devices.poller import PLAUSIBLE
from appliance.selftest.evidence import Evidence
from appliance.selftest.sun import check_site
from appliance.state import Channel
from appliance.store import Store, from_ms

# The points the daemon writes the reserve into (appliance/daemon.py RESERVE_POINTS).
RESERVE_POINTS = ("802.SoCRsvMin", "124.MinRsvPct", "victron.2901")
DATA_AHEAD_TOLERANCE_S = 300.0  # stored data may be this far ahead of the clock (other writers)
WALL_TOLERANCE_S = 120.0
RESERVE_TOLERANCE_PCT = 0.5
QUALITY_CODES = ("IMPLAUSIBLE", "IMPLAUSIBLE_JUMP", "FROZEN")
FORECAST_WINDOW_S = 3600.0
FORECAST_MIN_COVERAGE = 0.5
DARK_SHARE = 0.1  # PV under 10 % of the pessimistic forecast...
BRIGHT_SHARE = 0.2  # ...while that forecast promised 20 % of the rating: PV is cut off


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    status: Status
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "detail": self.detail,
            "figures": self.figures,
        }


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------- clock and disk


def newest_data(store: Store) -> datetime | None:
    """Time of the newest telemetry sample or event the box stored."""
    rows = store.query(
        "SELECT max(t) AS t FROM (SELECT max(ts_ms) AS t FROM telemetry UNION ALL "
        "SELECT max(ts_ms) FROM events)"
    )
    return from_ms(rows[0]["t"]) if rows and rows[0]["t"] is not None else None


def check_clock(
    config: SunboxConfig,
    box_now: datetime,
    wall_now: datetime,
    speed: float,
    newest: datetime | None,
) -> CheckResult:
    """A box that lost its time stamps everything wrong and plans for the wrong sun."""
    title = "box clock sane"
    floor = datetime.combine(
        config.selftest.clock_floor, datetime.min.time(), tzinfo=box_now.tzinfo
    )
    local = box_now.astimezone(config.site.zone)
    figures: dict[str, Any] = {
        "box_utc": box_now.isoformat(),
        "site_local": local.isoformat(),
        "speed": speed,
        "newest_data_utc": None if newest is None else newest.isoformat(),
    }
    if box_now < floor:
        return CheckResult(
            "clock",
            title,
            Status.FAIL,
            f"the clock says {box_now:%Y-%m-%d %H:%M} UTC, before "
            f"{config.selftest.clock_floor}: it has lost its time (RTC battery, no network time)",
            figures,
        )
    if newest is not None and speed == 1.0:  # a demo clock runs apart from other writers
        behind_s = (newest - box_now).total_seconds()
        figures["newest_data_ahead_s"] = round(behind_s, 1)
        if behind_s > DATA_AHEAD_TOLERANCE_S:
            return CheckResult(
                "clock",
                title,
                Status.FAIL,
                f"the clock is {_ago(behind_s)} behind the newest stored data: time went backwards",
                figures,
            )
    note = f"{box_now:%Y-%m-%d %H:%M:%S} UTC, {local:%H:%M %Z} at the site"
    if speed != 1.0:
        return CheckResult("clock", title, Status.PASS, f"{note} (demo clock x{speed:g})", figures)
    drift_s = (box_now - wall_now).total_seconds()
    figures["daemon_minus_console_s"] = round(drift_s, 1)
    if abs(drift_s) > WALL_TOLERANCE_S:
        return CheckResult(
            "clock",
            title,
            Status.WARN,
            f"{note}; the daemon's clock and this console's differ by {_ago(abs(drift_s))}",
            figures,
        )
    return CheckResult("clock", title, Status.PASS, note, figures)


DiskUsage = Callable[[Path], Any]


def check_disk(
    config: SunboxConfig, data_dir: Path, store: Store | None, usage: DiskUsage = shutil.disk_usage
) -> CheckResult:
    title = "disk space"
    try:
        du = usage(data_dir)
    except OSError as exc:
        return CheckResult(
            "disk", title, Status.FAIL, f"cannot read the disk of {data_dir}: {exc.strerror or exc}"
        )
    free_mb = du.free / 1e6
    figures: dict[str, Any] = {
        "free_mb": round(free_mb, 1),
        "total_mb": round(du.total / 1e6, 1),
        "data_dir": str(data_dir),
    }
    if store is not None:
        figures["db_mb"] = round(store.size_bytes() / 1e6, 2)
    detail = f"{free_mb:,.0f} MB free of {du.total / 1e6:,.0f} MB at {data_dir}"
    if "db_mb" in figures:
        detail += f"; database {figures['db_mb']:g} MB"
    sc = config.selftest
    if free_mb < sc.disk_fail_free_mb:
        return CheckResult(
            "disk", title, Status.FAIL, detail + f" (under {sc.disk_fail_free_mb:g} MB)", figures
        )
    if free_mb < sc.disk_warn_free_mb:
        return CheckResult(
            "disk", title, Status.WARN, detail + f" (under {sc.disk_warn_free_mb:g} MB)", figures
        )
    return CheckResult("disk", title, Status.PASS, detail, figures)


# --------------------------------------------------------------------------- the box's view


def check_daemon(evidence: Evidence) -> CheckResult:
    title = "daemon running"
    figures = {"source": evidence.source, "mode": evidence.mode}
    if evidence.mode is None:
        return CheckResult(
            "daemon",
            title,
            Status.WARN,
            f"no daemon running: the box controls nothing (evidence from {evidence.source})",
            figures,
        )
    if evidence.mode == "safe":
        return CheckResult(
            "daemon", title, Status.WARN, f"running, in SAFE mode: {evidence.mode_reason}", figures
        )
    return CheckResult(
        "daemon",
        title,
        Status.PASS,
        f"running, mode {evidence.mode.upper()}: {evidence.mode_reason}",
        figures,
    )


def check_devices(config: SunboxConfig, evidence: Evidence) -> list[CheckResult]:
    """Each configured device answers."""
    out = []
    for dev in config.devices:
        cid, title = f"device:{dev.name}", f"{dev.name} ({dev.role}) answers"
        where = (
            f"{dev.host}:{dev.port} unit {dev.unit_id}"
            if dev.transport == "tcp"
            else (f"{dev.serial_port} unit {dev.unit_id}")
        )
        h = evidence.devices.get(dev.name)
        if h is None:
            out.append(
                CheckResult(cid, title, Status.FAIL, f"no health report for {dev.name} at {where}")
            )
            continue
        figures: dict[str, Any] = {"endpoint": where, "failures": h.failures}
        age = None if h.last_ok is None else (evidence.at - h.last_ok).total_seconds()
        figures["last_ok_age_s"] = None if age is None else round(age, 1)
        if h.connected and age is not None and age <= dev.stale_after_s:
            out.append(
                CheckResult(
                    cid,
                    title,
                    Status.PASS,
                    f"{where}: last answer {_ago(max(age, 0.0))} ago",
                    figures,
                )
            )
        else:
            why = h.last_error or "no answer"
            seen = "never answered" if age is None else f"last answer {_ago(age)} ago"
            out.append(
                CheckResult(
                    cid,
                    title,
                    Status.FAIL,
                    f"{where}: {why} ({h.failures} failures in a row, {seen})",
                    figures,
                )
            )
    return out


def check_values(evidence: Evidence) -> CheckResult:
    """Readings inside physical ranges, fresh, not frozen."""
    title = "values plausible"
    bad: list[str] = []
    for channel, r in sorted(evidence.readings.items()):
        lo, hi = PLAUSIBLE.get(channel, (float("-inf"), float("inf")))
        if r.value is not None and not lo <= r.value <= hi:
            bad.append(f"{channel} = {r.value:g} outside {lo:g}..{hi:g}")
    quality = [a for a in evidence.alarms if a.get("code") in QUALITY_CODES]
    bad.extend(a.get("message", a.get("code", "")) for a in quality)
    stale = sorted(c for c, r in evidence.readings.items() if not r.fresh)
    figures = {
        "channels": len(evidence.readings),
        "implausible": bad,
        "stale": stale,
        "values": {c: r.value for c, r in sorted(evidence.readings.items())},
    }
    if not evidence.readings:
        return CheckResult("values", title, Status.FAIL, "no readings at all", figures)
    if bad:
        return CheckResult(
            "values",
            title,
            Status.FAIL,
            "; ".join(bad[:3]) + ("; ..." if len(bad) > 3 else ""),
            figures,
        )
    if stale:
        return CheckResult("values", title, Status.WARN, f"stale: {', '.join(stale)}", figures)
    soc = evidence.value(Channel.SOC_PCT.value)
    pv = evidence.value(Channel.PV_POWER_W.value)
    parts = [f"{len(evidence.readings)} channels in range and fresh"]
    if soc is not None:
        parts.append(f"SoC {soc:.1f} %")
    if pv is not None:
        parts.append(f"PV {pv:.0f} W")
    return CheckResult("values", title, Status.PASS, ", ".join(parts), figures)


def check_alarms(evidence: Evidence) -> CheckResult:
    title = "no device alarms"
    device_alarms = [a for a in evidence.alarms if a.get("code") not in QUALITY_CODES]
    figures = {"alarms": device_alarms}
    alarms = [a for a in device_alarms if a.get("severity") == "alarm"]
    if alarms:
        return CheckResult(
            "alarms",
            title,
            Status.FAIL,
            "; ".join(a.get("message", "") for a in alarms[:3]),
            figures,
        )
    if device_alarms:
        return CheckResult(
            "alarms",
            title,
            Status.WARN,
            "; ".join(a.get("message", "") for a in device_alarms[:3]),
            figures,
        )
    return CheckResult("alarms", title, Status.PASS, "none raised", figures)


def check_battery_limits(config: SunboxConfig, evidence: Evidence) -> CheckResult:
    """The plan's battery numbers must be ones the BMS will honour."""
    title = "battery limits consistent with the BMS"
    bat = config.battery
    problems: list[str] = []
    warnings: list[str] = []
    figures: dict[str, Any] = {
        "reserve_pct": bat.reserve_pct,
        "charge_max_w": bat.charge_max_w,
        "discharge_max_w": bat.discharge_max_w,
    }
    reserve_points = [
        (d.name, p, lim)
        for d in config.devices
        for p, lim in d.limits.items()
        if p in RESERVE_POINTS
    ]
    for dev_name, point, lim in reserve_points:
        if not lim.min <= bat.reserve_pct <= lim.max:
            problems.append(
                f"reserve {bat.reserve_pct:g} % lies outside the write limits of "
                f"{dev_name}.{point} ({lim.min:g}..{lim.max:g}): the BMS can never be told"
            )
    held = evidence.value(Channel.BATTERY_RESERVE_PCT.value)
    figures["bms_reserve_pct"] = held
    if held is not None:
        if held > bat.reserve_pct + RESERVE_TOLERANCE_PCT:
            problems.append(
                f"the BMS holds {held:g} %, above the configured reserve {bat.reserve_pct:g} %: "
                "the plan counts on energy the BMS will not give"
            )
        elif (
            abs(held - bat.reserve_pct) > RESERVE_TOLERANCE_PCT
            and reserve_points
            and config.control.write_reserve_to_bms
        ):
            warnings.append(
                f"the BMS holds {held:g} %, the config {bat.reserve_pct:g} % (the daemon "
                "rewrites it; still different means the write does not stick)"
            )
    for channel, mine, label in (
        (Channel.BATTERY_CHARGE_MAX_W, bat.charge_max_w, "charge"),
        (Channel.BATTERY_DISCHARGE_MAX_W, bat.discharge_max_w, "discharge"),
    ):
        bms = evidence.value(channel.value)
        figures[f"bms_{label}_max_w"] = bms
        if bms is not None and mine > bms * 1.02:
            problems.append(f"{label} limit {mine:g} W exceeds the BMS's {bms:g} W")
    if problems:
        return CheckResult("battery", title, Status.FAIL, "; ".join(problems), figures)
    if warnings:
        return CheckResult("battery", title, Status.WARN, "; ".join(warnings), figures)
    if held is None and evidence.value(Channel.BATTERY_CHARGE_MAX_W.value) is None:
        return CheckResult(
            "battery",
            title,
            Status.SKIP,
            "the BMS reports neither its reserve nor its limits",
            figures,
        )
    shown = f"BMS reserve {held:g} % = configured" if held is not None else "reserve not reported"
    return CheckResult(
        "battery",
        title,
        Status.PASS,
        f"{shown}; charge/discharge {bat.charge_max_w:g}/{bat.discharge_max_w:g} W within the "
        "BMS's limits",
        figures,
    )


# --------------------------------------------------------------------------- the sun


def measured_mean_w(store: Store, start: datetime, end: datetime) -> tuple[float | None, float]:
    """Mean measured PV over [start, end) and the share of 5-minute buckets with data."""
    series = store.telemetry.series(Channel.PV_POWER_W.value, start, end)
    if not series:
        return None, 0.0
    step = 300.0
    n_buckets = max(1, int((end - start).total_seconds() // step))
    buckets: dict[int, list[float]] = {}
    for moment, value in series:
        buckets.setdefault(int((moment - start).total_seconds() // step), []).append(value)
    means = [float(np.mean(v)) for v in buckets.values()]
    return float(np.mean(means)), min(1.0, len(buckets) / n_buckets)


def check_forecast(config: SunboxConfig, store: Store, now: datetime) -> CheckResult:
    """What the box's own forecaster says about the last hour against what the array gave."""
    title = "forecast vs the last hour's measured PV"
    start = now - timedelta(seconds=FORECAST_WINDOW_S)
    measured, coverage = measured_mean_w(store, start, now)
    figures: dict[str, Any] = {
        "measured_w": None if measured is None else round(measured, 1),
        "coverage": round(coverage, 2),
    }
    if measured is None or coverage < FORECAST_MIN_COVERAGE:
        return CheckResult(
            "forecast",
            title,
            Status.SKIP,
            f"only {coverage:.0%} of the last hour has measured PV",
            figures,
        )
    try:
        from appliance.solar.forecaster import load_model

        model = load_model(store, config, extend_ahead_s=0.0)
        fc = model.forecast(
            start, hours=FORECAST_WINDOW_S / 3600.0, step_min=config.planner.slot_min
        )
    except Exception as exc:  # noqa: BLE001 - a model that cannot run is a finding, not a crash
        return CheckResult(
            "forecast", title, Status.SKIP, f"the forecaster could not run: {exc}", figures
        )
    times = fc.times()
    sel = np.array([start - timedelta(seconds=fc.step_s) < t < now for t in times])
    if not sel.any():
        return CheckResult(
            "forecast", title, Status.SKIP, "the forecast does not cover the last hour", figures
        )
    p10, p50, p90 = (float(np.mean(a[sel])) for a in (fc.p10_w, fc.p50_w, fc.p90_w))
    tol = config.selftest.forecast_tolerance_w
    figures.update(
        {
            "p10_w": round(p10, 1),
            "p50_w": round(p50, 1),
            "p90_w": round(p90, 1),
            "tolerance_w": tol,
            "source": fc.source,
        }
    )
    text = f"measured {measured:.0f} W; forecast P50 {p50:.0f} W (P10 {p10:.0f}..P90 {p90:.0f})"
    if p10 >= BRIGHT_SHARE * config.array.ac_limit_w and measured < DARK_SHARE * p10:
        return CheckResult(
            "forecast",
            title,
            Status.FAIL,
            text + ": the array gives almost nothing under a sky the box expected bright "
            "(breaker, MPPT, shading, wiring?)",
            figures,
        )
    if p10 - tol <= measured <= p90 + tol:
        return CheckResult("forecast", title, Status.PASS, text, figures)
    side = "above" if measured > p90 + tol else "below"
    return CheckResult(
        "forecast",
        title,
        Status.WARN,
        text + f": {side} the band by more than {tol:g} W (array size, orientation or sky?)",
        figures,
    )


def check_sun(config: SunboxConfig, store: Store | None, now: datetime) -> CheckResult:
    res = check_site(config.site, config.array, store, now, days=config.selftest.sun_check_days)
    return CheckResult(
        "site", "site location vs the sun", Status(res.status), res.detail, res.figures()
    )
