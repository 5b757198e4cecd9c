"""The daily summary of a box, computed from its own store (telemetry, jobs, events, outbox).

Energies are integrals of the power channels with a sample-and-hold rule that does not bridge
gaps longer than ``max_gap_s`` (a box that was off produced nothing we know of).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from appliance.state import Channel, JobState, Severity
from appliance.store import Store
from appliance.sync.messages import DailySummary


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day as aware datetimes."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


def _energy_wh(
    samples: list[tuple[datetime, float]], end: datetime, max_gap_s: float, sign: float = 1.0
) -> float:
    total = 0.0
    for (t0, v0), (t1, _) in zip(samples, [*samples[1:], (end, 0.0)], strict=True):
        dt = min((t1 - t0).total_seconds(), max_gap_s)
        if dt > 0:
            total += max(0.0, sign * v0) * dt
    return total / 3600.0


def compute_daily_summary(
    store: Store, day: date, zone: ZoneInfo, max_gap_s: float = 900.0
) -> DailySummary:
    start, end = local_day_bounds(day, zone)

    def series(channel: Channel) -> list[tuple[datetime, float]]:
        return store.telemetry.series(channel.value, start, end)

    def energy(channel: Channel, sign: float = 1.0) -> float | None:
        samples = series(channel)
        return _energy_wh(samples, end, max_gap_s, sign) if samples else None

    soc = series(Channel.SOC_PCT)
    room = series(Channel.ROOM_TEMP_C)
    coverage = None
    if soc:
        covered = sum(
            min((t1 - t0).total_seconds(), max_gap_s)
            for (t0, _), (t1, _) in zip(soc, [*soc[1:], (end, 0.0)], strict=True)
        )
        coverage = 100.0 * covered / (end - start).total_seconds()
    done = failed = missed = 0
    for job in store.jobs.list(limit=100_000):
        if job.finished_at is None or not (start <= job.finished_at < end):
            continue
        if job.state == JobState.DONE:
            done += 1
        elif job.state == JobState.FAILED:
            failed += 1
        elif job.state == JobState.MISSED:
            missed += 1
    alarms = warnings = 0
    for ev in store.events.list(since=start, min_severity=Severity.WARNING, limit=1_000_000):
        if ev.at >= end:
            continue
        if ev.severity == Severity.ALARM:
            alarms += 1
        else:
            warnings += 1
    return DailySummary(
        day=day,
        pv_energy_wh=energy(Channel.PV_POWER_W),
        load_energy_wh=energy(Channel.AC_LOAD_POWER_W),
        compute_energy_wh=energy(Channel.COMPUTE_POWER_W),
        battery_charge_wh=energy(Channel.BATTERY_POWER_W, 1.0),
        battery_discharge_wh=energy(Channel.BATTERY_POWER_W, -1.0),
        soc_min_pct=min(v for _, v in soc) if soc else None,
        soc_max_pct=max(v for _, v in soc) if soc else None,
        soc_end_pct=soc[-1][1] if soc else None,
        room_temp_min_c=min(v for _, v in room) if room else None,
        room_temp_max_c=max(v for _, v in room) if room else None,
        telemetry_coverage_pct=coverage,
        jobs_done=done,
        jobs_failed=failed,
        jobs_missed=missed,
        alarms=alarms,
        warnings=warnings,
        outbox_depth=sum(store.outbox.depth_by_priority().values()),
    )
