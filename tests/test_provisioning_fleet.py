"""The fleet manager's tool against a fake balena API, through the real balena-sdk."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.config import load_config
from appliance.fleet.env_config import config_to_env
from provisioning import report as report_mod
from provisioning import rollout as ro
from provisioning.bandwidth import PROFILES
from provisioning.cli import main
from provisioning.devices import FleetError, list_fleet, provision
from provisioning.sdk import connect
from tests.conftest import REPO, free_port
from tests.fleet_fake_balena import FakeBalenaCloud
from tests.test_fleet_env_config import DUTCH_SITE

FLEET = "sunbox/villages"
V1, V2, V3 = "1a" * 16, "2b" * 16, "3c" * 16
NOW = datetime(2025, 4, 2, 9, 0, tzinfo=UTC)

KISUMU_SITE = """
[site]
name = "{name}"
lat = -0.09
lon = 34.77
tz = "Africa/Nairobi"

[battery]
capacity_wh = 10000

[[links]]
name = "starlink"
kind = "satellite_broadband"
url = "https://hub.example.org/ingest"
"""


@pytest.fixture
def cloud() -> Iterator[FakeBalenaCloud]:
    fake = FakeBalenaCloud().start()
    app = fake.seed_fleet(FLEET)
    r1 = fake.add_release(app, V1, "1.0.0")
    fake.add_release(app, V2, "1.1.0", is_final=False)  # pushed as a draft: nobody tracks it yet
    fake.add_release(app, V3, "1.2.0", is_final=False)
    fake.tables["application"][app["id"]]["should_be_running__release"] = r1["id"]
    yield fake
    fake.stop()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def empty_base(tmp_path: Path) -> Path:
    return write(tmp_path, "empty.toml", "")


def reporter(
    now: datetime, bad_release: str | None = None
) -> Callable[[dict[str, Any], dict[str, Any] | None], dict[str, str]]:
    """The boxes' daemons: after installing, report health tags naming what they run."""

    def report(device: dict[str, Any], release: dict[str, Any] | None) -> dict[str, str]:
        commit = release["commit"] if release else "unknown"
        mode = "safe" if commit == bad_release else "normal"
        return {
            "release": commit,
            "mode": mode,
            "soc_pct": "77",
            "update_lock": "free",
            "health_at": (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "version": "0.1.0",
            "last_sync": "2025-04-02T08:00:00Z",
        }

    return report


def fleet_of(
    cloud: FakeBalenaCloud, sdk: Any, tmp_path: Path, rings: dict[str, str | None]
) -> dict[str, str]:
    """Provision boxes named by ``rings`` (name -> ring tag), online; returns name -> uuid."""
    uuids = {}
    for name, ring in rings.items():
        config = load_config(
            write(tmp_path, f"{name}.toml", KISUMU_SITE.format(name=name)), environ={}
        )
        result = provision(sdk, FLEET, config, ring=ring)
        cloud.tables["device"][result.device_id]["is_online"] = True
        uuids[name] = result.uuid
    cloud.simulate_devices(reporter(NOW - timedelta(days=1)))
    return uuids


# --------------------------------------------------------------------------- provisioning


def test_provisioning_registers_box_with_config_profile_and_tags(
    cloud: FakeBalenaCloud, tmp_path: Path
) -> None:
    sdk = connect(cloud.token, cloud.url)
    config = load_config(write(tmp_path, "site.toml", DUTCH_SITE), environ={})
    result = provision(sdk, FLEET, config, ring="canary", device_type="generic-aarch64")
    assert result.registered and result.profile == "cellular"

    dev = cloud.one("device", uuid=result.uuid)
    assert dev["device_name"] == "utrecht-lombok-3"
    assert cloud.tables["device_type"][dev["is_of__device_type"]]["slug"] == "generic-aarch64"
    assert cloud.tables["application"][dev["belongs_to__application"]]["slug"] == FLEET
    variables = cloud.device_vars(result.uuid)
    assert variables == config_to_env(config)
    # What the box will load from those variables over its empty /data/sunbox.toml:
    assert load_config(empty_base(tmp_path), environ=variables) == config
    assert cloud.device_vars(result.uuid, "device_config_variable") == PROFILES["cellular"]
    assert cloud.device_tags(result.uuid) == {"ring": "canary", "site": "utrecht-lombok-3"}

    # The site drops its links and moves: re-provisioning updates in place and removes stale vars.
    moved = DUTCH_SITE.split("[[links]]")[0].replace("utrecht-lombok-3", "utrecht-lombok-4")
    config2 = load_config(
        write(tmp_path, "site2.toml", moved + '\n[sync]\nhub_url = "https://hub.example.org"\n'),
        environ={},
    )
    again = provision(sdk, FLEET, config2, uuid=result.uuid)
    assert not again.registered and again.profile == "unmetered"
    assert "SUNBOX_LINKS__0__NAME" in again.env.removed and "SUNBOX_SITE__NAME" in again.env.set
    assert cloud.device_vars(result.uuid) == config_to_env(config2)
    assert cloud.device_vars(result.uuid, "device_config_variable") == {}
    assert set(again.config_vars.removed) == set(PROFILES["cellular"])
    assert cloud.one("device", uuid=result.uuid)["device_name"] == "utrecht-lombok-4"
    assert len(cloud.rows("device")) == 1


def test_provisioning_refuses_a_device_of_another_fleet(
    cloud: FakeBalenaCloud, tmp_path: Path
) -> None:
    sdk = connect(cloud.token, cloud.url)
    other = cloud.seed_fleet("other/lab")
    intruder = cloud.insert(
        "device",
        uuid="f" * 32,
        device_name="lab",
        belongs_to__application=other["id"],
        is_of__device_type=other["is_for__device_type"],
    )
    config = load_config(write(tmp_path, "a.toml", KISUMU_SITE.format(name="a")), environ={})
    with pytest.raises(FleetError, match="belongs to fleet 'other/lab'"):
        provision(sdk, FLEET, config, uuid=intruder["uuid"])
    assert cloud.rows("device_environment_variable") == []
    with pytest.raises(FleetError, match="full 32 or 62 hex"):
        provision(sdk, FLEET, config, uuid="abc123")


def test_provisioning_list_and_report(cloud: FakeBalenaCloud, tmp_path: Path) -> None:
    sdk = connect(cloud.token, cloud.url)
    uuids = fleet_of(
        cloud, sdk, tmp_path, {"kisumu-1": "canary", "kisumu-2": None, "kisumu-3": None}
    )
    cloud.tables["device"][cloud.one("device", uuid=uuids["kisumu-3"])["id"]]["is_online"] = False
    # kisumu-2 reports safe mode; kisumu-3 never reported anything.
    k2 = cloud.one("device", uuid=uuids["kisumu-2"])["id"]
    next(
        t
        for t in cloud.tables["device_tag"].values()
        if t["device"] == k2 and t["tag_key"] == "mode"
    )["value"] = "safe"
    k3 = cloud.one("device", uuid=uuids["kisumu-3"])["id"]
    for tag in [
        t
        for t in cloud.tables["device_tag"].values()
        if t["device"] == k3 and t["tag_key"] != "site"
    ]:
        del cloud.tables["device_tag"][tag["id"]]

    cloud.log.clear()
    devices = list_fleet(sdk, FLEET)
    assert {d.name for d in devices} == {"kisumu-1", "kisumu-2", "kisumu-3"}
    k1 = next(d for d in devices if d.name == "kisumu-1")
    assert (
        k1.ring == "canary"
        and k1.online
        and k1.running_release == V1
        and k1.tags["soc_pct"] == "77"
    )
    assert (
        sum(1 for m, p in cloud.log if m == "GET" and p.startswith("/v7/device?")) == 1
    )  # one request

    reported_at = NOW - timedelta(days=1) + timedelta(minutes=5)
    rows = report_mod.rows(devices, reported_at + timedelta(hours=12))
    assert [r["health"] for r in rows] == ["ok", "safe", "unknown"]  # canary ring first
    stale = report_mod.rows(devices, reported_at + timedelta(hours=14))
    assert stale[0]["health"] == "stale"
    parsed = list(csv.DictReader(io.StringIO(report_mod.to_csv(rows))))
    assert (
        parsed[0]["name"] == "kisumu-1"
        and parsed[0]["online"] == "true"
        and parsed[0]["ring"] == "canary"
    )
    assert parsed[2]["online"] == "false" and parsed[2]["mode"] == ""
    summary = json.loads(report_mod.to_json(rows, reported_at))
    assert summary["devices"] == 3 and summary["health"] == {"ok": 1, "safe": 1, "unknown": 1}


# --------------------------------------------------------------------------- rollouts


def pinned(cloud: FakeBalenaCloud, uuid: str) -> str | None:
    rel = cloud.one("device", uuid=uuid)["is_pinned_on__release"]
    return None if rel is None else str(cloud.tables["release"][rel]["commit"])


def running(cloud: FakeBalenaCloud, uuid: str) -> str | None:
    rel = cloud.one("device", uuid=uuid)["is_running__release"]
    return None if rel is None else str(cloud.tables["release"][rel]["commit"])


def test_provisioning_rollout_canary_then_promote_to_the_whole_fleet(
    cloud: FakeBalenaCloud, tmp_path: Path
) -> None:
    sdk = connect(cloud.token, cloud.url)
    u = fleet_of(
        cloud,
        sdk,
        tmp_path,
        {"c1": "canary", "c2": "canary", "e1": "early", "f1": None, "f2": None},
    )
    app = cloud.one("application", slug=FLEET)
    assert app["should_track_latest_release"] is True

    rollout = ro.start(sdk, FLEET, V2[:8], NOW)
    assert rollout.release == V2 and rollout.previous == V1 and rollout.ring == "canary"
    app = cloud.one("application", slug=FLEET)
    assert app["should_track_latest_release"] is False  # pinned so V2 cannot reach everyone
    assert cloud.tables["release"][app["should_be_running__release"]]["commit"] == V1
    assert [pinned(cloud, u[n]) for n in ("c1", "c2", "e1", "f1")] == [V2, V2, None, None]
    tags = {t["tag_key"]: t["value"] for t in cloud.rows("application_tag")}
    assert tags["sunbox_rollout_ring"] == "canary" and tags["sunbox_rollout_state"] == "active"

    status = ro.status(sdk, FLEET)
    assert not status.ready and {d.reason for d in status.devices} == {"installing"}
    with pytest.raises(FleetError, match="not ready: 0 healthy, 2 pending"):
        ro.promote(sdk, FLEET)

    cloud.simulate_devices(reporter(NOW))
    assert running(cloud, u["c1"]) == V2 and running(cloud, u["e1"]) == V1
    status = ro.status(sdk, FLEET)
    assert status.ready and status.count(ro.Verdict.HEALTHY) == 2

    assert ro.promote(sdk, FLEET).ring == "early"
    assert [pinned(cloud, u[n]) for n in ("c1", "e1", "f1")] == [V2, V2, None]
    assert not ro.status(sdk, FLEET).ready
    cloud.simulate_devices(reporter(NOW))

    done = ro.promote(sdk, FLEET)
    assert done.ring == ro.FLEET_STEP and done.phase is ro.RolloutPhase.DONE
    app = cloud.one("application", slug=FLEET)
    assert cloud.tables["release"][app["should_be_running__release"]]["commit"] == V2
    assert all(pinned(cloud, uuid) is None for uuid in u.values())  # everyone follows the fleet
    cloud.simulate_devices(reporter(NOW))
    assert {running(cloud, uuid) for uuid in u.values()} == {V2}
    with pytest.raises(FleetError, match="done; nothing to promote"):
        ro.promote(sdk, FLEET)


def test_provisioning_rollout_failing_canary_rolls_back_by_repinning(
    cloud: FakeBalenaCloud, tmp_path: Path
) -> None:
    sdk = connect(cloud.token, cloud.url)
    u = fleet_of(cloud, sdk, tmp_path, {"c1": "canary", "c2": "canary", "f1": None})
    ro.start(sdk, FLEET, V3, NOW, rings=["canary"])
    cloud.simulate_devices(reporter(NOW, bad_release=V3))  # the new release puts boxes in safe mode
    status = ro.status(sdk, FLEET)
    assert status.failing and not status.ready
    assert {d.verdict for d in status.devices} == {ro.Verdict.UNHEALTHY}
    with pytest.raises(FleetError, match="2 unhealthy"):
        ro.promote(sdk, FLEET)

    rolled, count = ro.rollback(sdk, FLEET)
    assert count == 2 and rolled.phase is ro.RolloutPhase.ROLLED_BACK
    assert [pinned(cloud, u[n]) for n in ("c1", "c2", "f1")] == [V1, V1, None]
    cloud.simulate_devices(reporter(NOW))
    assert {running(cloud, uuid) for uuid in u.values()} == {V1}
    with pytest.raises(FleetError, match="rolled_back"):
        ro.rollback(sdk, FLEET)
    # A fixed release can be rolled out after the rollback.
    assert ro.start(sdk, FLEET, V2, NOW + timedelta(hours=2), rings=["canary"]).previous == V1


def test_provisioning_rollout_refusals(cloud: FakeBalenaCloud, tmp_path: Path) -> None:
    sdk = connect(cloud.token, cloud.url)
    fleet_of(cloud, sdk, tmp_path, {"c1": "canary"})
    with pytest.raises(FleetError, match="no successful release"):
        ro.start(sdk, FLEET, "deadbeef", NOW)
    with pytest.raises(FleetError, match="already runs"):
        ro.start(sdk, FLEET, V1, NOW)
    with pytest.raises(FleetError, match="distinct"):
        ro.start(sdk, FLEET, V2, NOW, rings=["canary", "canary"])
    ro.start(sdk, FLEET, V2, NOW)
    with pytest.raises(FleetError, match="is active at ring 'canary'"):
        ro.start(sdk, FLEET, V3, NOW)


def test_provisioning_pending_box_holding_its_update_lock_is_not_a_failure(
    cloud: FakeBalenaCloud, tmp_path: Path
) -> None:
    sdk = connect(cloud.token, cloud.url)
    u = fleet_of(cloud, sdk, tmp_path, {"c1": "canary"})
    ro.start(sdk, FLEET, V2, NOW, rings=["canary"])
    dev = cloud.one("device", uuid=u["c1"])["id"]
    next(
        t
        for t in cloud.tables["device_tag"].values()
        if t["device"] == dev and t["tag_key"] == "update_lock"
    )["value"] = "held"
    verdict = ro.status(sdk, FLEET).devices[0]
    assert verdict.verdict is ro.Verdict.PENDING and "update lock held" in verdict.reason


# --------------------------------------------------------------------------- the command


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_provisioning_cli_end_to_end(
    cloud: FakeBalenaCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    online = ["--api-url", cloud.url, "--token", cloud.token, "--fleet", FLEET]
    site = write(tmp_path, "k1.toml", KISUMU_SITE.format(name="kisumu-1"))
    code, out, _ = run(["provision", str(site), "--ring", "canary", "--json", *online], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["profile"] == "satellite_broadband" and result["registered"] is True
    assert (
        cloud.device_vars(result["uuid"], "device_config_variable")[
            "BALENA_SUPERVISOR_POLL_INTERVAL"
        ]
        == "86400000"
    )
    cloud.tables["device"][result["device_id"]]["is_online"] = True
    cloud.simulate_devices(reporter(datetime.now(UTC)))

    code, out, _ = run(["list", "--json", *online], capsys)
    assert code == 0 and json.loads(out)[0]["name"] == "kisumu-1"
    report_file = tmp_path / "fleet.csv"
    code, out, _ = run(["report", "--output", str(report_file), *online], capsys)
    assert code == 0 and "wrote 1 devices" in out
    assert list(csv.DictReader(report_file.open()))[0]["soc_pct"] == "77"

    code, out, _ = run(["rollout", "start", V2[:10], "--rings", "canary", *online], capsys)
    assert code == 0 and "started at ring 'canary'" in out
    code, out, _ = run(["rollout", "status", "--json", *online], capsys)
    assert code == 0 and json.loads(out)["devices"][0]["verdict"] == "pending"
    cloud.simulate_devices(reporter(datetime.now(UTC), bad_release=V2))
    code, out, _ = run(["rollout", "status", *online], capsys)
    assert code == 3 and "failing: roll back" in out
    code, _, err = run(["rollout", "promote", *online], capsys)
    assert code == 1 and err.count("\n") == 1 and "not ready" in err
    code, out, _ = run(["rollout", "rollback", *online], capsys)
    assert code == 0 and "1 devices re-pinned" in out and pinned(cloud, result["uuid"]) == V1

    # One-line errors, no tracebacks.
    code, _, err = run(["list", "--api-url", cloud.url, "--fleet", FLEET], capsys)
    assert code == 1 and "no balena API token" in err
    code, _, err = run(
        ["list", "--api-url", cloud.url, "--token", "wrong", "--fleet", FLEET], capsys
    )
    assert code == 1 and err.startswith("sunbox-fleet: balena:") and err.count("\n") == 1
    nowhere = f"http://127.0.0.1:{free_port()}/"
    code, _, err = run(["list", "--api-url", nowhere, "--token", "t", "--fleet", FLEET], capsys)
    assert (
        code == 1
        and err == f"sunbox-fleet: cannot reach the balena API at {nowhere}: Connection refused\n"
    )
    bad = write(tmp_path, "bad.toml", "[battery]\nreserve_pct = 120\n")
    code, _, err = run(["provision", str(bad), *online], capsys)
    assert code == 2 and "battery.reserve_pct" in err
    code, _, err = run(["provision", str(tmp_path / "missing.toml"), *online], capsys)
    assert code == 2 and "no such file" in err


def test_provisioning_module_runs_as_a_command(cloud: FakeBalenaCloud, tmp_path: Path) -> None:
    site = write(tmp_path, "site.toml", KISUMU_SITE.format(name="kisumu-9"))
    env = {
        "PATH": "/usr/bin:/bin",
        "BALENA_API_KEY": cloud.token,
        "BALENA_FLEET": FLEET,
        "BALENA_API_URL": cloud.url,
        "HOME": str(tmp_path),
    }
    offline = subprocess.run(
        [sys.executable, "-m", "provisioning", "env", str(site)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert offline.returncode == 0, offline.stderr
    assert "SUNBOX_SITE__NAME=kisumu-9" in offline.stdout.splitlines()
    profile = subprocess.run(
        [sys.executable, "-m", "provisioning", "profile", "--config", str(site)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert "BALENA_SUPERVISOR_VPN_CONTROL=false" in profile.stdout
    online = subprocess.run(
        [sys.executable, "-m", "provisioning", "provision", str(site), "--ring", "canary"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert online.returncode == 0, online.stderr
    assert cloud.one("device", device_name="kisumu-9")
