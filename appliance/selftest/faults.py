"""The fault self-test: make the simulator misbehave, prove the device layer notices, clear it.

Only against the simulator: it talks to the simulator's service unit (holding registers 0..3:
fault code, compute override, duration, target unit; codes in appliance/sim/faults.py), and
it refuses to run unless every device is reached over TCP on this machine and that unit
answers with a plausible service block. Writing register 0 of unit 247 on real hardware
could do anything, so both conditions must hold before the first write.

Each fault is checked with a fresh gateway (no backoff carried over): the device answers
before, the fault is detected the way the control loop would see it, and after clearing it
the device answers again. A running daemon sees the faults too (it goes to safe mode for the
seconds the test takes); that is the point of the exercise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from appliance.clock import Clock
from appliance.config import DeviceConfig, SunboxConfig
from appliance.devices.gateway import ModbusGateway
from appliance.devices.link import Endpoint, ModbusIOError, ModbusLink
from appliance.devices.poller import DeviceSnapshot
from appliance.selftest.checks import QUALITY_CODES, CheckResult, Status
from appliance.selftest.report import Report
from appliance.sim.faults import FaultKind
from appliance.state import Channel

SERVICE_WORDS = 4
NO_OVERRIDE = 0xFFFF

Progress = Callable[[CheckResult], None]


class FaultTestRefused(Exception):
    """The fault test will not run here (not a simulator, or not reachable); one line why."""


@dataclass(frozen=True)
class FaultCase:
    fault: FaultKind
    roles: tuple[str, ...]  # target the first device with one of these roles
    expect: str


PLAN = (
    FaultCase(
        FaultKind.SILENT,
        ("battery", "inverter", "mppt", "meter"),
        "stops answering: the poller times out",
    ),
    FaultCase(
        FaultKind.EXCEPTION,
        ("inverter", "battery", "mppt", "meter"),
        "answers with exception 4: the poller reports the failure",
    ),
    FaultCase(
        FaultKind.SOC_RANGE,
        ("battery", "inverter"),
        "reports SoC 180 %: the value is refused as implausible",
    ),
    FaultCase(
        FaultKind.ALARM, ("inverter", "battery"), "raises its alarm bits: the alarm reaches the box"
    ),
)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceUnit:
    """The simulator's service unit on one endpoint."""

    def __init__(
        self, endpoint: Endpoint, unit_id: int, device_units: set[int], timeout_s: float
    ) -> None:
        self.endpoint = endpoint
        self.unit_id = unit_id
        self.device_units = device_units
        self.link = ModbusLink(endpoint, timeout_s)

    async def read(self) -> list[int]:
        return await self.link.read_holding(self.unit_id, 0, SERVICE_WORDS)

    async def verify(self) -> None:
        try:
            words = await self.read()
        except ModbusIOError as exc:
            raise FaultTestRefused(
                f"no simulator service unit {self.unit_id} at {self.endpoint} ({exc}): "
                "the fault self-test runs only against the simulator"
            ) from None
        code, _override, _duration, target = words
        if code not in FaultKind._value2member_map_ or (
            target != 0 and target not in self.device_units
        ):
            raise FaultTestRefused(
                f"unit {self.unit_id} at {self.endpoint} answers {words}, not like the "
                "simulator's service unit: refusing to write to it"
            )

    async def set(self, fault: FaultKind, target: int) -> None:
        override = (await self.read())[1]
        await self.link.write_registers(self.unit_id, 0, [int(fault), override, 0, target])

    async def clear_all(self) -> None:
        override = (await self.read())[1]
        await self.link.write_registers(self.unit_id, 0, [0, override, 0, 0])

    def close(self) -> None:
        self.link.close()


async def service_units(config: SunboxConfig) -> dict[Endpoint, ServiceUnit]:
    """The verified service unit of every device endpoint; FaultTestRefused otherwise."""
    if not config.devices:
        raise FaultTestRefused("no devices configured")
    by_ep: dict[Endpoint, set[int]] = {}
    for dev in config.devices:
        if dev.transport != "tcp" or not _is_loopback(dev.host):
            raise FaultTestRefused(
                f"device {dev.name} is reached at {Endpoint.of(dev)}, not on this machine: "
                "the fault self-test runs only against the local simulator"
            )
        by_ep.setdefault(Endpoint.of(dev), set()).add(dev.unit_id)
    units = {
        ep: ServiceUnit(
            ep, config.sim.service_unit_id, ids, min(d.timeout_s for d in config.devices)
        )
        for ep, ids in by_ep.items()
    }
    try:
        for su in units.values():
            await su.verify()
    except BaseException:
        for su in units.values():
            su.close()
        raise
    return units


