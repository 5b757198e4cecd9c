"""Site configuration: one TOML file, validated by pydantic, overridable by environment.

Every key a user can write is declared here, with its unit in its name and its rule in its
validator, so a typo or an impossible value stops the box at start with a one-line message
instead of misbehaving at night. Environment variables ``SUNBOX_<SECTION>__<KEY>`` override the
file: this is how balena device variables reach the box (see ``env_overrides``).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "SUNBOX_"
DEFAULT_CONFIG_NAME = "sunbox.toml"
DEMO_CONFIG_RESOURCE = "demo_config.toml"


class ConfigError(Exception):
    """A configuration mistake, with a one-line message naming field, value and rule."""


def local_windows(value: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Windows of local wall time ("18:00", "07:00"); the end may be past midnight."""
    for start, end in value:
        for text in (start, end):
            try:
                time.fromisoformat(text)
            except ValueError as exc:
                raise ValueError(f"'{text}' is not a local time HH:MM") from exc
    return value


class _Section(BaseModel):
    """Base of every config section: unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SiteConfig(_Section):
    name: str = Field(default="sunbox-demo", min_length=1, max_length=64)
    lat: float = Field(default=-0.0917, ge=-90, le=90)
    lon: float = Field(default=34.768, ge=-180, le=180)
    altitude_m: float = Field(default=1131.0, ge=-450, le=9000)
    tz: str = "Africa/Nairobi"

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (it names the box)")
        return value

    @field_validator("tz")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as 'Africa/Nairobi'") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


TrackerKind = Literal["fixed", "single_axis", "dual_axis"]


class ArrayConfig(_Section):
    dc_kw: float = Field(default=3.0, gt=0, le=1000)
    tracker: TrackerKind = "dual_axis"
    tilt_deg: float = Field(default=10.0, ge=0, le=90)
    azimuth_deg: float = Field(default=180.0, ge=0, lt=360)
    axis_azimuth_deg: float = Field(default=0.0, ge=0, lt=360)
    axis_tilt_deg: float = Field(default=0.0, ge=0, le=45)
    max_angle_deg: float = Field(default=60.0, gt=0, le=90)
    gcr: float = Field(default=0.35, gt=0, lt=1)
    backtrack: bool = True
    dual_axis_max_tilt_deg: float = Field(default=80.0, gt=0, le=90)
    losses_pct: float = Field(default=14.0, ge=0, lt=100)
    inverter_ac_kw: float | None = Field(default=None, gt=0, le=1000)
    inverter_efficiency_pct: float = Field(default=96.0, gt=50, le=100)
    temp_coeff_pct_per_c: float = Field(default=-0.37, ge=-1.0, le=0.0)
    albedo: float = Field(default=0.2, ge=0, le=1)

    @property
    def ac_limit_w(self) -> float:
        """Inverter/MPPT output limit; without a rating, DC/AC ratio 1.0 (a tracker box)."""
        return (self.inverter_ac_kw if self.inverter_ac_kw is not None else self.dc_kw) * 1000.0


class BatteryConfig(_Section):
    capacity_wh: float = Field(default=10000.0, gt=0, le=10_000_000)
    soc_min_pct: float = Field(default=10.0, ge=0, le=100)
    soc_max_pct: float = Field(default=100.0, ge=0, le=100)
    reserve_pct: float = Field(default=30.0, ge=0, le=100)
    charge_max_w: float = Field(default=3000.0, gt=0)
    discharge_max_w: float = Field(default=3000.0, gt=0)
    efficiency: float = Field(default=0.95, gt=0.5, le=1.0)
    chemistry: Literal["lifepo4", "nmc", "lead_acid"] = "lifepo4"
    initial_soc_pct: float = Field(default=60.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered_levels(self) -> BatteryConfig:
        if self.soc_max_pct <= self.soc_min_pct:
            raise ValueError(
                f"soc_max_pct ({self.soc_max_pct:g}) must be above soc_min_pct ({self.soc_min_pct:g})"
            )
        if self.reserve_pct < self.soc_min_pct:
            raise ValueError(
                f"reserve_pct ({self.reserve_pct:g}) must be at or above soc_min_pct "
                f"({self.soc_min_pct:g})"
            )
        if self.reserve_pct >= self.soc_max_pct:
            raise ValueError(
                f"reserve_pct ({self.reserve_pct:g}) must be below soc_max_pct ({self.soc_max_pct:g})"
            )
        return self

    @property
    def reserve_wh(self) -> float:
        return self.capacity_wh * self.reserve_pct / 100.0

    @property
    def one_way_efficiency(self) -> float:
        """Round-trip efficiency split evenly between charge and discharge."""
        return float(self.efficiency**0.5)


class ComputeConfig(_Section):
    idle_w: float = Field(default=40.0, ge=0)
    max_w: float = Field(default=300.0, gt=0)
    # Wall power at 0, 10, ..., 100 % load as fractions of (max_w - idle_w) above idle. The
    # default is the median shape of the SPECpower_ssj2008 small servers in field_data/compute
    # (appliance.workloads.power_model.curve_from_specpower recomputes it).
    power_curve: list[float] = Field(
        default=[0.0, 0.11, 0.2, 0.31, 0.41, 0.5, 0.59, 0.69, 0.81, 0.9, 1.0],
        min_length=2,
    )
    cpu_count: int | None = Field(default=None, ge=1, le=4096)
    cgroup_root: str = "/sys/fs/cgroup"
    jobs_dir: str = "jobs"
    # Graceful stop: SIGTERM, then SIGKILL after this long.
    stop_grace_s: float = Field(default=10.0, ge=0, le=3600)
    # Power cap without a delegated cgroup v2: SIGSTOP/SIGCONT duty cycling at this period.
    duty_period_s: float = Field(default=1.0, ge=0.05, le=60)
    # Job power when a submission gives only its energy (None: the node's whole range above idle).
    default_job_power_w: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _curve_is_monotone(self) -> ComputeConfig:
        if self.max_w < self.idle_w:
            raise ValueError(f"max_w ({self.max_w:g}) must be at or above idle_w ({self.idle_w:g})")
        curve = self.power_curve
        if curve[0] != 0.0 or abs(curve[-1] - 1.0) > 1e-9:
            raise ValueError("power_curve must start at 0.0 and end at 1.0")
        if any(b < a for a, b in zip(curve, curve[1:], strict=False)):
            raise ValueError("power_curve must not decrease")
        return self


class LoadsConfig(_Section):
    base_w: float = Field(default=25.0, ge=0)


DeviceRole = Literal["inverter", "battery", "meter", "mppt", "room_sensor", "damper"]
DeviceMap = Literal["sunspec", "victron", "generic"]


class WriteLimit(_Section):
    """Allowed range of one writable point, in its engineering unit (after scaling)."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> WriteLimit:
        if self.max < self.min:
            raise ValueError(f"max ({self.max:g}) must be at or above min ({self.min:g})")
        return self


