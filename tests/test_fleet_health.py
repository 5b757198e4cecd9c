"""Health tags through the supervisor: what is sent, when, and what happens when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.clock import ManualClock
from appliance.config import FleetConfig
from appliance.fleet.health import HealthReporter, HealthSnapshot, health_tags, material_change
from appliance.fleet.supervisor import SupervisorClient, SupervisorError, validate_tags
from appliance.state import Mode, Severity
from tests.fleet_fake_supervisor import FakeSupervisor

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SYNC = datetime(2025, 6, 1, 11, 30, tzinfo=UTC)


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[FakeSupervisor]:
    fake = FakeSupervisor(tmp_path / "updates.lock", commit="c0ffee" + "0" * 26).start()
    yield fake
    fake.stop()


def snap(soc: float | None = 71.4, mode: Mode = Mode.NORMAL, lock: bool = False) -> HealthSnapshot:
    return HealthSnapshot(
        soc_pct=soc, mode=mode, last_sync=SYNC, version="0.1.0", update_lock_held=lock
    )


def test_fleet_health_tags_format() -> None:
    tags = health_tags(HealthSnapshot(None, Mode.SAFE, None, "0.1.0", True, "abc"), T0)
    assert tags == {
        "soc_pct": "unknown",
        "mode": "safe",
        "last_sync": "never",
        "version": "0.1.0",
        "release": "abc",
        "update_lock": "held",
        "health_at": "2025-06-01T12:00:00Z",
    }
    assert (
        health_tags(snap(), T0)["soc_pct"] == "71"
        and health_tags(snap(), T0)["last_sync"] == "2025-06-01T11:30:00Z"
    )


def test_fleet_material_change_ignores_small_soc_moves_and_time() -> None:
    sent = health_tags(snap(70.0), T0)
    assert not material_change(sent, health_tags(snap(73.0), T0 + timedelta(hours=1)))
    assert material_change(sent, health_tags(snap(75.0), T0))
    assert material_change(sent, health_tags(snap(70.0, Mode.SHED), T0))
    assert material_change(sent, health_tags(snap(70.0, lock=True), T0))
    assert material_change(sent, health_tags(snap(None), T0))


def test_fleet_reporter_patches_tags_with_release_from_supervisor(
    supervisor: FakeSupervisor,
) -> None:
    clock = ManualClock(T0)
    config = FleetConfig(health_interval_s=900.0, health_heartbeat_s=6 * 3600.0)

    async def scenario() -> None:
        async with SupervisorClient(supervisor.address, supervisor.api_key) as client:
            reporter = HealthReporter(client, config, clock)
            assert await reporter.maybe_report(snap(71.4)) == []
            assert supervisor.tag_patches[0] == {
                "soc_pct": "71",
                "mode": "normal",
                "last_sync": "2025-06-01T11:30:00Z",
                "version": "0.1.0",
                "release": "c0ffee" + "0" * 26,
                "update_lock": "free",
                "health_at": "2025-06-01T12:00:00Z",
            }
            assert await client.get_tags() == supervisor.tags

            clock.advance(600)  # before the interval: even a mode change waits
            await reporter.maybe_report(snap(71.0, Mode.SHED))
            assert len(supervisor.tag_patches) == 1
            clock.advance(300)
            await reporter.maybe_report(snap(71.0, Mode.SHED))
            assert supervisor.tag_patches[1] == {
                "mode": "shed",
                "health_at": "2025-06-01T12:15:00Z",
            }

            clock.advance(3600)  # nothing material: no traffic
            await reporter.maybe_report(snap(73.0, Mode.SHED))
            assert len(supervisor.tag_patches) == 2
            clock.advance(6 * 3600)  # heartbeat: only what changed, plus the time
            await reporter.maybe_report(snap(73.0, Mode.SHED))
            assert supervisor.tag_patches[2] == {
                "soc_pct": "73",
                "health_at": "2025-06-01T19:15:00Z",
            }

    asyncio.run(scenario())


def test_fleet_reporter_reports_failure_once_and_recovery(supervisor: FakeSupervisor) -> None:
    clock = ManualClock(T0)
    config = FleetConfig(health_interval_s=60.0, health_heartbeat_s=60.0)

    async def scenario() -> None:
        async with SupervisorClient(supervisor.address, supervisor.api_key, timeout_s=5) as client:
            reporter = HealthReporter(client, config, clock)
            supervisor.down = True
            first = await reporter.maybe_report(snap())
            assert len(first) == 1 and first[0].severity is Severity.WARNING
            assert "HTTP 503" in first[0].message
            clock.advance(60)
            assert await reporter.maybe_report(snap()) == []
            assert supervisor.tag_patches == []
            supervisor.down = False
            clock.advance(60)
            back = await reporter.maybe_report(snap())
            assert back[0].severity is Severity.INFO and "again" in back[0].message
            assert supervisor.tags["release"] == "c0ffee" + "0" * 26
            assert reporter.sent["soc_pct"] == "71"

    asyncio.run(scenario())


def test_fleet_supervisor_client_errors_are_one_line(supervisor: FakeSupervisor) -> None:
    async def scenario() -> None:
        async with SupervisorClient(supervisor.address, "wrong-key", timeout_s=5) as bad:
            with pytest.raises(SupervisorError, match="HTTP 401") as info:
                await bad.device()
            assert info.value.status_code == 401
            assert await bad.ping() is True  # /ping needs no key
        async with SupervisorClient(supervisor.address, supervisor.api_key, timeout_s=5) as client:
            with pytest.raises(ValueError, match="whitespace"):
                await client.patch_tags({"soc pct": "5"})
            status = await client.state_status()
            assert status["appState"] == "applied"
            assert await client.version() == "16.7.3"
        async with SupervisorClient("http://127.0.0.1:9", "k", timeout_s=1) as dead:
            with pytest.raises(SupervisorError, match="ConnectError"):
                await dead.device()

    asyncio.run(scenario())


def test_fleet_supervisor_rejects_bad_tags_like_the_real_one(supervisor: FakeSupervisor) -> None:
    import httpx

    url = f"{supervisor.address}/v2/device/tags?apikey={supervisor.api_key}"
    assert httpx.patch(url, json={"a b": "1"}).status_code == 400
    assert httpx.patch(url, json={"a": 1}).status_code == 400
    ok = httpx.patch(url, json={"a": "1"})
    assert ok.status_code == 202 and ok.json() == {"status": "success"}
    with pytest.raises(ValueError, match="must be a string"):
        validate_tags({"a": 1})  # type: ignore[dict-item]


def test_fleet_client_from_env() -> None:
    assert SupervisorClient.from_env({}) is None
    env = {"BALENA_SUPERVISOR_ADDRESS": "http://127.0.0.1:48484", "BALENA_SUPERVISOR_API_KEY": "k"}
    client = SupervisorClient.from_env(env)
    assert client is not None and client.address == "http://127.0.0.1:48484"
    asyncio.run(client.aclose())
    with pytest.raises(ValueError, match="http"):
        SupervisorClient("127.0.0.1:48484", "k")
