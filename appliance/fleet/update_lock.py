"""Energy-aware balena update lock: releases land in the sun, never mid-night on a low battery.

The balena supervisor will not stop our services while ``/tmp/balena/updates.lock`` exists
(created with O_CREAT|O_EXCL). We hold it while an update would hurt: battery below its level,
a critical job or the night's heating running, a device write in flight, the box in safe or
shed mode, or no sun to pay for the download and restart. We release it once everything has
allowed an update for ``release_after_s`` (an evcc-style timer, so a passing cloud does not
flap the lock).

Two shapes, like the rest of the box: ``decide`` is a pure rule with reasons; the controller
applies it to the file and reports changes as FLEET events.

A forced update always wins: ``POST /v1/update {"force": true}`` (or the config variable
BALENA_SUPERVISOR_OVERRIDE_LOCK=1) makes the supervisor delete our lockfile and take its own.
The controller notices, says so, and stays away from the lock for ``forced_grace_s`` so the
forced update can finish; it never deletes a lockfile it did not create.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from appliance.clock import Clock
from appliance.config import FleetConfig
from appliance.state import Event, EventKind, Mode, Severity

# Written into our lockfile so a restarted daemon recognises its own lock (the supervisor's
# lockfiles are empty and owned by uid 65534).
LOCK_OWNER = "sunbox"


@dataclass(frozen=True)
class LockInputs:
    """What the daemon knows right now, fed to the controller every control cycle."""

    soc_pct: float | None
    mode: Mode
    critical_job_running: bool = False
    night_heating_active: bool = False
    device_write_in_progress: bool = False
    pv_power_w: float | None = None


@dataclass(frozen=True)
class LockReason:
    """One reason, with a stable code (for change detection) and words for people."""

    code: str
    text: str


@dataclass(frozen=True)
class LockDecision:
    """Hold the lock or let updates in, and why (reasons to hold, or what allows release)."""

    hold: bool
    reasons: tuple[LockReason, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def describe(self) -> str:
        return "; ".join(r.text for r in self.reasons)


def decide(inputs: LockInputs, config: FleetConfig, held: bool = False) -> LockDecision:
    """Pure rule: should the update lock be held for these inputs?

    ``held`` applies the SoC hysteresis: once held for a low battery, the battery must reach
    ``update_min_soc_pct + update_soc_hysteresis_pct`` before an update may land.
    """
    hold: list[LockReason] = []
    threshold = config.update_min_soc_pct + (config.update_soc_hysteresis_pct if held else 0.0)
    if inputs.soc_pct is None:
        hold.append(LockReason("soc_unknown", "battery SoC unknown"))
    elif inputs.soc_pct < threshold:
        hold.append(LockReason("low_battery", f"battery {inputs.soc_pct:.0f}% < {threshold:.0f}%"))
    if inputs.mode is not Mode.NORMAL:
        hold.append(LockReason("mode", f"box in {inputs.mode.value} mode"))
    if inputs.critical_job_running:
        hold.append(LockReason("critical_job", "a critical job is running"))
    if inputs.night_heating_active:
        hold.append(LockReason("heating", "heating the home"))
    if inputs.device_write_in_progress:
        hold.append(LockReason("device_write", "a device write is in progress"))
    if config.update_min_pv_w > 0:
        if inputs.pv_power_w is None:
            hold.append(LockReason("pv_unknown", "PV power unknown"))
        elif inputs.pv_power_w < config.update_min_pv_w:
            hold.append(
                LockReason(
                    "no_sun", f"PV {inputs.pv_power_w:.0f} W < {config.update_min_pv_w:.0f} W"
                )
            )
    if hold:
        return LockDecision(True, tuple(hold))
    allow = [LockReason("energy_ok", f"battery {inputs.soc_pct:.0f}% >= {threshold:.0f}%")]
    if config.update_min_pv_w > 0 and inputs.pv_power_w is not None:
        allow.append(LockReason("sun", f"PV {inputs.pv_power_w:.0f} W"))
    return LockDecision(False, tuple(allow))


class AcquireResult(StrEnum):
    ACQUIRED = "acquired"
    ALREADY_OURS = "already_ours"
    BUSY = "busy"  # a lockfile we did not create: the supervisor is taking or holding it


class UpdateLockFile:
    """The lockfile itself: created with O_CREAT|O_EXCL, removed to release, ours only."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def is_ours(self) -> bool:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError):
            return False
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return False
        return isinstance(data, dict) and data.get("owner") == LOCK_OWNER

    def acquire(self, note: str = "") -> AcquireResult:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return AcquireResult.ALREADY_OURS if self.is_ours() else AcquireResult.BUSY
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"owner": LOCK_OWNER, "pid": os.getpid(), "note": note}))
        return AcquireResult.ACQUIRED

    def release(self) -> bool:
        """Remove the lockfile if it is ours; True when it was removed."""
        if not self.is_ours():
            return False
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class UpdateLockController:
    """Applies ``decide`` to the lockfile every cycle; returns FLEET events on changes.

    The daemon calls ``step(inputs)`` from its control loop (it never blocks: a local file
    operation) and stores the returned events.
    """

    SOURCE = "fleet.update_lock"

    def __init__(
        self, config: FleetConfig, clock: Clock, lock: UpdateLockFile | None = None
    ) -> None:
        self._config = config
        self._clock = clock
        self._lock = lock or UpdateLockFile(config.lock_path)
        # A lock left by our previous run (daemon restart; /tmp/balena outlives the container)
        # is adopted, so the normal release rule removes it.
        self._held = self._lock.is_ours()
        self._ok_since: float | None = None
        self._forced_until: float | None = None
        self._busy_reported = False
        self._last_codes: tuple[str, ...] = ()
        self._last: LockDecision | None = None

    @property
    def held(self) -> bool:
        return self._held

    @property
    def last_decision(self) -> LockDecision | None:
        return self._last

    @property
    def path(self) -> Path:
        return self._lock.path

    def step(self, inputs: LockInputs) -> list[Event]:
        now_mono = self._clock.monotonic()
        events: list[Event] = []
        if self._held and not self._lock.is_ours():
            self._held = False
            self._forced_until = now_mono + self._config.forced_grace_s
            events.append(
                self._event(
                    "update lock overridden by the supervisor (forced update); not retaking "
                    f"it for {self._config.forced_grace_s:.0f} s",
                    Severity.WARNING,
                    hold=False,
                    reasons=(),
                )
            )
        decision = decide(inputs, self._config, held=self._held)
        self._last = decision
        if decision.hold:
            self._ok_since = None
            events.extend(self._want_hold(decision, now_mono))
        else:
            if self._ok_since is None:
                self._ok_since = now_mono
            if self._held and now_mono - self._ok_since >= self._config.release_after_s:
                events.extend(self._release(decision))
        return events

    def close(self) -> list[Event]:
        """Release at shutdown: a stopped daemon protects nothing by holding the lock."""
        if not self._held:
            return []
        self._lock.release()
        self._held = False
        return [
            self._event(
                "update lock released: daemon stopping", Severity.INFO, hold=False, reasons=()
            )
        ]

    # ------------------------------------------------------------------ internals
    def _want_hold(self, decision: LockDecision, now_mono: float) -> list[Event]:
        if self._forced_until is not None and now_mono < self._forced_until:
            return []
        self._forced_until = None
        if self._held:
            if decision.codes != self._last_codes:
                self._last_codes = decision.codes
                return [
                    self._event(
                        f"update lock held: {decision.describe()}",
                        Severity.INFO,
                        hold=True,
                        reasons=decision.reasons,
                    )
                ]
            return []
        result = self._lock.acquire(decision.describe())
        if result is AcquireResult.BUSY:
            if self._busy_reported:
                return []
            self._busy_reported = True
            return [
                self._event(
                    f"cannot take the update lock: the supervisor holds it (update being applied); "
                    f"wanted because {decision.describe()}",
                    Severity.WARNING,
                    hold=False,
                    reasons=decision.reasons,
                )
            ]
        self._busy_reported = False
        self._held = True
        self._last_codes = decision.codes
        return [
            self._event(
                f"update lock held: {decision.describe()}",
                Severity.INFO,
                hold=True,
                reasons=decision.reasons,
            )
        ]

    def _release(self, decision: LockDecision) -> list[Event]:
        self._lock.release()
        self._held = False
        self._last_codes = ()
        return [
            self._event(
                f"update lock released, updates may land: {decision.describe()}",
                Severity.INFO,
                hold=False,
                reasons=decision.reasons,
            )
        ]

    def _event(
        self, message: str, severity: Severity, *, hold: bool, reasons: tuple[LockReason, ...]
    ) -> Event:
        return Event(
            at=self._clock.now(),
            kind=EventKind.FLEET,
            message=message,
            source=self.SOURCE,
            severity=severity,
            data={
                "held": hold,
                "lock_path": str(self._lock.path),
                "reasons": [r.code for r in reasons],
            },
        )