class RegisterPoint(_Section):
    """A single register for the `generic` map (room sensors, dampers, relays)."""

    address: int = Field(ge=0, le=65535)
    kind: Literal["holding", "input", "coil"] = "holding"
    type: Literal["int16", "uint16", "int32", "uint32", "float32"] = "int16"
    scale: float = Field(default=1.0, gt=0)
    unit: str = ""
    writable: bool = False


class DeviceConfig(_Section):
    name: str = Field(min_length=1, max_length=64)
    role: DeviceRole
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = Field(default=9600, ge=300, le=1_000_000)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    unit_id: int = Field(default=1, ge=0, le=255)
    map: DeviceMap = "sunspec"
    timeout_s: float = Field(default=1.0, gt=0, le=1.0)
    poll_interval_s: float = Field(default=2.0, gt=0, le=3600)
    stale_after_s: float = Field(default=15.0, gt=0, le=86400)
    # Measurements that repeat bit-for-bit this long are treated as frozen (a hung gateway
    # still answering from cache); 0 disables the check.
    frozen_after_s: float = Field(default=120.0, ge=0, le=86400)
    # SunSpec base address if known (skips discovery); Victron: unit of the VE.Bus inverter.
    sunspec_base: int | None = Field(default=None, ge=0, le=65535)
    vebus_unit_id: int = Field(default=227, ge=0, le=255)
    # Sign of the device's battery power: +1 when it reports charging as positive (Victron and
    # our SunSpec simulator), -1 when the vendor documents discharge as positive.
    battery_power_sign: Literal[1, -1] = 1
    # Writable points and their ranges, by point key ("124.MinRsvPct", "802.SoCRsvMin",
    # "victron.2901", "damper"); a point without a limit here is never written.
    limits: dict[str, WriteLimit] = Field(default_factory=dict)
    # Registers of a `generic` device, by channel name (e.g. room_temp_c, damper_pct).
    points: dict[str, RegisterPoint] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _transport_fields(self) -> DeviceConfig:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport 'rtu' needs serial_port (e.g. /dev/ttyUSB0)")
        if self.map == "generic" and not self.points:
            raise ValueError("map 'generic' needs [devices.points] describing its registers")
        return self


class ControlConfig(_Section):
    period_s: float = Field(default=2.0, ge=1.0, le=5.0)
    stale_after_s: float = Field(default=15.0, gt=0, le=3600)
    reserve_margin_pct: float = Field(default=5.0, ge=0.5, le=50)
    min_dwell_s: float = Field(default=120.0, ge=0, le=86400)
    telemetry_interval_s: float = Field(default=10.0, ge=1.0, le=3600)
    write_reserve_to_bms: bool = True


