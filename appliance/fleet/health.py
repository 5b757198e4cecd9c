"""Health of the box as balena device tags, for the fleet manager's list, report and rollouts.

Tags travel over the box's link like any other traffic, and on a satellite link every patch
costs money, so a report goes out only when it says something new (mode, release, lock, last
sync, or SoC moved by ``SOC_STEP_PCT``) and at most every ``health_interval_s``, plus one
heartbeat every ``health_heartbeat_s`` so the fleet can tell a quiet box from a dead one.
Only changed keys are sent. The tag keys are the contract with ``provisioning``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from appliance.clock import Clock, as_utc
from appliance.config import FleetConfig
from appliance.fleet.supervisor import SupervisorClient, SupervisorError
from appliance.state import Event, EventKind, Mode, Severity

TAG_SOC = "soc_pct"
TAG_MODE = "mode"
TAG_LAST_SYNC = "last_sync"
TAG_VERSION = "version"
TAG_RELEASE = "release"
TAG_LOCK = "update_lock"
TAG_HEALTH_AT = "health_at"
HEALTH_TAG_KEYS = (
    TAG_SOC,
    TAG_MODE,
    TAG_LAST_SYNC,
    TAG_VERSION,
    TAG_RELEASE,
    TAG_LOCK,
    TAG_HEALTH_AT,
)

SOC_STEP_PCT = 5.0
UNKNOWN = "unknown"
NEVER = "never"


@dataclass(frozen=True)
class HealthSnapshot:
    """What the daemon reports; ``release`` None lets the reporter ask the supervisor."""

    soc_pct: float | None
    mode: Mode
    last_sync: datetime | None
    version: str
    update_lock_held: bool = False
    release: str | None = None


def iso_utc(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def health_tags(snapshot: HealthSnapshot, now: datetime) -> dict[str, str]:
    return {
        TAG_SOC: UNKNOWN if snapshot.soc_pct is None else f"{snapshot.soc_pct:.0f}",
        TAG_MODE: snapshot.mode.value,
        TAG_LAST_SYNC: NEVER if snapshot.last_sync is None else iso_utc(snapshot.last_sync),
        TAG_VERSION: snapshot.version,
        TAG_RELEASE: snapshot.release or UNKNOWN,
        TAG_LOCK: "held" if snapshot.update_lock_held else "free",
        TAG_HEALTH_AT: iso_utc(now),
    }


def material_change(sent: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """Worth a report: any tag but SoC and time changed, or SoC moved by SOC_STEP_PCT."""
    for key in (TAG_MODE, TAG_LAST_SYNC, TAG_VERSION, TAG_RELEASE, TAG_LOCK):
        if sent.get(key) != tags.get(key):
            return True
    old, new = sent.get(TAG_SOC), tags.get(TAG_SOC)
    if old == new:
        return False
    if old is None or new is None or UNKNOWN in (old, new):
        return True
    return abs(float(new) - float(old)) >= SOC_STEP_PCT


class HealthReporter:
    """Patches health tags through the supervisor when due; one event per failure streak."""

    SOURCE = "fleet.health"

    def __init__(self, client: SupervisorClient, config: FleetConfig, clock: Clock) -> None:
        self._client = client
        self._config = config
        self._clock = clock
        self._sent: dict[str, str] = {}
        self._sent_mono: float | None = None
        self._release: str | None = None
        self._failing = False

    @property
    def sent(self) -> Mapping[str, str]:
        """Tags as last accepted by the supervisor."""
        return dict(self._sent)

    def due(self, tags: Mapping[str, str]) -> bool:
        if self._sent_mono is None:
            return True
        elapsed = self._clock.monotonic() - self._sent_mono
        if elapsed >= self._config.health_heartbeat_s:
            return True
        return elapsed >= self._config.health_interval_s and material_change(self._sent, tags)

    async def maybe_report(self, snapshot: HealthSnapshot) -> list[Event]:
        """Report if due; returns events (failure, recovery), never raises for link trouble."""
        if snapshot.release is None and self._release is None:
            try:
                self._release = (await self._client.device()).commit
            except SupervisorError:
                self._release = None
        if snapshot.release is None and self._release is not None:
            snapshot = HealthSnapshot(
                soc_pct=snapshot.soc_pct,
                mode=snapshot.mode,
                last_sync=snapshot.last_sync,
                version=snapshot.version,
                update_lock_held=snapshot.update_lock_held,
                release=self._release,
            )
        tags = health_tags(snapshot, self._clock.now())
        if not self.due(tags):
            return []
        changed = {k: v for k, v in tags.items() if self._sent.get(k) != v}
        try:
            await self._client.patch_tags(changed)
        except SupervisorError as exc:
            if self._failing:
                return []
            self._failing = True
            return [self._event(f"health tags not reported: {exc}", Severity.WARNING, changed)]
        self._sent.update(changed)
        self._sent_mono = self._clock.monotonic()
        if self._failing:
            self._failing = False
            return [self._event("health tags reported again", Severity.INFO, changed)]
        return []

    def _event(self, message: str, severity: Severity, tags: Mapping[str, str]) -> Event:
        return Event(
            at=self._clock.now(),
            kind=EventKind.FLEET,
            message=message,
            source=self.SOURCE,
            severity=severity,
            data={"tags": dict(tags)},
        )
