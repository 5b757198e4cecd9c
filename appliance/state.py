"""The types that flow between the parts of the box.

Plain dataclasses (pydantic lives at the edges: config, API). Every measured value travels as a
``Reading`` with the time the device gave it and its staleness limit, so no part ever acts on a
number without knowing how old it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Channel(StrEnum):
    """Names of the site's measured channels (the vocabulary of SiteState and telemetry)."""

    SOC_PCT = "soc_pct"
    BATTERY_POWER_W = "battery_power_w"  # positive = charging
    BATTERY_VOLTAGE_V = "battery_voltage_v"
    BATTERY_CURRENT_A = "battery_current_a"  # positive = charging
    BATTERY_TEMP_C = "battery_temp_c"
    BATTERY_SOH_PCT = "battery_soh_pct"
    BATTERY_RESERVE_PCT = "battery_reserve_pct"  # the reserve the BMS/inverter holds
    BATTERY_CHARGE_MAX_W = "battery_charge_max_w"
    BATTERY_DISCHARGE_MAX_W = "battery_discharge_max_w"
    PV_POWER_W = "pv_power_w"  # delivered by the MPPT(s)
    PV_VOLTAGE_V = "pv_voltage_v"
    PV_ENERGY_WH = "pv_energy_wh"  # lifetime counter
    AC_LOAD_POWER_W = "ac_load_power_w"  # everything the inverter feeds
    INVERTER_POWER_W = "inverter_power_w"
    INVERTER_TEMP_C = "inverter_temp_c"
    INVERTER_STATE = "inverter_state"
    AC_ENERGY_WH = "ac_energy_wh"
    COMPUTE_POWER_W = "compute_power_w"  # node power, from a meter or the node's model
    ROOM_TEMP_C = "room_temp_c"
    OUTDOOR_TEMP_C = "outdoor_temp_c"
    DAMPER_PCT = "damper_pct"  # 0 = all heat vented, 100 = all heat to the room


class Mode(StrEnum):
    """What the box is allowed to do right now; changes are events with reasons."""

    NORMAL = "normal"  # plan followed
    SHED = "shed"  # at/below reserve: only critical load and base load
    SAFE = "safe"  # data stale or an alarm: fail closed, only critical services


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"


@dataclass(frozen=True, slots=True)
class Reading:
    """One value with its age: ``at`` is when the device produced it (box clock, UTC)."""

    value: float | None
    at: datetime | None
    stale_after_s: float = 15.0
    source: str = ""
    raw: int | None = None

    def age_s(self, now: datetime) -> float | None:
        return None if self.at is None else (now - self.at).total_seconds()

    def is_fresh(self, now: datetime) -> bool:
        age = self.age_s(now)
        return self.value is not None and age is not None and age <= self.stale_after_s


@dataclass(frozen=True, slots=True)
class Alarm:
    """An alarm or warning raised by a device (BMS, inverter) or by the box itself."""

    source: str
    code: str
    message: str
    severity: Severity = Severity.ALARM


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """Communication health of one device, for diagnostics and safe-mode reasons."""

    name: str
    connected: bool
    last_ok: datetime | None
    consecutive_failures: int = 0
    backoff_s: float = 0.0
    last_error: str = ""
    requests: int = 0


@dataclass(frozen=True)
class SiteState:
    """One frozen snapshot of the site, taken at ``at``; the control cycle reads only this."""

    at: datetime
    readings: Mapping[str, Reading] = field(default_factory=dict)
    alarms: tuple[Alarm, ...] = ()
    devices: Mapping[str, DeviceHealth] = field(default_factory=dict)

    def reading(self, channel: str) -> Reading | None:
        return self.readings.get(channel)

    def value(self, channel: str) -> float | None:
        """Latest value, however old (for display)."""
        r = self.readings.get(channel)
        return None if r is None else r.value

    def fresh(self, channel: str) -> float | None:
        """Value only if within its staleness limit at ``self.at``; else None."""
        r = self.readings.get(channel)
        return r.value if r is not None and r.is_fresh(self.at) else None

    def stale(self, channels: list[str] | tuple[str, ...]) -> list[str]:
        return [c for c in channels if self.fresh(c) is None]

    def with_readings(self, extra: Mapping[str, Reading]) -> SiteState:
        merged = dict(self.readings)
        merged.update(extra)
        return replace(self, readings=merged)

    def values(self) -> dict[str, float]:
        return {k: r.value for k, r in self.readings.items() if r.value is not None}


# --------------------------------------------------------------------------- forecast


@dataclass(frozen=True)
class PowerForecast:
    """AC power of the array per slot with its uncertainty; times are slot starts (UTC)."""

    issued_at: datetime
    start: datetime
    step_s: int
    p10_w: FloatArray
    p50_w: FloatArray
    p90_w: FloatArray
    source: str = "clearsky"
    meta: Mapping[str, Any] = field(default_factory=dict)
    # quantile name -> level per slot at which the planner reads the running energy, where the
    # box's own record says the nominal level (P10 = 0.1) is not what this site's sun does
    running_levels: Mapping[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.p50_w.shape[0])

    def times(self) -> list[datetime]:
        return [self.start + timedelta(seconds=i * self.step_s) for i in range(len(self))]

    def quantile(self, name: Literal["p10", "p50", "p90"]) -> FloatArray:
        return {"p10": self.p10_w, "p50": self.p50_w, "p90": self.p90_w}[name]