class StoreConfig(_Section):
    raw_keep_h: float = Field(default=48.0, gt=0)
    minute_keep_days: float = Field(default=31.0, gt=0)
    quarter_keep_days: float = Field(default=800.0, gt=0)
    events_keep_days: float = Field(default=400.0, gt=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)


class ForecastConfig(_Section):
    step_min: int = Field(default=15, ge=1, le=60)
    horizon_h: int = Field(default=48, ge=1, le=240)
    history_days: int = Field(default=60, ge=1, le=3650)
    nowcast_h: float = Field(default=4.0, ge=0, le=24)
    weather_file: str | None = None
    # Physics of the PV chain (appliance/solar/pvsystem.py): sky-diffuse transposition, cell
    # temperature, DC model (PVWatts, or a module from pvlib's CEC table by its exact name),
    # GHI -> DNI/DHI decomposition, and cloud cover -> GHI for feeds that give only clouds.
    transposition: Literal["perez", "haydavies"] = "perez"
    cell_temp_model: Literal["faiman", "sapm"] = "faiman"
    sapm_mount: Literal[
        "open_rack_glass_glass", "close_mount_glass_glass", "open_rack_glass_polymer",
        "insulated_back_glass_polymer",
    ] = "open_rack_glass_glass"
    dc_model: Literal["pvwatts", "cec"] = "pvwatts"
    cec_module: str | None = Field(default=None, min_length=1, max_length=200)
    decomposition: Literal["erbs", "dirint"] = "erbs"
    cloud_model: Literal["kasten_czeplak", "larson"] = "kasten_czeplak"
    # Learning: the clear-sky index assumed before the box has any history of its own, and how
    # fast old experience fades (sky regimes change with the seasons).
    prior_clear_sky_index: float = Field(default=0.7, gt=0, le=1.2)
    learn_half_life_days: float = Field(default=60.0, ge=3, le=3650)
    # Check how often the measured energy falls under the planner's P10 and P50 of the running
    # energy, and plan at the levels that make those claims true here (energy/running_calibration.py).
    # Off by default: measured over replay years it adds on-time work where the sun is steady
    # (Miami +5 %, promise misses 0.32 -> 0.42 %) but lets more promises miss where it is not
    # (Lyngby +3 %, misses 0.79 -> 1.51 %). Turn it on for sites with a steady sun.
    running_calibration: bool = False

    @model_validator(mode="after")
    def _cec_needs_module(self) -> ForecastConfig:
        if self.dc_model == "cec" and not self.cec_module:
            raise ValueError("dc_model 'cec' needs cec_module (a module name from pvlib's CEC table)")
        return self


class PlannerConfig(_Section):
    horizon_h: int = Field(default=48, ge=1, le=168)
    slot_min: int = Field(default=15, ge=1, le=60)
    replan_min: float = Field(default=15.0, gt=0, le=1440)
    admission: Literal["conservative", "expected", "optimistic"] = "conservative"
    solver_time_limit_s: float = Field(default=2.0, gt=0, le=60)
    curtailment_penalty_per_kwh: float = Field(default=0.05, ge=0)
    deviation_replan_pct: float = Field(default=25.0, gt=0)
    min_on_s: float = Field(default=300.0, ge=0)
    min_off_s: float = Field(default=300.0, ge=0)
    # Objective weights, all in value per kWh (their ratios matter, not their unit).
    sponge_value_per_kwh: float = Field(default=0.1, ge=0)
    stored_value_per_kwh: float = Field(default=0.2, ge=0)  # battery energy left at horizon end
    # Energy held in the battery now beats energy promised later (forecasts err): fill early.
    soc_hold_value_per_kwh_h: float = Field(default=0.00002, ge=0)
    battery_cycle_cost_per_kwh: float = Field(default=0.02, ge=0)  # counted on discharge
    miss_penalty_per_kwh: float = Field(default=100.0, gt=0)
    shed_penalty_per_kwh: float = Field(default=1000.0, gt=0)
    # Promised work (admitted, or the job under admission) may lower the essentials' SoC where
    # they alone would go under the reserve (down to what the critical services need) at this
    # cost: above sponge and heat value and below a missed job's (miss_penalty_per_kwh / 100
    # for the job under admission), so only work with a deadline pays it (see lp.py).
    deepen_penalty_per_kwh: float = Field(default=0.6, gt=0)
    # How far, in that P10 scenario, promised work may take the essentials' SoC down the band
    # between the reserve and the empty battery (+ margin): 0 not at all, 1 all the way. Half:
    # a day worse than P10 still finds the file share half its band.
    deepen_share: float = Field(default=0.5, ge=0, le=1)
    # 15-min slots for the first fine_h hours, hourly after (fewer variables for fast replay).
    fine_h: float = Field(default=48.0, gt=0, le=168)
    # From coarse_h hours on, two-hourly slots (None: hourly to the end).
    coarse_h: float | None = Field(default=None, gt=0, le=168)
    # Re-plans for a SoC deviation come at most this often (job changes and replan_min always).
    lp_interval_min: float = Field(default=15.0, gt=0, le=1440)
    resume_margin_pct: float = Field(default=5.0, ge=0, le=50)  # hysteresis above the reserve
    # Plans keep jobs this far above the reserve, so a slot's surprise does not reach it.
    reserve_margin_pct: float = Field(default=2.0, ge=0, le=50)
    cap_step_w: float = Field(default=10.0, ge=0)  # smaller cap changes are not worth a command
    admission_tolerance_wh: float = Field(default=1.0, ge=0)
    # Jobs that fail the admission quantile but fit on expected sun, in what accepted work
    # leaves, run "best effort": not promised, after every promised job, on sun or battery the
    # promises do not need (before sponges); false: they are rejected.
    best_effort: bool = True
    # Best-effort jobs a later plan at the admission quantile keeps (with every promise) are then
    # promised: no new job may take their sun (see energy/admission.py: promotions).
    promote_best_effort: bool = True
    # Under admission, best-effort work that has started counts as promised: a new job is
    # admitted only if it fits along with that work, which a later arrival would otherwise leave
    # half done (see energy/problem.py).
    finish_started_best_effort: bool = True
    # How the planner turns per-slot quantiles into "P10 of the energy before a deadline": the
    # weather of one day vs the next (lag-1 correlation of the daily clear-sky index) and the
    # share of a slot's uncertainty that is the whole day's (see appliance/energy/uncertainty.py).
    day_correlation: float = Field(default=0.4, ge=0, lt=1)
    day_share: float = Field(default=0.8, ge=0, le=1)