async def _poll_once(config: SunboxConfig, dev: DeviceConfig, clock: Clock) -> DeviceSnapshot:
    gateway = ModbusGateway(config.model_copy(update={"devices": [dev]}), clock)
    try:
        await gateway.poll()
        return gateway.snapshots()[0]
    finally:
        await gateway.close()


def _failed(snap: DeviceSnapshot) -> str | None:
    h = snap.health
    return None if h is None or h.consecutive_failures == 0 else (h.last_error or "failed")


def detected(case: FaultCase, snap: DeviceSnapshot) -> str | None:
    """How the device layer showed the fault, or None if it did not."""
    error = _failed(snap)
    if case.fault in (FaultKind.SILENT, FaultKind.EXCEPTION):
        return f"poll failed: {error}" if error else None
    if case.fault is FaultKind.SOC_RANGE:
        hits = [
            a.message
            for a in snap.alarms
            if a.code in QUALITY_CODES and Channel.SOC_PCT.value in a.message
        ]
        return f"refused: {hits[0]}" if hits else None
    hits = [f"{a.code} ({a.severity})" for a in snap.alarms if a.code not in QUALITY_CODES]
    return f"alarm raised: {', '.join(hits)}" if hits else None


def _target(config: SunboxConfig, case: FaultCase) -> DeviceConfig | None:
    for role in case.roles:
        for dev in config.devices:
            if dev.role == role and dev.map in ("sunspec", "victron"):
                return dev
    return None


async def run_fault_selftest(
    config: SunboxConfig, clock: Clock, progress: Progress | None = None
) -> Report:
    """Inject each fault of PLAN on its device, check detection and recovery; always clears."""
    started = clock.now()
    units = await service_units(config)
    results: list[CheckResult] = []
    try:
        for case in PLAN:
            dev = _target(config, case)
            cid, title = f"fault:{case.fault.label}", f"{case.fault.label} fault detected"
            if dev is None:
                result = CheckResult(
                    cid, title, Status.SKIP, f"no device with role {'/'.join(case.roles)}"
                )
            else:
                result = await _one(config, clock, units[Endpoint.of(dev)], dev, case, cid, title)
            results.append(result)
            if progress is not None:
                progress(result)
    finally:
        for su in units.values():
            try:
                await su.clear_all()
            except ModbusIOError:
                pass
            su.close()
    from appliance.sync.links import box_id

    return Report(
        kind="faults",
        box_id=box_id(config),
        site=config.site.name,
        tz=config.site.tz,
        started_at=started.astimezone(UTC),
        finished_at=clock.now().astimezone(UTC),
        source="the simulator's service unit and a fresh poll of each device",
        checks=results,
    )


async def _one(
    config: SunboxConfig,
    clock: Clock,
    su: ServiceUnit,
    dev: DeviceConfig,
    case: FaultCase,
    cid: str,
    title: str,
) -> CheckResult:
    figures: dict[str, object] = {
        "device": dev.name,
        "unit": dev.unit_id,
        "fault_code": int(case.fault),
        "expect": case.expect,
    }
    before = await _poll_once(config, dev, clock)
    if (why := _failed(before)) is not None:
        return CheckResult(
            cid, title, Status.FAIL, f"{dev.name} did not answer before the fault: {why}", figures
        )
    await su.set(case.fault, dev.unit_id)
    try:
        during = await _poll_once(config, dev, clock)
    finally:
        await su.set(FaultKind.NONE, dev.unit_id)
    seen = detected(case, during)
    after = await _poll_once(config, dev, clock)
    recovered = _failed(after) is None and detected(case, after) is None
    figures.update({"detected": seen, "recovered": recovered})
    if seen is None:
        return CheckResult(
            cid, title, Status.FAIL, f"{dev.name} {case.expect}: NOT detected", figures
        )
    if not recovered:
        return CheckResult(
            cid,
            title,
            Status.FAIL,
            f"{dev.name}: {seen}; but it did not recover after clearing "
            f"({_failed(after) or detected(case, after)})",
            figures,
        )
    return CheckResult(
        cid, title, Status.PASS, f"{dev.name}: {seen}; recovered after clearing", figures
    )