class ForecastCalibration(Protocol):
    """What the forecaster feeds and asks when the box calibrates its running-energy quantiles
    (``energy/running_calibration.py``; handed in by whoever wires the box, so the forecast does
    not depend on the planner's scenario model)."""

    def issue(self, forecast: PowerForecast) -> bool: ...

    def levels_for(self, forecast: PowerForecast) -> dict[str, FloatArray]: ...

    def record(self, slot_start_s: FloatArray, mean_w: FloatArray, censored: np.ndarray | None,
               step_s: float) -> None: ...

    def to_dict(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


# --------------------------------------------------------------------------- jobs


class JobKind(StrEnum):
    CRITICAL = "critical"  # always-on service, shed last
    DEFERRABLE = "deferrable"  # energy + deadline
    SPONGE = "sponge"  # no deadline, soaks surplus sun


class JobState(StrEnum):
    PENDING = "pending"  # submitted, not yet decided
    ADMITTED = "admitted"  # planned, waiting for its slot
    RUNNING = "running"
    SUSPENDED = "suspended"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    MISSED = "missed"  # admitted but its deadline passed unfinished

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.REJECTED, JobState.MISSED)


@dataclass
class Job:
    """A unit of compute work and what became of it."""

    id: str
    name: str
    kind: JobKind
    power_w: float  # node power above idle while it runs at full speed
    energy_wh: float | None  # total energy it needs (None: critical, runs forever)
    deadline: datetime | None
    value: float = 1.0
    cmd: str | None = None  # None in replay (simulated work)
    submitted_at: datetime | None = None
    state: JobState = JobState.PENDING
    reason: str = ""
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    energy_used_wh: float = 0.0
    cpu_s: float = 0.0
    cap_w: float | None = None
    owner: str = ""
    # admitted without a promise: it failed the admission quantile but fits on expected sun, so
    # it runs after every promised job, on sun or battery the promises do not need
    best_effort: bool = False

    @property
    def remaining_wh(self) -> float | None:
        if self.energy_wh is None:
            return None
        return max(0.0, self.energy_wh - self.energy_used_wh)


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """Energy per slot over the horizon; the control loop follows it and corrects deviations."""

    created_at: datetime
    start: datetime
    step_s: int
    soc_pct: FloatArray  # planned SoC at the end of each slot (under the admission quantile)
    pv_w: FloatArray  # forecast PV used for planning
    charge_w: FloatArray
    discharge_w: FloatArray
    curtail_w: FloatArray
    job_power_w: Mapping[str, FloatArray]  # job id -> planned power per slot
    heat_to_room_w: FloatArray | None = None
    solver: str = "milp"
    status: str = "optimal"
    quantile: str = "p10"
    # jobs this plan expects to miss (it gave their energy to the essentials or to jobs nearer
    # to done): at its deadline the control loop forces such a promised job on only if the
    # essentials can spare what it still needs (shedding.ShedRules._spare)
    at_risk: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return int(self.soc_pct.shape[0])

    def slot_index(self, moment: datetime) -> int | None:
        idx = int((moment - self.start).total_seconds() // self.step_s)
        return idx if 0 <= idx < len(self) else None

    def times(self) -> list[datetime]:
        return [self.start + timedelta(seconds=i * self.step_s) for i in range(len(self))]


# --------------------------------------------------------------------------- decisions


class EventKind(StrEnum):
    MODE = "mode"
    WRITE = "write"
    ALARM = "alarm"
    DEVICE = "device"
    JOB = "job"
    PLAN = "plan"
    HEAT = "heat"
    SYNC = "sync"
    CONFIG = "config"
    FLEET = "fleet"
    SYSTEM = "system"
    AUTH = "auth"


@dataclass(frozen=True)
class Event:
    """Something the box did or saw, with its reason, for the UIs and the fleet."""

    at: datetime
    kind: EventKind
    message: str
    source: str = ""
    severity: Severity = Severity.INFO
    data: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None


JobAction = Literal["start", "resume", "suspend", "cap", "stop"]


@dataclass(frozen=True)
class JobCommand:
    """One decision of the control cycle about a job, with its reason."""

    job_id: str
    action: JobAction
    reason: str
    cap_w: float | None = None


@dataclass(frozen=True)
class WriteRequest:
    """A setpoint the box wants on a device; the bounded writer decides if it may."""

    device: str
    point: str
    value: float
    reason: str


@dataclass(frozen=True)
class WriteResult:
    device: str
    point: str
    requested: float
    written: bool
    read_back: float | None
    reason: str