class HeatDeviceRef(_Section):
    device: str
    point: str


class HeatConfig(_Section):
    enabled: bool = False
    setpoint_c: float = Field(default=20.0, ge=5, le=35)
    band_c: float = Field(default=1.0, gt=0, le=10)
    wanted: list[tuple[str, str]] = Field(default_factory=lambda: [("18:00", "07:00")])
    room_r_k_per_w: float = Field(default=0.01, gt=0, le=10)
    room_c_j_per_k: float = Field(default=8.0e6, gt=0, le=1e10)
    # 2R2C extension (fitted by `sunbox heat fit`); None means the 1R1C model. With 2R2C,
    # room_r_k_per_w stays the total resistance indoor -> outdoor, room_c_j_per_k is the air
    # node, room_r2_k_per_w the air <-> envelope part of it and room_c2_j_per_k the envelope.
    room_r2_k_per_w: float | None = Field(default=None, gt=0)
    room_c2_j_per_k: float | None = Field(default=None, gt=0, le=1e10)
    # Effective solar aperture: W of heat into the room per W/m2 of global irradiance.
    room_solar_aperture_m2: float = Field(default=0.0, ge=0, le=1000)
    heat_value_per_kwh: float = Field(default=0.5, ge=0)
    # Shortest time the router holds room/vent before hysteresis may flip it again.
    min_dwell_s: float = Field(default=300.0, ge=0, le=86400)
    damper: str | None = None  # device name (role damper) driving the damper/fan/valve
    damper_modulating: bool = False
    room_sensor: str | None = None  # device name (role room_sensor)
    outdoor_source: Literal["sensor", "weather", "none"] = "weather"
    sensor_stale_after_s: float = Field(default=120.0, gt=0)

    @field_validator("wanted")
    @classmethod
    def _local_times(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return local_windows(value)

    @model_validator(mode="after")
    def _two_node_pair(self) -> HeatConfig:
        r2, c2 = self.room_r2_k_per_w, self.room_c2_j_per_k
        if (r2 is None) != (c2 is None):
            raise ValueError("room_r2_k_per_w and room_c2_j_per_k go together (2R2C) or not at all")
        if r2 is not None and r2 >= self.room_r_k_per_w:
            raise ValueError(
                f"room_r2_k_per_w ({r2:g}) must be below room_r_k_per_w ({self.room_r_k_per_w:g}), "
                "the total resistance it is part of"
            )
        return self


LinkKind = Literal["cellular", "satellite_broadband", "satellite_sbd"]


PriorityName = Literal["alarm", "job_result", "daily_summary", "telemetry", "log"]

# Iridium 9603 short-burst data: 340 bytes mobile-originated, 270 mobile-terminated.
SBD_MO_MAX_BYTES = 340
SBD_MT_MAX_BYTES = 270


class LinkConfig(_Section):
    """One way out of the box (cellular, satellite broadband, satellite short-burst), and its price."""

    name: str = Field(min_length=1, max_length=64)
    kind: LinkKind
    transport: Literal["http", "mqtt", "sbd"] = "http"
    url: str | None = None  # http(s)://hub/..., mqtt://host:port
    serial_port: str | None = None  # SBD modem
    baudrate: int = Field(default=19200, ge=300)
    daily_budget_bytes: int = Field(default=5_000_000, ge=0)
    cost_per_mb: float = Field(default=0.0, ge=0)
    modem_power_w: float = Field(default=5.0, ge=0)
    windows: list[tuple[str, str]] = Field(default_factory=list)  # local; empty = always
    max_message_bytes: int = Field(default=1_000_000, ge=16)
    max_inbound_bytes: int | None = Field(default=None, ge=16)
    enabled: bool = True
    # Least important class of traffic this link carries (an SBD link usually stops at
    # daily_summary: telemetry over Iridium costs more than it is worth).
    max_priority: PriorityName = "log"
    # Bytes the carrier counts beyond our own framing per request (TCP/IP, TLS records).
    overhead_bytes_per_request: int = Field(default=200, ge=0, le=100_000)
    # Share of the daily budget only alarms may spend, so an alarm goes out late in a busy day.
    alarm_reserve_pct: float = Field(default=5.0, ge=0, le=100)
    # Time the modem draws power before it carries a byte (Starlink boots in about a minute).
    modem_warmup_s: float = Field(default=0.0, ge=0, le=3600)
    batch_max_items: int = Field(default=200, ge=1, le=10_000)
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    topic_prefix: str = Field(default="sunbox", min_length=1, max_length=64)  # MQTT

    @field_validator("windows")
    @classmethod
    def _window_times(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return local_windows(value)

    @model_validator(mode="after")
    def _transport_fields(self) -> LinkConfig:
        if self.transport in ("http", "mqtt") and not self.url:
            raise ValueError(f"transport '{self.transport}' needs url (http://hub:8090 or mqtt://host:1883)")
        if self.transport == "http" and self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("transport 'http' needs an http:// or https:// url")
        if self.transport == "mqtt" and self.url and not self.url.startswith(("mqtt://", "mqtts://")):
            raise ValueError("transport 'mqtt' needs an mqtt:// or mqtts:// url")
        if self.transport == "sbd":
            if not self.serial_port:
                raise ValueError("transport 'sbd' needs serial_port (e.g. /dev/ttyUSB0)")
            if "max_message_bytes" not in self.model_fields_set:
                object.__setattr__(self, "max_message_bytes", SBD_MO_MAX_BYTES)
            if "overhead_bytes_per_request" not in self.model_fields_set:
                object.__setattr__(self, "overhead_bytes_per_request", 0)  # billed per message byte
            if self.max_inbound_bytes is None:
                object.__setattr__(self, "max_inbound_bytes", SBD_MT_MAX_BYTES)
            if self.max_message_bytes > SBD_MO_MAX_BYTES:
                raise ValueError(
                    f"max_message_bytes ({self.max_message_bytes}) exceeds the SBD limit of "
                    f"{SBD_MO_MAX_BYTES} bytes per mobile-originated message"
                )
            if self.max_inbound_bytes is not None and self.max_inbound_bytes > SBD_MT_MAX_BYTES:
                raise ValueError(
                    f"max_inbound_bytes ({self.max_inbound_bytes}) exceeds the SBD limit of "
                    f"{SBD_MT_MAX_BYTES} bytes per mobile-terminated message"
                )
        return self


class SyncConfig(_Section):
    hub_url: str | None = None  # without [[links]]: one cellular HTTP link named "hub"
    box_token: str | None = None
    box_id: str | None = None  # how the hub knows this box; default site.name
    interval_s: float = Field(default=60.0, gt=0)
    # One telemetry block per period: 15 min costs ~0.9 B/point, 5 min ~1.7 (block headers).
    telemetry_interval_s: float = Field(default=900.0, gt=0)
    telemetry_step_s: float = Field(default=60.0, ge=1, le=3600)  # sample step inside a block
    # Quantisation step per channel (engineering unit); channels not named get a step from
    # their unit suffix (_w 1, _pct 0.1, _c 0.1, _v 0.01, ...). lossless: exact float bits.
    telemetry_resolution: dict[str, float] = Field(default_factory=dict)
    telemetry_lossless: bool = False
    log_min_severity: Literal["info", "warning", "alarm"] = "warning"
    inbound_interval_s: float = Field(default=900.0, gt=0)  # how often to ask the hub for news
    # When the budget is short, telemetry is held back to share requests, at most this long.
    telemetry_max_delay_s: float = Field(default=3600.0, gt=0, le=86400)
    backoff_min_s: float = Field(default=30.0, gt=0, le=86400)
    backoff_max_s: float = Field(default=1800.0, gt=0, le=86400)
    delivered_keep_days: float = Field(default=7.0, gt=0)

    @field_validator("telemetry_resolution")
    @classmethod
    def _positive_steps(cls, value: dict[str, float]) -> dict[str, float]:
        for name, step in value.items():
            if not step > 0:
                raise ValueError(f"resolution of '{name}' must be positive")
        return value

    @model_validator(mode="after")
    def _ordered_backoff(self) -> SyncConfig:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s:g}) must be at or above backoff_min_s "
                f"({self.backoff_min_s:g})"
            )
        return self


