"""Ring rollouts: a release reaches the canary ring first, then each next ring, then the fleet.

Rings are device tags (``ring=canary``); devices without a ring tag belong to the fleet step.
A rollout pins the current ring's devices to the new release, watches their health tags, and
either promotes (pins the next ring; at the end pins the fleet to the release and lets every
device follow the fleet again) or rolls back (re-pins the rolled-out devices to the previous
release). Its state lives in fleet tags, so any fleet manager's laptop can pick it up.

A device counts as healthy for the rollout when balena says it runs the release, and the box
itself has reported since the rollout began, naming that release and a mode other than safe.
A box that holds its update lock (low battery, night heating) is pending, not failing: it
will take the release when the sun allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from balena import Balena

from appliance.fleet.health import TAG_HEALTH_AT, TAG_LOCK, TAG_MODE, TAG_RELEASE
from provisioning.devices import FleetDevice, FleetError, list_fleet

DEFAULT_RINGS = ("canary", "early")
FLEET_STEP = "fleet"

TAG_R_RELEASE = "sunbox_rollout_release"
TAG_R_PREVIOUS = "sunbox_rollout_previous"
TAG_R_RINGS = "sunbox_rollout_rings"
TAG_R_RING = "sunbox_rollout_ring"
TAG_R_STARTED = "sunbox_rollout_started_at"
TAG_R_STATE = "sunbox_rollout_state"


class RolloutPhase(StrEnum):
    ACTIVE = "active"
    DONE = "done"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Rollout:
    release: str
    previous: str
    rings: tuple[str, ...]
    ring: str  # current step: one of rings, or FLEET_STEP
    started_at: datetime
    phase: RolloutPhase

    def steps(self) -> tuple[str, ...]:
        return (*self.rings, FLEET_STEP)

    def done_steps(self) -> tuple[str, ...]:
        """Steps whose devices have been pinned so far (current included)."""
        steps = self.steps()
        return steps[: steps.index(self.ring) + 1]


class Verdict(StrEnum):
    HEALTHY = "healthy"
    PENDING = "pending"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class DeviceVerdict:
    uuid: str
    name: str
    step: str
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class RolloutStatus:
    rollout: Rollout
    devices: tuple[DeviceVerdict, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for d in self.devices if d.verdict is verdict)

    @property
    def ready(self) -> bool:
        """Every device of the current step is healthy (an empty step is trivially ready)."""
        return all(d.verdict is Verdict.HEALTHY for d in self.devices)

    @property
    def failing(self) -> bool:
        return any(d.verdict is Verdict.UNHEALTHY for d in self.devices)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def step_of(device: FleetDevice, rings: Sequence[str]) -> str:
    ring = device.ring
    return ring if ring is not None and ring in rings else FLEET_STEP


def same_commit(a: str | None, b: str | None) -> bool:
    """Full or abbreviated (>= 7 characters) commits of the same release."""
    if not a or not b:
        return False
    a, b = a.lower(), b.lower()
    short = min(len(a), len(b))
    return short >= 7 and a[:short] == b[:short]


# --------------------------------------------------------------------------- state in tags


def load(sdk: Balena, fleet: str) -> Rollout | None:
    tags = {
        t["tag_key"]: t["value"] for t in sdk.models.application.tags.get_all_by_application(fleet)
    }
    if TAG_R_RELEASE not in tags:
        return None
    started = parse_iso(tags.get(TAG_R_STARTED))
    if started is None:
        raise FleetError(
            f"fleet tag {TAG_R_STARTED} is missing or not a time; fix or clear the rollout tags"
        )
    rings = tuple(r for r in tags.get(TAG_R_RINGS, "").split(",") if r)
    return Rollout(
        release=tags[TAG_R_RELEASE],
        previous=tags.get(TAG_R_PREVIOUS, ""),
        rings=rings,
        ring=tags.get(TAG_R_RING, FLEET_STEP),
        started_at=started,
        phase=RolloutPhase(tags.get(TAG_R_STATE, RolloutPhase.ACTIVE.value)),
    )


def _save(sdk: Balena, fleet: str, rollout: Rollout) -> None:
    values = {
        TAG_R_RELEASE: rollout.release,
        TAG_R_PREVIOUS: rollout.previous,
        TAG_R_RINGS: ",".join(rollout.rings),
        TAG_R_RING: rollout.ring,
        TAG_R_STARTED: _iso(rollout.started_at),
        TAG_R_STATE: rollout.phase.value,
    }
    for key, value in values.items():
        sdk.models.application.tags.set(fleet, key, value)


def _release_id(sdk: Balena, app_id: int, commit: str) -> tuple[int, str]:
    """(id, full commit) of a successful release of the fleet; accepts a unique prefix."""
    releases = sdk.models.release.get_all_by_application(
        app_id, {"$select": ["id", "commit", "status"], "$filter": {"status": "success"}}
    )
    found = [r for r in releases if same_commit(str(r["commit"]), commit)]
    if not found:
        raise FleetError(f"no successful release {commit!r} in this fleet")
    if len(found) > 1:
        raise FleetError(
            f"release {commit!r} is ambiguous ({len(found)} matches); give more characters"
        )
    return int(found[0]["id"]), str(found[0]["commit"])


def _pin(sdk: Balena, devices: Iterable[FleetDevice], commit: str) -> int:
    ids = [d.id for d in devices]
    if ids:
        sdk.models.device.pin_to_release(ids, commit)
    return len(ids)


def _step_devices(sdk: Balena, fleet: str, rollout: Rollout, step: str) -> list[FleetDevice]:
    return [d for d in list_fleet(sdk, fleet) if step_of(d, rollout.rings) == step]


# --------------------------------------------------------------------------- operations


def start(
    sdk: Balena, fleet: str, commit: str, now: datetime, rings: Sequence[str] = DEFAULT_RINGS
) -> Rollout:
    """Pin the first ring to ``commit``; the rest of the fleet stays on its release."""
    if not rings:
        raise FleetError("a rollout needs at least one ring (e.g. --rings canary)")
    if FLEET_STEP in rings or len(set(rings)) != len(rings):
        raise FleetError(f"rings must be distinct and not named {FLEET_STEP!r}")
    current = load(sdk, fleet)
    if current is not None and current.phase is RolloutPhase.ACTIVE:
        raise FleetError(
            f"rollout of {current.release[:12]} is active at ring {current.ring!r}; "
            "promote or roll it back first"
        )
    app = sdk.models.application.get(
        fleet,
        {
            "$select": ["id", "should_track_latest_release"],
            "$expand": {"should_be_running__release": {"$select": ["id", "commit"]}},
        },
    )
    target = app.get("should_be_running__release") or []
    if not target:
        raise FleetError("the fleet has no release yet; pin it to one before a rollout")
    previous = str(target[0]["commit"])
    _, full = _release_id(sdk, int(app["id"]), commit)
    if same_commit(previous, full):
        raise FleetError(
            f"the fleet already runs {full[:12]}; pin the fleet to the previous release "
            "(balena fleet pin) before rolling this one out"
        )
    if app.get("should_track_latest_release"):
        # Otherwise the next release would reach every device at once.
        sdk.models.application.pin_to_release(fleet, previous)
    rollout = Rollout(
        release=full,
        previous=previous,
        rings=tuple(rings),
        ring=rings[0],
        started_at=now,
        phase=RolloutPhase.ACTIVE,
    )
    _pin(sdk, _step_devices(sdk, fleet, rollout, rings[0]), full)
    _save(sdk, fleet, rollout)
    return rollout


def judge(device: FleetDevice, rollout: Rollout, step: str) -> DeviceVerdict:
    def verdict(v: Verdict, reason: str) -> DeviceVerdict:
        return DeviceVerdict(device.uuid, device.name, step, v, reason)

    tags = device.tags
    if tags.get(TAG_MODE) == "safe" and same_commit(tags.get(TAG_RELEASE), rollout.release):
        return verdict(Verdict.UNHEALTHY, "box in safe mode on the new release")
    if not same_commit(device.running_release, rollout.release):
        if tags.get(TAG_LOCK) == "held":
            return verdict(
                Verdict.PENDING, "update lock held (energy or heating); lands in the sun"
            )
        if not device.online:
            return verdict(Verdict.PENDING, "offline")
        return verdict(Verdict.PENDING, "installing")
    if not same_commit(tags.get(TAG_RELEASE), rollout.release):
        return verdict(Verdict.PENDING, "runs the release but has not reported from it yet")
    reported = parse_iso(tags.get(TAG_HEALTH_AT))
    if reported is None or reported < rollout.started_at:
        return verdict(Verdict.PENDING, "no health report since the rollout began")
    return verdict(
        Verdict.HEALTHY, f"mode {tags.get(TAG_MODE, '?')}, reported {tags.get(TAG_HEALTH_AT)}"
    )


def status(sdk: Balena, fleet: str) -> RolloutStatus:
    rollout = load(sdk, fleet)
    if rollout is None:
        raise FleetError("no rollout in this fleet (start one with: rollout start COMMIT)")
    devices = list_fleet(sdk, fleet)
    verdicts = tuple(
        judge(d, rollout, rollout.ring)
        for d in devices
        if step_of(d, rollout.rings) == rollout.ring
    )
    return RolloutStatus(rollout, verdicts)


def promote(sdk: Balena, fleet: str, force: bool = False) -> Rollout:
    """Move to the next step when the current one is healthy (or ``force``)."""
    current = status(sdk, fleet)
    rollout = current.rollout
    if rollout.phase is not RolloutPhase.ACTIVE:
        raise FleetError(
            f"the rollout of {rollout.release[:12]} is {rollout.phase.value}; nothing to promote"
        )
    if not current.ready and not force:
        raise FleetError(
            f"ring {rollout.ring!r} not ready: {current.count(Verdict.HEALTHY)} healthy, "
            f"{current.count(Verdict.PENDING)} pending, "
            f"{current.count(Verdict.UNHEALTHY)} unhealthy "
            "(see rollout status; --force promotes anyway)"
        )
    steps = rollout.steps()
    nxt = steps[steps.index(rollout.ring) + 1] if rollout.ring != FLEET_STEP else None
    if nxt is None:
        raise FleetError("the release already reached the whole fleet")
    if nxt == FLEET_STEP:
        devices = list_fleet(sdk, fleet)
        sdk.models.application.pin_to_release(fleet, rollout.release)
        ring_ids = [
            d.id
            for d in devices
            if d.pinned_release is not None and step_of(d, rollout.rings) != FLEET_STEP
        ]
        if ring_ids:
            sdk.models.device.track_application_release(ring_ids)
        promoted = Rollout(
            rollout.release,
            rollout.previous,
            rollout.rings,
            FLEET_STEP,
            rollout.started_at,
            RolloutPhase.DONE,
        )
    else:
        _pin(sdk, _step_devices(sdk, fleet, rollout, nxt), rollout.release)
        promoted = Rollout(
            rollout.release,
            rollout.previous,
            rollout.rings,
            nxt,
            rollout.started_at,
            RolloutPhase.ACTIVE,
        )
    _save(sdk, fleet, promoted)
    return promoted


def rollback(sdk: Balena, fleet: str) -> tuple[Rollout, int]:
    """Re-pin every device the rollout reached to the previous release."""
    rollout = load(sdk, fleet)
    if rollout is None:
        raise FleetError("no rollout in this fleet")
    if rollout.phase is not RolloutPhase.ACTIVE:
        raise FleetError(
            f"the rollout of {rollout.release[:12]} is {rollout.phase.value}; pin the fleet to "
            f"{rollout.previous[:12]} instead (balena fleet pin)"
        )
    reached = set(rollout.done_steps())
    devices = [d for d in list_fleet(sdk, fleet) if step_of(d, rollout.rings) in reached]
    count = _pin(sdk, devices, rollout.previous)
    rolled = Rollout(
        rollout.release,
        rollout.previous,
        rollout.rings,
        rollout.ring,
        rollout.started_at,
        RolloutPhase.ROLLED_BACK,
    )
    _save(sdk, fleet, rolled)
    return rolled, count


def summary(status_: RolloutStatus) -> Mapping[str, object]:
    r = status_.rollout
    return {
        "release": r.release,
        "previous": r.previous,
        "rings": list(r.rings),
        "ring": r.ring,
        "phase": r.phase.value,
        "started_at": _iso(r.started_at),
        "ready": status_.ready,
        "failing": status_.failing,
        "devices": [
            {
                "uuid": d.uuid,
                "name": d.name,
                "ring": d.step,
                "verdict": d.verdict.value,
                "reason": d.reason,
            }
            for d in status_.devices
        ],
    }
