"""/metrics in the Prometheus text exposition format (0.0.4), every series named ``sunbox_…``.

Written by hand (a few dozen lines) rather than through a client library: the values already
exist in the published snapshot, the cycle watcher and the store; this only formats them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from appliance import __version__
from appliance.api.live import CYCLE_BUCKETS_S, CycleStats
from appliance.config import SunboxConfig
from appliance.state import Channel, Mode
from appliance.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Channel -> metric name where the dashboard's words differ from the channel's.
NAMED = {
    Channel.SOC_PCT.value: "sunbox_soc_pct",
    Channel.PV_POWER_W.value: "sunbox_pv_power_w",
    Channel.BATTERY_POWER_W.value: "sunbox_battery_power_w",
    Channel.AC_LOAD_POWER_W.value: "sunbox_load_power_w",
    Channel.COMPUTE_POWER_W.value: "sunbox_compute_power_w",
}


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def declare(self, name: str, kind: str, help_text: str) -> None:
        if name not in self._declared:
            self._declared.add(name)
            self.lines.append(f"# HELP {name} {help_text}")
            self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float | None, labels: dict[str, str] | None = None) -> None:
        if value is None:
            return
        lab = ""
        if labels:
            lab = "{" + ",".join(f'{k}="{_esc(str(v))}"' for k, v in labels.items()) + "}"
        self.lines.append(f"{name}{lab} {_num(float(value))}")

    def gauge(
        self, name: str, help_text: str, value: float | None, labels: dict[str, str] | None = None
    ) -> None:
        self.declare(name, "gauge", help_text)
        self.sample(name, value, labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def render(
    config: SunboxConfig,
    store: Store,
    state: dict[str, Any],
    cycles: CycleStats,
    daemon_cycles: int,
    plans: int,
    sse_clients: int,
    queue: dict[str, int],
    oldest_undelivered: datetime | None,
    now: datetime,
) -> str:
    e = Exposition()
    e.gauge(
        "sunbox_info",
        "Build and site of this box (always 1).",
        1.0,
        {"version": __version__, "site": config.site.name},
    )
    e.gauge(
        "sunbox_up", "1 when the daemon has published a state.", 1.0 if state.get("ready") else 0.0
    )
    readings: dict[str, dict[str, Any]] = state.get("readings") or {}
    for channel, name in NAMED.items():
        e.gauge(
            name, f"Latest {channel} reading.", _float((readings.get(channel) or {}).get("value"))
        )
    for channel in sorted(readings):
        if channel in NAMED:
            continue
        e.gauge(
            f"sunbox_{channel}",
            f"Latest {channel} reading.",
            _float(readings[channel].get("value")),
        )
    e.declare(
        "sunbox_reading_fresh",
        "gauge",
        "1 when the channel's reading is within its staleness limit.",
    )
    e.declare("sunbox_reading_age_seconds", "gauge", "Age of the channel's reading.")
    for channel in sorted(readings):
        r = readings[channel]
        e.sample("sunbox_reading_fresh", 1.0 if r.get("fresh") else 0.0, {"channel": channel})
        e.sample("sunbox_reading_age_seconds", _float(r.get("age_s")), {"channel": channel})
    bat = config.battery
    e.gauge("sunbox_reserve_pct", "Battery reserve the box keeps.", bat.reserve_pct)
    e.gauge("sunbox_battery_capacity_wh", "Configured battery capacity.", bat.capacity_wh)
    e.declare("sunbox_mode", "gauge", "Operating mode (1 for the current one).")
    for mode in Mode:
        e.sample(
            "sunbox_mode", 1.0 if state.get("mode") == mode.value else 0.0, {"mode": mode.value}
        )
    e.declare("sunbox_jobs", "gauge", "Jobs by state.")
    for st, n in sorted((state.get("jobs") or {}).items()):
        e.sample("sunbox_jobs", float(n), {"state": st})
    e.gauge("sunbox_alarms", "Active device alarms.", float(len(state.get("alarms") or [])))
    e.declare("sunbox_device_connected", "gauge", "1 when the device answers.")
    for name, dev in sorted((state.get("devices") or {}).items()):
        e.sample("sunbox_device_connected", 1.0 if dev.get("connected") else 0.0, {"device": name})
    # control loop
    e.declare("sunbox_control_cycle_seconds", "histogram", "Wall time of each control cycle.")
    for bound, n in zip(CYCLE_BUCKETS_S, cycles.buckets, strict=True):
        e.sample("sunbox_control_cycle_seconds_bucket", float(n), {"le": _num(bound)})
    e.sample("sunbox_control_cycle_seconds_bucket", float(cycles.count), {"le": "+Inf"})
    e.sample("sunbox_control_cycle_seconds_sum", cycles.total_s)
    e.sample("sunbox_control_cycle_seconds_count", float(cycles.count))
    e.gauge(
        "sunbox_control_cycle_max_seconds", "Longest control cycle seen by the API.", cycles.max_s
    )
    e.gauge(
        "sunbox_control_cycle_interval_max_seconds",
        "Longest wall time between two control cycles.",
        cycles.max_interval_s,
    )
    e.declare("sunbox_control_cycles_total", "counter", "Control cycles since the daemon started.")
    e.sample("sunbox_control_cycles_total", float(daemon_cycles))
    e.declare("sunbox_plans_total", "counter", "Plans made since the daemon started.")
    e.sample("sunbox_plans_total", float(plans))
    # heat
    ledger = (state.get("heat") or {}).get("ledger") or {}
    for key in (
        "heat_delivered_wh",
        "heat_to_room_wh",
        "heat_used_wh",
        "heat_vented_wh",
        "comfort_deficit_kh",
    ):
        e.gauge(
            f"sunbox_{key if key.startswith('heat') else 'heat_' + key}",
            f"Heat ledger: {key.replace('_', ' ')} since the daemon started.",
            _float(ledger.get(key)),
        )
    e.gauge(
        "sunbox_heat_erf",
        "Energy reuse factor (ISO/IEC 30134-6) since the daemon started.",
        _float(ledger.get("erf")),
    )
    heat = state.get("heat") or {}
    e.gauge("sunbox_heat_setpoint_c", "Room setpoint.", config.heat.setpoint_c)
    e.gauge(
        "sunbox_heat_wanted",
        "1 while the household wants heat.",
        None if "wanted" not in heat else (1.0 if heat.get("wanted") else 0.0),
    )
    # sync
    e.declare("sunbox_sync_queue_depth", "gauge", "Outbox items not yet delivered, by priority.")
    for prio, n in queue.items():
        e.sample("sunbox_sync_queue_depth", float(n), {"priority": prio})
    e.gauge(
        "sunbox_sync_oldest_undelivered_age_seconds",
        "Age of the oldest undelivered outbox item.",
        None
        if oldest_undelivered is None
        else max(0.0, (now - oldest_undelivered).total_seconds()),
    )
    e.gauge("sunbox_api_sse_clients", "Dashboards connected for live updates.", float(sse_clients))
    return e.text()


def parse(text: str) -> Iterable[tuple[str, dict[str, str], float]]:
    """Samples of an exposition (for tests and the benchmark): (name, labels, value)."""
    import re

    pat = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
    lab = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = pat.match(line)
        if m is None:
            raise ValueError(f"not an exposition line: {line!r}")
        labels = dict(lab.findall(m.group(3) or ""))
        yield m.group(1), labels, float(m.group(4))