ApiRole = Literal["viewer", "operator", "technician", "admin"]


class ApiConfig(_Section):
    """The local dashboard and its API (appliance/api): where it listens and how it guards."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    session_ttl_h: float = Field(default=12.0, gt=0, le=24 * 90)
    language: str = Field(default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$")
    # Login rate limit: this many failures per window, per client address and per user name.
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_window_s: float = Field(default=300.0, gt=0, le=86400)
    min_password_len: int = Field(default=10, ge=8, le=128)
    # A job with a shell command runs code on the box: by default only technicians may send one.
    job_cmd_min_role: ApiRole = "technician"
    metrics_public: bool = True  # /metrics without login (Prometheus on the LAN)
    cookie_secure: bool = False  # set when the box is reached through an HTTPS proxy
    sse_max_clients: int = Field(default=64, ge=1, le=10_000)
    sse_min_interval_s: float = Field(default=1.0, ge=0.1, le=60)  # state pushes at most this often
    # Requests started per turn of the daemon's event loop (others queue, first in first out):
    # bounds the API's share of each turn so the control cycle keeps its period under load.
    requests_per_loop_turn: int = Field(default=8, ge=1, le=1000)


class FleetConfig(_Section):
    """balena fleet behaviour: when the update lock lets releases land, how health is reported."""

    # The update lock is held below this SoC; released again at SoC >= min + hysteresis.
    update_min_soc_pct: float = Field(default=50.0, ge=0, le=100)
    update_soc_hysteresis_pct: float = Field(default=5.0, ge=0, le=50)
    # Updates land in the sun: PV must deliver at least this much (0 = do not ask for sun).
    update_min_pv_w: float = Field(default=100.0, ge=0)
    # Conditions must allow an update this long before the lock is released (no flapping).
    release_after_s: float = Field(default=300.0, ge=0, le=86400)
    # After the supervisor overrides our lock (forced update), do not retake it for this long.
    forced_grace_s: float = Field(default=1800.0, ge=0, le=86400)
    lock_path: str = "/tmp/balena/updates.lock"
    # Health tags: at most every health_interval_s when something changed, at least every
    # health_heartbeat_s (metered links pay for every patch).
    health_interval_s: float = Field(default=900.0, gt=0)
    health_heartbeat_s: float = Field(default=21600.0, gt=0)
    supervisor_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> FleetConfig:
        if self.update_min_soc_pct + self.update_soc_hysteresis_pct > 100:
            raise ValueError("update_min_soc_pct + update_soc_hysteresis_pct must not exceed 100")
        if self.health_heartbeat_s < self.health_interval_s:
            raise ValueError(
                f"health_heartbeat_s ({self.health_heartbeat_s:g}) must be at or above "
                f"health_interval_s ({self.health_interval_s:g})"
            )
        return self


class SimConfig(_Section):
    """The simulated world of `sunbox demo` / `sunbox sim`: what it serves and how it behaves.

    Physics comes from the other sections (site, array, battery, loads, heat); these keys only
    shape the simulator: register layout, the inverter's own losses, the damper fan, noise.
    """

    sunspec_base: Literal[0, 40000, 50000] = 40000
    # Registers after the SunSpec end marker that still answer (as 0), like devices with a
    # fixed register window; 0 = strict (reads past the map get ILLEGAL_ADDRESS).
    sunspec_tail_registers: int = Field(default=125, ge=0, le=1000)
    # SunSpec model ids served per device name; default by role (inverter 1,101,160,124;
    # battery 1,802; mppt 1,160; meter 1,101).
    models: dict[str, list[int]] = Field(default_factory=dict)
    service_unit_id: int = Field(default=247, ge=1, le=247)
    inverter_standby_w: float = Field(default=10.0, ge=0, le=1000)
    inverter_loss_pct: float = Field(default=3.0, ge=0, le=30)
    ac_voltage_v: float = Field(default=230.0, gt=0, le=480)
    ac_frequency_hz: Literal[50, 60] = 50
    battery_cells_series: int = Field(default=16, ge=1, le=400)
    battery_resistance_ohm: float = Field(default=0.025, ge=0, le=10)
    charge_taper_start_pct: float = Field(default=95.0, ge=50, le=100)
    bms_release_pct: float = Field(default=2.0, ge=0, le=20)  # above soc_min before loads return
    fan_w: float = Field(default=8.0, ge=0, le=1000)  # damper fan at 100 %
    initial_room_temp_c: float | None = Field(default=None, ge=-30, le=45)
    initial_damper_pct: float = Field(default=0.0, ge=0, le=100)
    pv_resolution_s: float = Field(default=60.0, ge=1, le=3600)
    pv_chunk_h: float = Field(default=168.0, gt=0, le=24 * 400)
    tick_s: float = Field(default=0.5, gt=0, le=60)  # wall seconds between background steps
    max_step_s: float = Field(default=300.0, gt=0, le=3600)
    measurement_noise: bool = True  # real meters jitter; a bit-identical value means frozen
    seed: int = 1

    @field_validator("models")
    @classmethod
    def _models_known(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        for name, ids in value.items():
            if not ids or ids[0] != 1:
                raise ValueError(f"models of '{name}' must start with 1 (the common model)")
            if len(set(ids)) != len(ids):
                raise ValueError(f"models of '{name}' list a model twice")
        return value


class SelftestConfig(_Section):
    """Thresholds of the self-test and commissioning report (appliance/selftest)."""

    disk_warn_free_mb: float = Field(default=1024.0, ge=0)
    disk_fail_free_mb: float = Field(default=200.0, ge=0)
    # Measured PV may stray this far outside the forecast's P10..P90 of the last hour.
    forecast_tolerance_w: float = Field(default=100.0, ge=0)
    sun_check_days: float = Field(default=7.0, gt=0, le=60)
    # The daemon's published state older than this means it is not running.
    daemon_stale_after_s: float = Field(default=60.0, gt=0, le=86400)
    # A box clock before this date has lost its time (RTC battery, no network time yet).
    clock_floor: date = date(2025, 1, 1)

    @model_validator(mode="after")
    def _ordered(self) -> SelftestConfig:
        if self.disk_fail_free_mb > self.disk_warn_free_mb:
            raise ValueError(
                f"disk_fail_free_mb ({self.disk_fail_free_mb:g}) must be at or below "
                f"disk_warn_free_mb ({self.disk_warn_free_mb:g})"
            )
        return self


class TuiConfig(_Section):
    """The technician's terminal UI (ui/tui): where it finds the API and how often it looks."""

    url: str | None = Field(default=None, pattern=r"^https?://")  # default http://<api host>:<port>
    user: str = Field(default="technician", min_length=1, max_length=64)
    refresh_s: float = Field(default=2.0, ge=0.5, le=60)
    api_timeout_s: float = Field(default=5.0, gt=0, le=60)
    scan_timeout_s: float = Field(default=0.3, gt=0, le=1.0)


