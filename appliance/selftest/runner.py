"""Run the self-test: gather the evidence once, ask every check, hand back a report.

Slow checks (the forecaster, the sun check's PV model) run in a worker thread so a UI stays
responsive; device polling is asyncio like the rest of the device layer.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC
from pathlib import Path
from typing import Any

from appliance.clock import Clock, SystemClock
from appliance.config import SunboxConfig
from appliance.selftest import checks
from appliance.selftest.checks import CheckResult
from appliance.selftest.evidence import Evidence, from_state_doc, poll_devices, published
from appliance.selftest.report import Report
from appliance.store import Store

Progress = Callable[[CheckResult], None]

CHECK_TITLES = (
    ("clock", "box clock sane"),
    ("disk", "disk space"),
    ("daemon", "daemon running"),
    ("device:*", "each device answers"),
    ("values", "values plausible"),
    ("alarms", "no device alarms"),
    ("battery", "battery limits consistent with the BMS"),
    ("forecast", "forecast vs the last hour's measured PV"),
    ("site", "site location vs the sun"),
)


async def gather_evidence(
    config: SunboxConfig,
    store: Store | None,
    clock: Clock,
    state_doc: Mapping[str, Any] | None = None,
    state_source: str = "the daemon's API",
) -> Evidence:
    """The daemon's view when one is alive (API document, else its published snapshot), else a
    direct poll of the devices."""
    if state_doc is not None and state_doc.get("at"):
        return from_state_doc(state_doc, state_source)
    if store is not None:
        found = published(store, clock.now(), config.selftest.daemon_stale_after_s)
        if found is not None:
            return found
    return await poll_devices(config, clock)


def _speed(state_doc: Mapping[str, Any] | None, store: Store | None) -> float:
    daemon: Any = (state_doc or {}).get("daemon")
    if not daemon and store is not None:
        from appliance import snapshot

        snap = snapshot.load(store)
        daemon = snap.daemon if snap is not None else {}
    speed = (daemon or {}).get("speed", 1.0)
    return float(speed) if isinstance(speed, int | float) else 1.0


async def run_selftest(
    config: SunboxConfig,
    store: Store | None,
    data_dir: Path,
    clock: Clock,
    *,
    state_doc: Mapping[str, Any] | None = None,
    state_source: str = "the daemon's API",
    wall: Clock | None = None,
    progress: Progress | None = None,
    disk_usage: checks.DiskUsage = shutil.disk_usage,
    operator: str = "",
) -> Report:
    """Every check, in the order of CHECK_TITLES; ``progress`` hears each result as it comes."""
    wall = wall or SystemClock()
    started = clock.now()
    results: list[CheckResult] = []

    def add(*found: CheckResult) -> None:
        for r in found:
            results.append(r)
            if progress is not None:
                progress(r)

    evidence = await gather_evidence(config, store, clock, state_doc, state_source)
    box_now = evidence.at if evidence.mode is not None else clock.now()
    newest = checks.newest_data(store) if store is not None else None
    add(checks.check_clock(config, box_now, wall.now(), _speed(state_doc, store), newest))
    add(checks.check_disk(config, data_dir, store, disk_usage))
    add(checks.check_daemon(evidence))
    add(*checks.check_devices(config, evidence))
    add(checks.check_values(evidence))
    add(checks.check_alarms(evidence))
    add(checks.check_battery_limits(config, evidence))
    now = evidence.at
    if store is not None:
        add(await asyncio.to_thread(checks.check_forecast, config, store, now))
    else:
        add(
            CheckResult(
                "forecast",
                "forecast vs the last hour's measured PV",
                checks.Status.SKIP,
                "no store to read measured PV from",
            )
        )
    add(await asyncio.to_thread(checks.check_sun, config, store, now))
    from appliance.sync.links import box_id

    return Report(
        kind="selftest",
        box_id=box_id(config),
        site=config.site.name,
        tz=config.site.tz,
        started_at=started.astimezone(UTC),
        finished_at=clock.now().astimezone(UTC),
        source=evidence.source,
        checks=results,
        operator=operator,
    )
