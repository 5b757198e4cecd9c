"""The fleet report: one row per box with balena's view and the box's own health, CSV or JSON.

``health`` sums a row up for people scanning hundreds of boxes: ``ok``; ``safe`` (the box says
it is in safe mode); ``stale`` (no health report within ``stale_after_h``); ``unknown`` (never
reported: new, or its daemon never started).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from appliance.fleet.health import (
    TAG_HEALTH_AT,
    TAG_LAST_SYNC,
    TAG_LOCK,
    TAG_MODE,
    TAG_RELEASE,
    TAG_SOC,
    TAG_VERSION,
)
from provisioning.devices import RING_TAG, SITE_TAG, FleetDevice
from provisioning.rollout import parse_iso

COLUMNS = (
    "uuid",
    "name",
    "site",
    "ring",
    "online",
    "running_release",
    "pinned_release",
    "soc_pct",
    "mode",
    "last_sync",
    "version",
    "reported_release",
    "update_lock",
    "health_at",
    "health",
)


def health_of(device: FleetDevice, now: datetime, stale_after_h: float) -> str:
    reported = parse_iso(device.tags.get(TAG_HEALTH_AT))
    if reported is None:
        return "unknown"
    if device.tags.get(TAG_MODE) == "safe":
        return "safe"
    if now - reported > timedelta(hours=stale_after_h):
        return "stale"
    return "ok"


def rows(
    devices: Sequence[FleetDevice], now: datetime, stale_after_h: float = 13.0
) -> list[dict[str, Any]]:
    out = []
    for d in sorted(devices, key=lambda d: (d.tags.get(RING_TAG, "~"), d.name)):
        t = d.tags
        out.append(
            {
                "uuid": d.uuid,
                "name": d.name,
                "site": t.get(SITE_TAG, ""),
                "ring": t.get(RING_TAG, ""),
                "online": d.online,
                "running_release": d.running_release or "",
                "pinned_release": d.pinned_release or "",
                "soc_pct": t.get(TAG_SOC, ""),
                "mode": t.get(TAG_MODE, ""),
                "last_sync": t.get(TAG_LAST_SYNC, ""),
                "version": t.get(TAG_VERSION, ""),
                "reported_release": t.get(TAG_RELEASE, ""),
                "update_lock": t.get(TAG_LOCK, ""),
                "health_at": t.get(TAG_HEALTH_AT, ""),
                "health": health_of(d, now, stale_after_h),
            }
        )
    return out


def to_csv(report_rows: Sequence[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in report_rows:
        writer.writerow(
            {k: ("true" if v is True else "false" if v is False else v) for k, v in row.items()}
        )
    return buf.getvalue()


def to_json(report_rows: Sequence[dict[str, Any]], now: datetime) -> str:
    counts: dict[str, int] = {}
    for row in report_rows:
        counts[row["health"]] = counts.get(row["health"], 0) + 1
    return json.dumps(
        {
            "generated_at": now.isoformat(),
            "devices": len(report_rows),
            "health": counts,
            "rows": list(report_rows),
        },
        indent=2,
    )