class SunboxConfig(_Section):
    """The whole site: what the box is, where it stands, what it drives."""

    site: SiteConfig = Field(default_factory=SiteConfig)
    array: ArrayConfig = Field(default_factory=ArrayConfig)
    battery: BatteryConfig = Field(default_factory=BatteryConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    loads: LoadsConfig = Field(default_factory=LoadsConfig)
    devices: list[DeviceConfig] = Field(default_factory=list)
    control: ControlConfig = Field(default_factory=ControlConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    heat: HeatConfig = Field(default_factory=HeatConfig)
    links: list[LinkConfig] = Field(default_factory=list)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    sim: SimConfig = Field(default_factory=SimConfig)
    selftest: SelftestConfig = Field(default_factory=SelftestConfig)
    tui: TuiConfig = Field(default_factory=TuiConfig)

    @model_validator(mode="after")
    def _cross_section_rules(self) -> SunboxConfig:
        names = [d.name for d in self.devices]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"device names must be unique; '{dupes[0]}' appears twice")
        link_names = [link.name for link in self.links]
        if len(set(link_names)) != len(link_names):
            raise ValueError("link names must be unique")
        for ref_name, ref in (("heat.damper", self.heat.damper), ("heat.room_sensor", self.heat.room_sensor)):
            if ref is not None and ref not in names:
                raise ValueError(f"{ref_name} names device '{ref}', which is not in [[devices]]")
        return self

    def device(self, name: str) -> DeviceConfig:
        for dev in self.devices:
            if dev.name == name:
                return dev
        raise KeyError(name)

    def devices_with_role(self, role: str) -> list[DeviceConfig]:
        return [d for d in self.devices if d.role == role]


# --------------------------------------------------------------------------- loading


def _parse_env_value(raw: str) -> Any:
    """Parse an environment value as a TOML literal (number, bool, array); else a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Merge ``SUNBOX_<SECTION>__<KEY>`` variables into raw config data.

    Lists of tables are addressed by index or by their ``name``:
    ``SUNBOX_DEVICES__INVERTER__PORT=1502`` or ``SUNBOX_DEVICES__0__PORT=1502``.
    Keys are case-insensitive (balena variables are usually upper case).
    """
    merged: dict[str, Any] = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                              for k, v in data.items()}
    for env_key in sorted(environ):
        if not env_key.startswith(ENV_PREFIX) or "__" not in env_key:
            continue
        path = [p.lower() for p in env_key[len(ENV_PREFIX):].split("__")]
        if any(not p for p in path):
            raise ConfigError(f"config error: {env_key}: empty part in variable name")
        _set_path(merged, path, _parse_env_value(environ[env_key]), env_key)
    return merged


