"""Optional parts of a running box, plugged into the daemon as extra loops.

- sync: store and forward over the configured links (or ``--hub URL``), asking the daemon how
  many modem watts the energy plan affords; inbound weather forecasts, jobs and config
  changes are handed to the daemon.
- fleet: under balena, the energy-aware update lock (fed every control period) and health
  tags for the fleet manager.
Each starter returns None when its part is not configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tomllib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from appliance import __version__
from appliance.config import ConfigError, dump_config, parse_config
from appliance.state import Channel, Event, EventKind, JobKind, JobState, Mode, Severity

if TYPE_CHECKING:
    from appliance.commands.demo import Runtime
    from appliance.daemon import Daemon, ExtraLoop

log = logging.getLogger("appliance.starters")

REMOTE_CONFIG_FILE = "sunbox.remote.toml"


def sync_starter(rt: Runtime) -> ExtraLoop | None:
    from appliance.sync.service import SyncService, build_for_hub

    config, store, clock = rt.config, rt.store, rt.clock
    if config.sync.hub_url:
        svc = build_for_hub(config, store, clock, config.sync.hub_url, config.sync.box_token)
    elif config.links:
        svc = SyncService(config, store, clock)
    else:
        return None
    svc.watch_events()
    daemon = rt.daemon

    def job_finished(event: Event) -> None:
        if event.kind is not EventKind.JOB or event.data.get("action") != "stop":
            return
        job = store.jobs.get(str(event.data.get("job_id", "")))
        if job is not None and job.state.finished and job.state is not JobState.REJECTED:
            svc.enqueue_job_result(job)

    store.events.subscribe(job_finished)

    def on_weather(name: str, payload: bytes) -> None:
        """Kept as a file in the data directory (what the box was told, for later audits)."""
        from appliance.solar.weather_file import read_weather_file

        folder = rt.data_dir / "inbound"
        folder.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "weather.csv"
        if not safe.endswith((".csv", ".csv.gz")):
            safe += ".csv"
        path = folder / f"{clock.now().strftime('%Y%m%dT%H%M%SZ')}-{safe}"
        path.write_bytes(payload)
        daemon.set_forecast_weather(read_weather_file(path, capacity_w=config.array.dc_kw * 1000))

    async def on_job(spec: dict[str, Any]) -> None:
        from appliance.workloads.requests import JobRequest

        request = JobRequest.model_validate({**spec, "owner": spec.get("owner", "hub")})
        job, decision = await daemon.submit_job_async(request)
        daemon.store.events.add(Event(clock.now(), EventKind.SYNC, f"job {job.id} from the hub: {decision.reason}",
                                      "sync", data={"job_id": job.id}))

    def on_config(patch: dict[str, Any]) -> None:
        apply_remote_config(rt, patch)

    svc.on_weather(on_weather)
    svc.on_job(on_job)
    svc.on_config(on_config)

    async def sync_loop(d: Daemon, stop: asyncio.Event) -> None:
        try:
            await svc.run(stop, d.modem_allowance_w)
        finally:
            await svc.close()

    return sync_loop


def apply_remote_config(rt: Runtime, patch: dict[str, Any]) -> None:
    """A config change from the hub: validated against the running config and kept in the data
    directory; it takes effect at the next restart (``--config`` that file, or as balena
    device variables), never half-applied to a running box."""
    current = rt.config.model_dump(mode="json", exclude_none=True)
    merged = _deep_merge(current, patch)
    try:
        cfg = parse_config(merged, "config from the hub")
    except ConfigError as exc:
        rt.store.events.add(Event(rt.clock.now(), EventKind.CONFIG, f"rejected config from the hub: {exc}",
                                  "sync", Severity.WARNING))
        raise
    path = rt.data_dir / REMOTE_CONFIG_FILE
    path.write_text(dump_config(cfg), encoding="utf-8")
    tomllib.loads(path.read_text(encoding="utf-8"))  # what we wrote reads back
    rt.store.events.add(Event(rt.clock.now(), EventKind.CONFIG,
                              f"config from the hub validated and saved to {path}; applies at the next restart",
                              "sync", data={"keys": sorted(patch)}))


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def fleet_starter(rt: Runtime) -> ExtraLoop | None:
    """Under balena (supervisor variables present) or with a lock path configured for tests."""
    from appliance.fleet import HealthReporter, HealthSnapshot, LockInputs, SupervisorClient, UpdateLockController

    client = SupervisorClient.from_env(os.environ, rt.config.fleet.supervisor_timeout_s)
    if client is None:
        return None
    controller = UpdateLockController(rt.config.fleet, rt.clock)
    reporter = HealthReporter(client, rt.config.fleet, rt.clock)

    def last_sync() -> datetime | None:
        rows = rt.store.query("SELECT max(delivered_ms) AS t FROM outbox")
        from appliance.store import from_ms

        return from_ms(rows[0]["t"]) if rows and rows[0]["t"] is not None else None

    async def fleet_loop(d: Daemon, stop: asyncio.Event) -> None:
        health_every_s = 60.0
        last_health = float("-inf")
        try:
            while not stop.is_set():
                state = d.state
                soc = state.fresh(Channel.SOC_PCT.value) if state is not None else None
                running = d.runner.jobs()
                heat = d.cycle.heat_router
                heating = heat is not None and (heat.damper_pct or 0.0) > 0.0 and d.mode is not Mode.SAFE
                inputs = LockInputs(
                    soc_pct=soc, mode=d.mode,
                    critical_job_running=any(j.kind is JobKind.CRITICAL and j.state is JobState.RUNNING
                                             for j in running),
                    night_heating_active=heating,
                    device_write_in_progress=d.writes_in_progress(),
                    pv_power_w=state.fresh(Channel.PV_POWER_W.value) if state is not None else None,
                )
                for ev in controller.step(inputs):
                    d.store.events.add(ev)
                if d.clock.monotonic() - last_health >= health_every_s:
                    last_health = d.clock.monotonic()
                    snap = HealthSnapshot(soc_pct=soc, mode=d.mode, last_sync=last_sync(), version=__version__,
                                          update_lock_held=controller.held)
                    for ev in await reporter.maybe_report(snap):
                        d.store.events.add(ev)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=d.control_period_s() / d.clock.speed)
        finally:
            for ev in controller.close():
                d.store.events.add(ev)

    return fleet_loop
