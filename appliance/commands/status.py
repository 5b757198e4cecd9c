"""``sunbox status``: one screen of the live state, read from the store (no device access)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance import snapshot
from appliance.commands.common import CommandError, config_from, open_store, print_json
from appliance.state import JobState

ROWS = (
    ("soc_pct", "Battery SoC", "%"), ("battery_power_w", "Battery power (+charge)", "W"),
    ("battery_voltage_v", "Battery voltage", "V"), ("pv_power_w", "PV power", "W"),
    ("ac_load_power_w", "AC load", "W"), ("compute_power_w", "Compute node", "W"),
    ("room_temp_c", "Room", "°C"), ("outdoor_temp_c", "Outdoor", "°C"), ("damper_pct", "Damper to room", "%"),
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("status", parents=[common], help="one screen of the live state from the store")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    store = open_store(args)
    snap = snapshot.load(store)
    if snap is None:
        raise CommandError(f"no state in {store.path}: is the daemon running (sunbox demo / sunbox run)?")
    jobs = store.jobs.list(limit=1000)
    counts = {s.value: sum(1 for j in jobs if j.state == s) for s in JobState}
    events = store.events.list(limit=8)
    if args.json:
        print_json({**snap.to_dict(), "jobs": {k: v for k, v in counts.items() if v},
                    "events": [{"at": e.at.isoformat(), "kind": str(e.kind), "severity": str(e.severity),
                                "message": e.message} for e in events]})
        return 0
    tz = cfg.site.zone
    daemon = snap.daemon
    print(f"Sunbox {cfg.site.name} — {_local(snap.at, tz)}  (daemon pid {daemon.get('pid', '?')}, "
          f"clock x{daemon.get('speed', 1)})")
    print(f"Mode: {snap.mode.value.upper()} — {snap.mode_reason}")
    print(f"Reserve {cfg.battery.reserve_pct:g} %  ·  battery {cfg.battery.capacity_wh / 1000:g} kWh  ·  "
          f"array {cfg.array.dc_kw:g} kWp {cfg.array.tracker}")
    print()
    for key, label, unit in ROWS:
        r = snap.readings.get(key)
        if r is None or r.get("value") is None:
            continue
        flag = "" if r.get("fresh") else f"  STALE ({r.get('age_s')} s)"
        print(f"  {label:<26}{r['value']:>10.1f} {unit}{flag}")
    if snap.alarms:
        print("\nAlarms:")
        for a in snap.alarms:
            print(f"  [{a['severity']}] {a['message']}")
    print("\nDevices:")
    for name, d in snap.devices.items():
        state = "ok" if d["connected"] else f"FAILING x{d['consecutive_failures']}: {d['last_error']}"
        print(f"  {name:<12}{state}")
    active = {k: v for k, v in counts.items() if v}
    print("\nJobs: " + (", ".join(f"{v} {k}" for k, v in active.items()) if active else "none"))
    if events:
        print("\nRecent events:")
        for e in events:
            print(f"  {_local(e.at, tz)[11:19]} [{e.kind}] {e.message}")
    return 0