def _set_path(root: dict[str, Any], path: list[str], value: Any, origin: str) -> None:
    node: Any = root
    for i, part in enumerate(path[:-1]):
        if isinstance(node, dict):
            child = node.get(part)
            if child is None:
                # A list of tables absent from the file is created by index (balena variables).
                child = [] if path[i + 1].isdigit() else {}
                node[part] = child
            elif isinstance(child, list):
                child = [dict(x) if isinstance(x, dict) else x for x in child]
                node[part] = child
            elif isinstance(child, dict):
                child = dict(child)
                node[part] = child
            node = child
        elif isinstance(node, list):
            idx = _list_index(node, part, origin)
            node[idx] = dict(node[idx])
            node = node[idx]
        else:
            raise ConfigError(f"config error: {origin}: '{'.'.join(path[:i + 1])}' is not a section")
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list):
        node[_list_index(node, last, origin)] = value
    else:
        raise ConfigError(f"config error: {origin}: cannot set '{'.'.join(path)}'")


_MAX_ENV_LIST_INDEX = 255


def _list_index(items: list[Any], part: str, origin: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx < len(items):
            return idx
        if idx <= _MAX_ENV_LIST_INDEX:
            # A new entry: provisioning describes whole lists of tables by index (a gap left
            # unfilled fails validation with the missing field named).
            items.extend({} for _ in range(idx + 1 - len(items)))
            return idx
        raise ConfigError(
            f"config error: {origin}: index {idx} out of range (at most {_MAX_ENV_LIST_INDEX})"
        )
    for idx, item in enumerate(items):
        if isinstance(item, dict) and str(item.get("name", "")).lower() == part:
            return idx
    raise ConfigError(f"config error: {origin}: no entry named '{part}'")


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = SunboxConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        candidates = [ann, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields) if model is not None else []


def _describe(exc: ValidationError, data: Mapping[str, Any], source: str) -> str:
    """One line: where, which field, what value, which rule."""
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    field = ".".join(str(p) for p in loc) or "(root)"
    if err.get("type") == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), _known_keys(loc), n=1)
        tip = f" (did you mean '{hint[0]}'?)" if hint else ""
        return f"config error in {source}: {field}: unknown key{tip}"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if "input" in err and err.get("type") != "missing" and not isinstance(err["input"], dict):
        return f"config error in {source}: {field} = {err['input']!r}: {msg}"
    return f"config error in {source}: {field}: {msg}"


