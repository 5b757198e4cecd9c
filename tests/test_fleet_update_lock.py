"""Energy-aware balena update lock: the rule, the lockfile, and a fake supervisor honouring it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.clock import ManualClock
from appliance.config import FleetConfig
from appliance.fleet.supervisor import SupervisorClient
from appliance.fleet.update_lock import (
    AcquireResult,
    LockInputs,
    UpdateLockController,
    UpdateLockFile,
    decide,
)
from appliance.state import EventKind, Mode, Severity
from tests.fleet_fake_supervisor import FakeSupervisor

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
SUNNY = LockInputs(soc_pct=80.0, mode=Mode.NORMAL, pv_power_w=1500.0)


def cfg(**kw: float) -> FleetConfig:
    base = {
        "update_min_soc_pct": 50.0,
        "update_soc_hysteresis_pct": 5.0,
        "update_min_pv_w": 100.0,
        "release_after_s": 300.0,
        "forced_grace_s": 1800.0,
    }
    base.update(kw)
    return FleetConfig.model_validate(base)


def inputs(**kw: object) -> LockInputs:
    values: dict[str, object] = {"soc_pct": 80.0, "mode": Mode.NORMAL, "pv_power_w": 1500.0}
    values.update(kw)
    return LockInputs(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"soc_pct": 42.0}, "low_battery"),
        ({"soc_pct": None}, "soc_unknown"),
        ({"mode": Mode.SHED}, "mode"),
        ({"mode": Mode.SAFE}, "mode"),
        ({"critical_job_running": True}, "critical_job"),
        ({"night_heating_active": True}, "heating"),
        ({"device_write_in_progress": True}, "device_write"),
        ({"pv_power_w": 20.0}, "no_sun"),
        ({"pv_power_w": None}, "pv_unknown"),
    ],
)
def test_fleet_each_condition_holds_the_lock_with_its_reason(
    change: dict[str, object], code: str
) -> None:
    decision = decide(inputs(**change), cfg())
    assert decision.hold is True
    assert decision.codes == (code,)


def test_fleet_energy_allows_release_and_reasons_name_the_figures() -> None:
    decision = decide(SUNNY, cfg())
    assert decision.hold is False
    assert decision.codes == ("energy_ok", "sun")
    assert "80%" in decision.describe() and "1500 W" in decision.describe()


def test_fleet_all_reasons_are_listed_together() -> None:
    decision = decide(inputs(soc_pct=30.0, night_heating_active=True, pv_power_w=0.0), cfg())
    assert decision.codes == ("low_battery", "heating", "no_sun")


def test_fleet_hysteresis_applies_only_while_held() -> None:
    at_52 = inputs(soc_pct=52.0)
    assert decide(at_52, cfg(), held=False).hold is False
    assert decide(at_52, cfg(), held=True).hold is True  # needs 55 % once held
    assert decide(inputs(soc_pct=55.0), cfg(), held=True).hold is False


def test_fleet_sun_not_required_when_min_pv_is_zero() -> None:
    night = inputs(pv_power_w=None)
    assert decide(night, cfg(update_min_pv_w=0.0)).hold is False


def test_fleet_config_rejects_inconsistent_fleet_section() -> None:
    with pytest.raises(ValueError, match="must not exceed 100"):
        FleetConfig(update_min_soc_pct=98.0, update_soc_hysteresis_pct=5.0)
    with pytest.raises(ValueError, match="health_heartbeat_s"):
        FleetConfig(health_interval_s=3600.0, health_heartbeat_s=600.0)


# --------------------------------------------------------------------------- the lockfile


def test_fleet_lockfile_is_exclusive_and_never_removes_a_foreign_lock(tmp_path: Path) -> None:
    path = tmp_path / "balena" / "updates.lock"
    lock = UpdateLockFile(path)
    assert lock.acquire("test") is AcquireResult.ACQUIRED
    assert json.loads(path.read_text())["owner"] == "sunbox"
    assert lock.acquire() is AcquireResult.ALREADY_OURS
    assert lock.release() is True and not path.exists()
    path.write_text("")  # the supervisor's own (empty) lockfile
    assert lock.acquire() is AcquireResult.BUSY
    assert lock.release() is False
    assert path.exists()


def test_fleet_lockfile_uses_o_excl(tmp_path: Path) -> None:
    """A second creator racing us with O_CREAT|O_EXCL must fail while we hold it."""
    path = tmp_path / "updates.lock"
    UpdateLockFile(path).acquire()
    with pytest.raises(FileExistsError):
        os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)


# --------------------------------------------------------------------------- the controller


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def test_fleet_controller_holds_at_night_and_releases_in_the_sun_after_dwell(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "updates.lock"
    ctl = UpdateLockController(cfg(), clock, UpdateLockFile(path))
    events = ctl.step(inputs(soc_pct=45.0, night_heating_active=True, pv_power_w=0.0))
    assert ctl.held and path.exists()
    assert [e.kind for e in events] == [EventKind.FLEET]
    assert events[0].data["reasons"] == ["low_battery", "heating", "no_sun"]
    assert "heating the home" in events[0].message

    clock.advance(2)
    assert (
        ctl.step(inputs(soc_pct=45.0, night_heating_active=True, pv_power_w=0.0)) == []
    )  # no repeats
    clock.advance(2)
    changed = ctl.step(inputs(soc_pct=45.0, pv_power_w=0.0))  # heating stopped, still dark
    assert ctl.held and changed[0].data["reasons"] == ["low_battery", "no_sun"]

    # Morning: battery charging in the sun, but 53 % is inside the hysteresis band.
    clock.advance(3600)
    ctl.step(inputs(soc_pct=53.0, pv_power_w=900.0))
    assert ctl.held
    clock.advance(60)
    assert ctl.step(inputs(soc_pct=56.0, pv_power_w=900.0)) == []
    assert ctl.held  # conditions fine, but not yet for release_after_s
    clock.advance(299)
    ctl.step(inputs(soc_pct=57.0, pv_power_w=950.0))
    assert ctl.held
    clock.advance(1)
    released = ctl.step(inputs(soc_pct=57.0, pv_power_w=950.0))
    assert not ctl.held and not path.exists()
    assert released[0].data == {
        "held": False,
        "lock_path": str(path),
        "reasons": ["energy_ok", "sun"],
    }
    assert "updates may land" in released[0].message


def test_fleet_controller_dwell_restarts_when_a_cloud_passes(
    tmp_path: Path, clock: ManualClock
) -> None:
    ctl = UpdateLockController(cfg(), clock, UpdateLockFile(tmp_path / "l"))
    ctl.step(inputs(device_write_in_progress=True))
    assert ctl.held
    clock.advance(1)
    ctl.step(SUNNY)
    clock.advance(200)
    ctl.step(inputs(pv_power_w=40.0))  # a cloud: hold again, the timer restarts
    clock.advance(1)
    ctl.step(SUNNY)
    clock.advance(250)
    ctl.step(SUNNY)
    assert ctl.held
    clock.advance(50)
    ctl.step(SUNNY)
    assert not ctl.held


def test_fleet_controller_respects_the_supervisors_lock(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "updates.lock"
    path.write_text("")  # supervisor is applying an update
    ctl = UpdateLockController(cfg(), clock, UpdateLockFile(path))
    events = ctl.step(inputs(critical_job_running=True))
    assert not ctl.held
    assert events[0].severity is Severity.WARNING and "supervisor holds it" in events[0].message
    assert ctl.step(inputs(critical_job_running=True)) == []  # said once
    path.unlink()  # update done
    ctl.step(inputs(critical_job_running=True))
    assert ctl.held and UpdateLockFile(path).is_ours()


def test_fleet_controller_adopts_its_lock_after_a_restart_and_releases_on_close(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "updates.lock"
    UpdateLockFile(path).acquire("previous run")
    ctl = UpdateLockController(cfg(), clock, UpdateLockFile(path))
    assert ctl.held
    closing = ctl.close()
    assert not path.exists() and closing[0].data["held"] is False
    assert ctl.close() == []


# --------------------------------------------------------------------------- with the supervisor


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[FakeSupervisor]:
    fake = FakeSupervisor(tmp_path / "balena" / "updates.lock", commit="1" * 32).start()
    yield fake
    fake.stop()


def _update(sv: FakeSupervisor, force: bool) -> None:
    async def go() -> None:
        async with SupervisorClient(sv.address, sv.api_key, timeout_s=5) as client:
            await client.update(force=force)

    asyncio.run(go())


def _device(sv: FakeSupervisor) -> dict[str, object]:
    async def go() -> dict[str, object]:
        async with SupervisorClient(sv.address, sv.api_key, timeout_s=5) as client:
            return dict((await client.device()).raw)

    return asyncio.run(go())


def test_fleet_update_waits_for_the_lock_and_lands_when_energy_allows(
    supervisor: FakeSupervisor, clock: ManualClock
) -> None:
    ctl = UpdateLockController(
        cfg(release_after_s=60.0), clock, UpdateLockFile(supervisor.lock_path)
    )
    ctl.step(inputs(soc_pct=35.0, pv_power_w=0.0))
    assert ctl.held
    supervisor.new_release("2" * 32)
    _update(supervisor, force=False)
    state = _device(supervisor)
    assert (
        state["commit"] == "1" * 32
        and state["update_pending"] is True
        and state["update_failed"] is True
    )

    clock.advance(3 * 3600)
    ctl.step(SUNNY)
    assert ctl.held  # dwell
    assert supervisor.try_apply() is False
    clock.advance(60)
    ctl.step(SUNNY)
    assert not ctl.held
    assert supervisor.try_apply() is True  # the supervisor's next attempt
    state = _device(supervisor)
    assert state["commit"] == "2" * 32 and state["update_pending"] is False
    assert supervisor.forced_overrides == 0


def test_fleet_forced_update_overrides_the_lock_and_is_respected(
    supervisor: FakeSupervisor, clock: ManualClock
) -> None:
    ctl = UpdateLockController(
        cfg(forced_grace_s=1800.0), clock, UpdateLockFile(supervisor.lock_path)
    )
    night = inputs(soc_pct=30.0, night_heating_active=True, pv_power_w=0.0)
    ctl.step(night)
    assert ctl.held
    supervisor.new_release("3" * 32)
    _update(supervisor, force=True)
    assert supervisor.update_calls == [True]
    assert supervisor.forced_overrides == 1
    assert _device(supervisor)["commit"] == "3" * 32

    clock.advance(2)
    events = ctl.step(night)
    assert not ctl.held and not supervisor.lock_path.exists()
    assert events[0].severity is Severity.WARNING and "forced update" in events[0].message
    clock.advance(1700)
    assert ctl.step(night) == [] and not ctl.held  # stays away during the grace
    clock.advance(200)
    ctl.step(night)
    assert ctl.held  # energy still says hold: the lock is back after the grace
