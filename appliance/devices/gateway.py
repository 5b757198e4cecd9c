"""The daemon's view of the hardware: poll every device into one SiteState; bounded writes.

Devices behind one endpoint share a link (one TCP connection or one RS485 bus); links are
polled concurrently. When several devices report the same channel, the device whose role
owns it wins (the BMS for SoC, the MPPT for PV), as long as its value is fresh.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.devices.link import Endpoint, ModbusIOError, ModbusLink
from appliance.devices.poller import DevicePoller, DeviceSnapshot, RateLimit
from appliance.devices.writer import WriteRefused, write_point
from appliance.state import Channel, Reading, SiteState, WriteRequest, WriteResult

ROLE_ORDER: dict[str, tuple[str, ...]] = {
    Channel.SOC_PCT: ("battery", "inverter", "mppt", "meter"),
    Channel.BATTERY_POWER_W: ("battery", "inverter", "mppt", "meter"),
    Channel.BATTERY_VOLTAGE_V: ("battery", "inverter", "mppt"),
    Channel.BATTERY_CURRENT_A: ("battery", "inverter", "mppt"),
    Channel.BATTERY_RESERVE_PCT: ("battery", "inverter"),
    Channel.PV_POWER_W: ("mppt", "inverter", "battery"),
    Channel.AC_LOAD_POWER_W: ("meter", "inverter"),
    Channel.COMPUTE_POWER_W: ("meter",),
    Channel.ROOM_TEMP_C: ("room_sensor",),
    Channel.OUTDOOR_TEMP_C: ("room_sensor", "meter"),
    Channel.DAMPER_PCT: ("damper",),
}
DEFAULT_ORDER = ("battery", "inverter", "mppt", "meter", "room_sensor", "damper")


class DeviceGateway(Protocol):
    """What the control loop needs from the hardware, live or simulated."""

    async def poll(self) -> SiteState: ...

    async def write(self, request: WriteRequest) -> WriteResult: ...

    def snapshots(self) -> list[DeviceSnapshot]: ...

    async def close(self) -> None: ...


def merge_readings(snaps: list[DeviceSnapshot], now: datetime) -> dict[str, Reading]:
    """Pick, per channel, the fresh reading of the owning role, else the newest one."""
    merged: dict[str, Reading] = {}
    contested: dict[str, list[tuple[int, Reading]]] = {}
    for snap in snaps:
        for channel, reading in snap.readings.items():
            first = merged.get(channel)
            if first is None and channel not in contested:
                merged[channel] = reading  # the common case: one device reports it
                continue
            order = ROLE_ORDER.get(channel, DEFAULT_ORDER)
            bucket = contested.setdefault(channel, [])
            if first is not None:
                bucket.append((_rank(order, first.source, snaps), first))
                del merged[channel]
            bucket.append((order.index(snap.role) if snap.role in order else len(order), reading))
    for channel, candidates in contested.items():
        fresh = [c for c in candidates if c[1].is_fresh(now)]
        if fresh:
            merged[channel] = min(fresh, key=lambda c: c[0])[1]
        else:
            merged[channel] = max(candidates, key=lambda c: c[1].at.timestamp() if c[1].at else 0.0)[1]
    return merged


def _rank(order: tuple[str, ...], device: str, snaps: list[DeviceSnapshot]) -> int:
    role = next((s.role for s in snaps if s.name == device), "")
    return order.index(role) if role in order else len(order)


def rate_limits(config: SunboxConfig) -> dict[str, RateLimit]:
    """SoC cannot move faster than the battery's power limits allow (with 50 % headroom)."""
    bat = config.battery
    per_s = 1.5 * 100.0 * max(bat.charge_max_w, bat.discharge_max_w) / bat.capacity_wh / 3600.0
    return {Channel.SOC_PCT.value: RateLimit(per_s=per_s, slack=2.0)}


class ModbusGateway:
    """All configured devices over real Modbus (TCP or RTU)."""

    def __init__(self, config: SunboxConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.links: dict[Endpoint, ModbusLink] = {}
        self.pollers: dict[str, DevicePoller] = {}
        limits = rate_limits(config)
        for dev in config.devices:
            ep = Endpoint.of(dev)
            link = self.links.setdefault(ep, ModbusLink(ep, dev.timeout_s))
            self.pollers[dev.name] = DevicePoller(dev, link, clock, limits)
        self._write_lock = asyncio.Lock()
        by_link: dict[Endpoint, list[DevicePoller]] = {}
        for poller in self.pollers.values():
            by_link.setdefault(Endpoint.of(poller.dev), []).append(poller)
        self._by_link = list(by_link.values())  # devices on one link are polled in turn

    async def poll(self) -> SiteState:
        async def poll_link(pollers: list[DevicePoller]) -> None:
            for p in pollers:
                await p.poll()

        groups = self._by_link
        if len(groups) == 1:
            await poll_link(groups[0])
        else:
            await asyncio.gather(*(poll_link(ps) for ps in groups))
        snaps = self.snapshots()
        now = self.clock.now()
        alarms = tuple(a for s in snaps for a in s.alarms)
        devices = {s.name: s.health for s in snaps if s.health is not None}
        return SiteState(at=now, readings=merge_readings(snaps, now), alarms=alarms, devices=devices)

    async def write(self, request: WriteRequest) -> WriteResult:
        poller = self.pollers.get(request.device)
        if poller is None:
            return WriteResult(request.device, request.point, request.value, False, None,
                               f"refused: no device named {request.device!r}")
        async with self._write_lock:
            try:
                return await write_point(poller.dev, poller.link, poller.driver, request)
            except WriteRefused as exc:
                return WriteResult(request.device, request.point, request.value, False, None, f"refused: {exc}")
            except ModbusIOError as exc:
                return WriteResult(request.device, request.point, request.value, False, None, f"failed: {exc}")
            except (ValueError, ArithmeticError, KeyError, IndexError) as exc:  # a device answering garbage
                return WriteResult(request.device, request.point, request.value, False, None,
                                   f"failed: device answered unusable data ({type(exc).__name__}: {exc})")

    def snapshots(self) -> list[DeviceSnapshot]:
        return [p.snapshot for p in self.pollers.values()]

    def requests(self) -> int:
        return sum(link.requests for link in self.links.values())

    async def close(self) -> None:
        for link in self.links.values():
            link.close()