def default_config_path(cwd: Path | None = None) -> Path | None:
    """``./sunbox.toml`` when present; else None (the built-in demo config is used)."""
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    return candidate if candidate.is_file() else None


def demo_config_text() -> str:
    return resources.files("appliance").joinpath(DEMO_CONFIG_RESOURCE).read_text(encoding="utf-8")


def parse_config(data: Mapping[str, Any], source: str = "config") -> SunboxConfig:
    try:
        return SunboxConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, data, source)) from exc


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> SunboxConfig:
    """Load a config file (or the built-in demo) and apply environment overrides.

    Raises ConfigError with a one-line message on any mistake.
    """
    env = os.environ if environ is None else environ
    if path is None:
        path = default_config_path()
    if path is None:
        text, source = demo_config_text(), "built-in demo config"
    else:
        p = Path(path)
        source = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config error: {source}: no such file") from None
        except OSError as exc:
            raise ConfigError(f"config error: {source}: cannot read ({exc.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config error in {source}: not valid TOML ({exc})") from None
    merged = env_overrides(raw, env)
    has_env = any(k.startswith(ENV_PREFIX) and "__" in k for k in env)
    return parse_config(merged, source + (" + SUNBOX_* environment" if has_env else ""))


def dump_config(config: SunboxConfig) -> str:
    """TOML text of a config (used by the commissioning wizard and `heat fit --write`)."""
    import tomli_w

    data = config.model_dump(mode="json", exclude_none=True)
    return tomli_w.dumps(data)
