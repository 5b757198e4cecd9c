"""Telemetry as the dashboard needs it: bucket means on a regular grid, not thousands of points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_POINTS = 2000


def bucket_means(
    points: Sequence[tuple[datetime, float]], start: datetime, step_s: float
) -> list[tuple[datetime, float]]:
    """Mean of the samples in each ``step_s`` bucket from ``start`` (empty buckets left out)."""
    sums: dict[int, list[float]] = {}
    t0 = start.timestamp()
    for at, value in points:
        if value is None or not math.isfinite(value):
            continue
        k = int((at.timestamp() - t0) // step_s)
        if k < 0:
            continue
        acc = sums.setdefault(k, [0.0, 0.0])
        acc[0] += value
        acc[1] += 1
    return [
        (start + timedelta(seconds=k * step_s), acc[0] / acc[1]) for k, acc in sorted(sums.items())
    ]


def step_for(span_s: float, wanted_s: float | None) -> float:
    """The bucket size: what was asked, but never so fine that the answer exceeds MAX_POINTS."""
    floor = span_s / MAX_POINTS
    return max(wanted_s or 0.0, floor, 1.0)


def local_midnight(moment: datetime, zone: ZoneInfo) -> datetime:
    """Start of the site's local day holding ``moment``, in UTC (DST-safe)."""
    return datetime.combine(moment.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)


def local_day_after(day_start: datetime, days: int, zone: ZoneInfo) -> datetime:
    """Local midnight ``days`` after the local midnight ``day_start`` (a DST day has 23 or 25 h)."""
    day = day_start.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
