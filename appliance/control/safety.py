"""Safety rules: the mode machine that every control cycle runs first.

- SoC unknown or stale beyond its limit, or a device alarm -> SAFE (fail closed: only critical
  services run). Never fail open: missing data is treated as the worst case.
- SoC at or below the reserve -> SHED (only critical and base load); leave only above
  reserve + margin and after a minimum dwell, so the box does not flap at the boundary.
- SoC near the BMS cut-off -> critical services are stopped gracefully before the BMS
  disconnects them hard.
Each change of mode carries its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from appliance.config import SunboxConfig
from appliance.state import Channel, Mode, Severity, SiteState

REQUIRED_CHANNELS = (Channel.SOC_PCT.value,)
FRESH_CYCLES_TO_RECOVER = 2  # consecutive good cycles before leaving SAFE
RESERVE_LOOKAHEAD_S = 300.0  # shed when the present discharge would reach the reserve this soon
CRITICAL_STOP_MARGIN_PCT = 2.0  # above soc_min: stop critical services gracefully
CRITICAL_RESUME_MARGIN_PCT = 6.0


@dataclass
class SafetyMemory:
    mode: Mode = Mode.SAFE
    reason: str = "starting: waiting for fresh device data"
    since: datetime | None = None
    fresh_cycles: int = 0
    critical_allowed: bool = True
    forced_reason: str | None = None  # a technician's manual safe mode, until released


@dataclass(frozen=True)
class SafetyVerdict:
    mode: Mode
    reason: str
    changed: bool
    previous: Mode
    critical_allowed: bool
    critical_changed: bool
    soc_pct: float | None
    alarms: tuple[str, ...] = field(default_factory=tuple)


def _problem(state: SiteState, config: SunboxConfig) -> str | None:
    """Why the box must be in SAFE mode now, or None."""
    for channel in REQUIRED_CHANNELS:
        reading = state.reading(channel)
        if reading is None or reading.value is None:
            return f"{channel} unknown (no device has reported it)"
        if not reading.is_fresh(state.at):
            age = reading.age_s(state.at)
            return f"{channel} stale: last value {age:.0f} s old (limit {reading.stale_after_s:.0f} s)"
    for alarm in state.alarms:
        if alarm.severity == Severity.ALARM:
            return f"device alarm from {alarm.source}: {alarm.message}"
    return None


def _minutes_to_reserve(soc: float, battery_w: float | None, config: SunboxConfig) -> float | None:
    """Minutes until the present discharge reaches the reserve, if within the lookahead."""
    if battery_w is None or battery_w >= 0:
        return None
    battery = config.battery
    drain_pct_per_s = -battery_w / battery.one_way_efficiency / battery.capacity_wh * 100.0 / 3600.0
    seconds = (soc - battery.reserve_pct) / drain_pct_per_s
    return seconds / 60.0 if seconds <= RESERVE_LOOKAHEAD_S else None


def evaluate(state: SiteState, memory: SafetyMemory, config: SunboxConfig) -> SafetyVerdict:
    """Next mode from the snapshot; updates ``memory`` in place."""
    now = state.at
    if memory.since is None:
        memory.since = now
    previous = memory.mode
    battery = config.battery
    ctrl = config.control
    problem = memory.forced_reason or _problem(state, config)
    soc = state.fresh(Channel.SOC_PCT.value)
    battery_w = state.fresh(Channel.BATTERY_POWER_W.value)

    if problem is not None:
        memory.fresh_cycles = 0
        new_mode, reason = Mode.SAFE, problem
    else:
        memory.fresh_cycles += 1
        assert soc is not None
        dwell_s = (now - memory.since).total_seconds()
        if previous == Mode.SAFE and memory.fresh_cycles < FRESH_CYCLES_TO_RECOVER:
            new_mode, reason = Mode.SAFE, f"{memory.reason}; data fresh again, confirming"
        elif soc <= battery.reserve_pct:
            new_mode = Mode.SHED
            reason = f"SoC {soc:.1f} % at or below the reserve {battery.reserve_pct:g} %: only critical load"
        elif previous != Mode.SHED and (eta := _minutes_to_reserve(soc, battery_w, config)) is not None:
            new_mode = Mode.SHED
            reason = (f"SoC {soc:.1f} % would reach the reserve {battery.reserve_pct:g} % in {eta:.0f} min "
                      "at the present discharge: only critical load")
        elif previous == Mode.SHED and (
            soc < battery.reserve_pct + ctrl.reserve_margin_pct or dwell_s < ctrl.min_dwell_s
        ):
            new_mode = Mode.SHED
            reason = (f"SoC {soc:.1f} %: resuming above {battery.reserve_pct + ctrl.reserve_margin_pct:g} % "
                      f"after at least {ctrl.min_dwell_s:.0f} s in shed mode")
        else:
            new_mode = Mode.NORMAL
            reason = (f"SoC {soc:.1f} % above reserve {battery.reserve_pct:g} %, data fresh"
                      if previous != Mode.NORMAL else memory.reason)

    critical_before = memory.critical_allowed
    if soc is not None:
        if soc <= battery.soc_min_pct + CRITICAL_STOP_MARGIN_PCT:
            memory.critical_allowed = False
        elif soc >= battery.soc_min_pct + CRITICAL_RESUME_MARGIN_PCT:
            memory.critical_allowed = True

    changed = new_mode != previous
    if changed:
        memory.since = now
    memory.mode = new_mode
    if changed or new_mode != Mode.NORMAL or previous != Mode.NORMAL:
        memory.reason = reason
    return SafetyVerdict(
        mode=new_mode, reason=memory.reason, changed=changed, previous=previous,
        critical_allowed=memory.critical_allowed, critical_changed=critical_before != memory.critical_allowed,
        soc_pct=soc, alarms=tuple(f"{a.source}:{a.code}" for a in state.alarms if a.severity == Severity.ALARM),
    )
