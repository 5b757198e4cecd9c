"""What the scan screen needs beyond ``appliance.devices.scan``: non-SunSpec units that answer
(room sensors, dampers, relays have no self-description), a role guess for what was found,
and the device entry a found unit becomes when the technician assigns it a role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.config import BatteryConfig, DeviceConfig
from appliance.devices.link import Endpoint, ModbusIOError, ModbusLink
from appliance.devices.scan import FoundDevice, scan

ROLES = ("inverter", "battery", "meter", "mppt", "room_sensor", "damper")
INVERTER_MODELS = {101, 102, 103, 111, 112, 113}
METER_MODELS = {201, 202, 203, 204, 211, 212, 213, 214}
BATTERY_MODELS = {802, 803, 804}
# The channel a generic device of a role reports, with its unit.
GENERIC_CHANNEL = {"room_sensor": ("room_temp_c", "C"), "damper": ("damper_pct", "%")}
# Where each map keeps the reserve the daemon writes (appliance/daemon.py RESERVE_POINTS).
RESERVE_POINT = {
    "sunspec-802": "802.SoCRsvMin",
    "sunspec-124": "124.MinRsvPct",
    "victron": "victron.2901",
}


@dataclass
class ScanHit:
    """One unit that answered, SunSpec / Victron (self-described) or generic (just registers)."""

    unit_id: int
    kind: str  # sunspec | victron | generic
    model_ids: list[int] = field(default_factory=list)
    identity: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    base_address: int | None = None
    vebus_unit_id: int | None = None
    words: list[int] = field(default_factory=list)  # generic: holding registers 0..n

    @classmethod
    def of(cls, found: FoundDevice) -> ScanHit:
        return cls(
            found.unit_id,
            found.kind,
            list(found.model_ids),
            dict(found.identity),
            dict(found.values),
            found.base_address,
            found.vebus_unit_id,
        )

    def guess_role(self) -> str:
        ids = set(self.model_ids)
        if self.kind == "victron" or ids & BATTERY_MODELS and not ids & INVERTER_MODELS:
            return "battery"
        if ids & INVERTER_MODELS:
            return "inverter"
        if ids & METER_MODELS:
            return "meter"
        if 160 in ids:
            return "mppt"
        return "room_sensor"

    def describe(self) -> str:
        who = " ".join(
            x for x in (self.identity.get("manufacturer"), self.identity.get("model")) if x
        )
        return who or ("answers, not SunSpec" if self.kind == "generic" else self.kind)

    def key_values(self) -> str:
        if self.kind == "generic":
            return "regs 0..: " + " ".join(str(w) for w in self.words)
        keys = ("soc_pct", "battery_power_w", "pv_power_w", "ac_load_power_w", "battery_voltage_v")
        short = {
            "soc_pct": "SoC",
            "battery_power_w": "bat",
            "pv_power_w": "PV",
            "ac_load_power_w": "load",
            "battery_voltage_v": "V",
        }
        return " ".join(f"{short[k]} {self.values[k]:g}" for k in keys if k in self.values)


async def probe_generic(
    endpoint: Endpoint, units: list[int], timeout_s: float, count: int = 2
) -> list[ScanHit]:
    """Units answering a plain read of holding registers 0..count-1."""
    link = ModbusLink(endpoint, timeout_s)
    hits = []
    try:
        for unit in units:
            try:
                words = await link.read_holding(unit, 0, count)
            except ModbusIOError:
                continue
            hits.append(ScanHit(unit, "generic", words=words))
    finally:
        link.close()
    return hits


async def run_scan(
    endpoint: Endpoint,
    units: list[int],
    timeout_s: float,
    generic: bool,
    progress: Callable[[int, int, int], None] | None = None,
) -> list[ScanHit]:
    found = [
        ScanHit.of(f) for f in await scan(endpoint, units, timeout_s=timeout_s, progress=progress)
    ]
    if generic:
        taken = {h.unit_id for h in found} | (
            {100} if any(h.kind == "victron" for h in found) else set()
        )
        found += await probe_generic(endpoint, [u for u in units if u not in taken], timeout_s)
    return sorted(found, key=lambda h: h.unit_id)


def unique_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def device_for(
    hit: ScanHit | None,
    endpoint: Endpoint,
    *,
    name: str,
    role: str,
    battery: BatteryConfig,
    allow_reserve: bool = True,
    address: int = 0,
    reg_type: str = "int16",
    scale: float = 1.0,
) -> DeviceConfig:
    """The ``[[devices]]`` entry for a found unit in ``role`` (ValidationError on bad input)."""
    data: dict[str, Any] = {
        "name": name,
        "role": role,
        "transport": endpoint.transport,
        "unit_id": hit.unit_id if hit is not None else 1,
    }
    if endpoint.transport == "tcp":
        data.update(host=endpoint.host, port=endpoint.port)
    else:
        data.update(
            serial_port=endpoint.serial_port, baudrate=endpoint.baudrate, parity=endpoint.parity
        )
    kind = hit.kind if hit is not None else "generic"
    limits: dict[str, dict[str, float]] = {}
    reserve_limit = {"min": battery.soc_min_pct, "max": 100.0}
    if kind == "sunspec":
        data["map"] = "sunspec"
        ids = set(hit.model_ids) if hit is not None else set()
        if allow_reserve and role in ("battery", "inverter"):
            for model in (802, 124):
                if model in ids:
                    limits[RESERVE_POINT[f"sunspec-{model}"]] = reserve_limit
    elif kind == "victron":
        data["map"] = "victron"
        if hit is not None and hit.vebus_unit_id is not None:
            data["vebus_unit_id"] = hit.vebus_unit_id
        if allow_reserve:
            limits[RESERVE_POINT["victron"]] = reserve_limit
    else:
        data["map"] = "generic"
        channel, unit = GENERIC_CHANNEL.get(role, (f"{role}_value", ""))
        point: dict[str, Any] = {"address": address, "type": reg_type, "scale": scale, "unit": unit}
        if role == "damper":
            point["writable"] = True
            limits[channel] = {"min": 0.0, "max": 100.0}
        data["points"] = {channel: point}
    if limits:
        data["limits"] = limits
    return DeviceConfig.model_validate(data)
