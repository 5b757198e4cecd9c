"""Benchmark: what the fleet layer costs on the wire.

1. Health tags over a simulated week on one box (SoC swinging with the sun, a mode change each
   evening, a sync every 6 h): patches and JSON payload bytes per day with the reporter's rules
   (interval 900 s, heartbeat 6 h, SoC steps of 5 %, changed keys only), against the naive
   scheme (every tag every 900 s), measured in the same run.
2. balena API requests: provisioning one box, and listing a 50-box fleet with health tags.
Prints JSON. Run: .venv/bin/python tests/bench/fleet_traffic.py
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from appliance.clock import ManualClock  # noqa: E402
from appliance.config import FleetConfig, load_config  # noqa: E402
from appliance.fleet.health import HealthReporter, HealthSnapshot, health_tags  # noqa: E402
from appliance.fleet.supervisor import SupervisorClient  # noqa: E402
from appliance.state import Mode  # noqa: E402
from provisioning.devices import list_fleet, provision  # noqa: E402
from provisioning.sdk import connect  # noqa: E402
from tests.fleet_fake_balena import FakeBalenaCloud  # noqa: E402
from tests.fleet_fake_supervisor import FakeSupervisor  # noqa: E402

DAYS = 7
CALL_EVERY_S = 60
T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def soc_at(hours: float) -> float:
    """Charged by day (peak 95 % at 15:00), drawn down by night's heat and compute (40 % dawn)."""
    return 67.5 + 27.5 * math.sin((hours % 24 - 9.0) / 24 * 2 * math.pi)


def snapshot(now: datetime) -> HealthSnapshot:
    hours = (now - T0).total_seconds() / 3600
    local_h = hours % 24
    mode = Mode.SHED if 3 <= local_h < 6 else Mode.NORMAL
    last_sync = T0 + timedelta(hours=6 * int(hours // 6))
    return HealthSnapshot(soc_at(hours), mode, last_sync, "0.1.0", 17 <= local_h or local_h < 8)


def health_week() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sv = FakeSupervisor(Path(tmp) / "updates.lock").start()
        clock = ManualClock(T0)
        config = FleetConfig()

        async def run() -> None:
            async with SupervisorClient(sv.address, sv.api_key) as client:
                reporter = HealthReporter(client, config, clock)
                for _ in range(DAYS * 86400 // CALL_EVERY_S):
                    await reporter.maybe_report(snapshot(clock.now()))
                    clock.advance(CALL_EVERY_S)

        asyncio.run(run())
        sv.stop()
    sent_bytes = sum(len(json.dumps(p)) for p in sv.tag_patches)
    naive_count = DAYS * 86400 // config.health_interval_s
    sample = health_tags(snapshot(T0), T0)
    naive_bytes = naive_count * len(json.dumps(sample))
    return {
        "health_patches_per_day": len(sv.tag_patches) / DAYS,
        "health_payload_bytes_per_day": sent_bytes / DAYS,
        "naive_patches_per_day": naive_count / DAYS,
        "naive_payload_bytes_per_day": naive_bytes / DAYS,
        "payload_ratio_naive_over_ours": naive_bytes / sent_bytes,
    }


def api_requests() -> dict[str, float]:
    cloud = FakeBalenaCloud().start()
    cloud.seed_fleet("sunbox/bench")
    sdk = connect(cloud.token, cloud.url)
    config = load_config(None, environ={})
    cloud.log.clear()
    provision(sdk, "sunbox/bench", config, ring="canary")
    per_provision = len(cloud.log)
    for i in range(49):
        site = config.model_copy(
            update={"site": config.site.model_copy(update={"name": f"box-{i}"})}
        )
        provision(sdk, "sunbox/bench", site)
    cloud.log.clear()
    devices = list_fleet(sdk, "sunbox/bench")
    list_requests = len(cloud.log)
    cloud.stop()
    return {
        "provision_requests_demo_config": per_provision,
        "env_vars_demo_config": len(cloud.rows("device_environment_variable")) / 50,
        "list_requests_50_boxes": list_requests,
        "listed_boxes": len(devices),
    }


if __name__ == "__main__":
    print(json.dumps({**health_week(), **api_requests()}, indent=2))
