"""Simulated devices on real Modbus: pymodbus servers (TCP or RTU) over one simulated world.

``build_simulators(config, clock, compute_power_w=...)`` groups ``config.devices`` by endpoint
(host:port, or serial line) into one server each, with one unit per device (generic devices
sharing a unit id are merged, a Victron GX answers on its system unit and its VE.Bus unit) and
the service unit (247) for faults over the wire. ``await sims.start()`` listens,
``await sims.stop()`` closes; ``sims.inject(kind, device)`` / ``sims.clear()`` switch faults
at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.base import ModbusBaseServer
from pymodbus.simulator import DataType, SimData, SimDevice

from appliance.clock import Clock
from appliance.config import DeviceConfig, SunboxConfig
from appliance.sim.context import DeviceContext
from appliance.sim.faults import FaultKind
from appliance.sim.image import SimBuildError
from appliance.sim.image_generic import build_generic_image
from appliance.sim.image_sunspec import build_sunspec_image, models_for
from appliance.sim.image_victron import build_system_image, build_vebus_image
from appliance.sim.plant import Plant, PlantSnapshot
from appliance.sim.units import DeviceUnit, ServiceUnit
from appliance.sim.world import SimWorld

log = logging.getLogger("appliance.sim")

_MBAP_UNIT_INDEX = 6  # Modbus TCP: transaction(2) protocol(2) length(2) unit(1)


@dataclass
class EndpointSpec:
    """Where one server listens and which devices answer there."""

    label: str
    transport: str  # "tcp" | "rtu"
    host: str = "127.0.0.1"
    port: int = 0
    serial_port: str = ""
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    devices: list[DeviceConfig] = field(default_factory=list)


class SimEndpoint:
    """One pymodbus server with its device units and service unit."""

    def __init__(self, world: SimWorld, spec: EndpointSpec) -> None:
        self.world = world
        self.spec = spec
        self.label = spec.label
        self.units: dict[int, DeviceUnit] = {}
        self._build_units()
        sid = world.config.sim.service_unit_id
        if sid in self.units:
            raise SimBuildError(
                f"{self.label}: unit {sid} is the simulator's service unit; "
                "move the device or set [sim] service_unit_id"
            )
        self.service = ServiceUnit(
            world, self.label, sid, lambda: sorted(self.units), self._kick_soon
        )
        self.server: ModbusBaseServer | None = None
        self.dropped = False
        self._sync_lock = asyncio.Lock()

    # ------------------------------------------------------------------ layout

    def _build_units(self) -> None:
        cfg = self.world.config
        plant = self.world.plant
        by_unit: dict[int, list[DeviceConfig]] = {}
        for dev in self.spec.devices:
            by_unit.setdefault(dev.unit_id, []).append(dev)
        for unit_id, devs in sorted(by_unit.items()):
            maps = {d.map for d in devs}
            if len(maps) > 1:
                raise SimBuildError(
                    f"{self.label} unit {unit_id}: devices {[d.name for d in devs]} mix maps "
                    f"{sorted(maps)}; one unit speaks one map"
                )
            kind = maps.pop()
            names = tuple(d.name for d in devs)
            ctx = DeviceContext.of(cfg, plant, devs[0])
            if kind == "generic":
                image = build_generic_image([DeviceContext.of(cfg, plant, d) for d in devs], devs)
                self._add(DeviceUnit(self.world, self.label, unit_id, image, names, "generic"))
            elif kind == "sunspec":
                if len(devs) > 1:
                    raise SimBuildError(
                        f"{self.label} unit {unit_id}: SunSpec devices {list(names)} share a "
                        "unit id; give each its own"
                    )
                base = (
                    devs[0].sunspec_base
                    if devs[0].sunspec_base is not None
                    else cfg.sim.sunspec_base
                )
                image = build_sunspec_image(ctx, base)
                self._add(
                    DeviceUnit(
                        self.world,
                        self.label,
                        unit_id,
                        image,
                        names,
                        "sunspec",
                        tuple(models_for(ctx)),
                    )
                )
            else:  # victron: the GX system unit, and its VE.Bus unit
                vebus_ids = {d.vebus_unit_id for d in devs}
                if len(vebus_ids) > 1:
                    raise SimBuildError(
                        f"{self.label} unit {unit_id}: Victron devices disagree on vebus_unit_id"
                    )
                vebus_id = vebus_ids.pop()
                self._add(
                    DeviceUnit(
                        self.world,
                        self.label,
                        unit_id,
                        build_system_image(ctx, f"{names[0]}@unit{unit_id}"),
                        names,
                        "victron-system",
                    )
                )
                if vebus_id not in by_unit:
                    self._add(
                        DeviceUnit(
                            self.world,
                            self.label,
                            vebus_id,
                            build_vebus_image(ctx, f"{names[0]}@unit{vebus_id}"),
                            names,
                            "victron-vebus",
                        )
                    )

    def _add(self, unit: DeviceUnit) -> None:
        if unit.unit_id in self.units:
            raise SimBuildError(
                f"{self.label}: unit {unit.unit_id} is used twice "
                f"({self.units[unit.unit_id].devices} and {unit.devices})"
            )
        self.units[unit.unit_id] = unit

    def describe(self) -> list[str]:
        lines = [f"{self.label}"]
        for uid, unit in sorted(self.units.items()):
            what = {
                "sunspec": f"SunSpec models {_ids(unit.models)} at {unit.image.start}",
                "victron-system": "Victron GX system/settings (800-860, 2700-2710, 2900-2902)",
                "victron-vebus": "Victron VE.Bus (3-70)",
                "generic": "registers "
                + ", ".join(f"{s.name}@{unit.image.start + s.offset}" for s in unit.image.slots),
            }[unit.kind]
            lines.append(f"  unit {uid:>3}  {'+'.join(unit.devices):<16} {what}")
        lines.append(
            f"  unit {self.service.unit_id:>3}  {'service':<16} holding 0 fault code, 1 compute W "
            "override, 2 fault duration s, 3 target unit"
        )
        return lines

    # ------------------------------------------------------------------ server

    def _contexts(self) -> list[SimDevice]:
        devices = [u.sim_device() for u in self.units.values()]
        devices.append(self.service.sim_device())
        # Any other unit id: a gateway would answer "target device failed to respond".
        devices.append(
            SimDevice(
                id=0,
                simdata=[SimData(address=0, count=65536, values=0, datatype=DataType.REGISTERS)],
                action=_no_such_unit,
            )
        )
        return devices

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """Swallow answers of units that are silent (and, on a serial line, dropped or absent)."""
        if not sending or not data:
            return data
        serial = self.spec.transport == "rtu"
        index = 0 if serial else _MBAP_UNIT_INDEX
        if len(data) <= index:
            return data
        unit = data[index]
        if unit == self.service.unit_id:
            return data
        if unit not in self.units:
            return b"" if serial else data
        fault = self.world.faults.get((self.label, unit))
        if fault is FaultKind.SILENT or (serial and fault is FaultKind.DROP):
            return b""
        return data

    async def start(self) -> None:
        if self.server is not None:
            return
        contexts = self._contexts()
        if self.spec.transport == "tcp":
            self.server = ModbusTcpServer(
                context=contexts,
                address=(self.spec.host, self.spec.port),
                trace_packet=self._trace_packet,
            )
        else:
            self.server = ModbusSerialServer(
                context=contexts,
                framer=FramerType.RTU,
                port=self.spec.serial_port,
                baudrate=self.spec.baudrate,
                parity=self.spec.parity,
                stopbits=self.spec.stopbits,
                trace_packet=self._trace_packet,
            )
        try:
            await self.server.serve_forever(background=True)
        except RuntimeError as exc:
            self.server = None
            where = (
                f"{self.spec.host}:{self.spec.port}"
                if self.spec.transport == "tcp"
                else self.spec.serial_port
            )
            raise OSError(
                f"simulator cannot listen on {where} (in use, or no such device)"
            ) from exc
        await self.sync_faults()

    async def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.shutdown()

    def _should_drop(self) -> bool:
        if self.spec.transport != "tcp":
            return False
        return any(self.world.faults.get((self.label, u)) is FaultKind.DROP for u in self.units)

    def _kick_soon(self) -> None:
        """Like ``_kick``, after the current answer is on its way (a drop set over the wire
        still confirms the write before the connection closes)."""
        asyncio.get_running_loop().call_soon(self._kick)

    def _kick(self) -> None:
        """Apply a fault change now rather than at the next tick (drop closes at once)."""
        if self.server is None:
            return
        if self._should_drop() and not self.dropped:
            self.server.close()
            self.dropped = True
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self.sync_faults())

    async def sync_faults(self) -> None:
        """Close the listener while a drop is active; listen again when it is over."""
        async with self._sync_lock:
            if self.server is None:
                return
            drop = self._should_drop()
            if drop and not self.dropped:
                self.server.close()
                self.dropped = True
            elif not drop and self.dropped:
                if await self.server.listen():
                    self.dropped = False
                else:
                    log.warning("%s: could not listen again after a drop; retrying", self.label)


def _ids(models: tuple[int, ...]) -> str:
    return ", ".join(str(m) for m in models)


async def _no_such_unit(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE


class SimulatorSet:
    """Every simulated endpoint of a site over one world; an async context manager."""

    def __init__(self, world: SimWorld, endpoints: list[SimEndpoint]) -> None:
        self.world = world
        self.endpoints = endpoints
        self._ticker: asyncio.Task[None] | None = None

    @property
    def plant(self) -> Plant:
        return self.world.plant

    @property
    def snapshot(self) -> PlantSnapshot:
        return self.world.snapshot

    def units_of(self, device: str | None = None) -> list[tuple[SimEndpoint, DeviceUnit]]:
        found = [
            (ep, u)
            for ep in self.endpoints
            for u in ep.units.values()
            if device is None or device in u.devices
        ]
        if device is not None and not found:
            names = sorted(
                {n for ep in self.endpoints for u in ep.units.values() for n in u.devices}
            )
            raise KeyError(f"no simulated device '{device}' (devices: {', '.join(names)})")
        return found

    def unit(self, device: str) -> DeviceUnit:
        """The (first) unit serving ``device``."""
        return self.units_of(device)[0][1]

    def inject(
        self, kind: FaultKind | str, device: str | None = None, duration_s: float | None = None
    ) -> None:
        """Start a fault on one device's unit(s), or on every device unit.

        ``drop`` acts on the whole endpoint hosting the device: a TCP connection carries every
        unit behind it.
        """
        fault = FaultKind.parse(kind) if isinstance(kind, str) else kind
        pairs = self.units_of(device)
        self.world.faults.set([u.key for _, u in pairs], fault, duration_s)
        for ep in {id(ep): ep for ep, _ in pairs}.values():
            ep._kick()

    def clear(self, device: str | None = None) -> None:
        pairs = self.units_of(device)
        self.world.faults.clear([u.key for _, u in pairs])
        for ep in {id(ep): ep for ep, _ in pairs}.values():
            ep._kick()

    async def settle(self) -> None:
        """Wait until every endpoint reflects the current faults (listening or dropped)."""
        for ep in self.endpoints:
            await ep.sync_faults()

    def set_compute_override(self, power_w: float | None) -> None:
        self.world.compute_override_w = power_w

    def describe(self) -> list[str]:
        return [line for ep in self.endpoints for line in ep.describe()]

    async def start(self) -> None:
        started: list[SimEndpoint] = []
        try:
            for ep in self.endpoints:
                await ep.start()
                started.append(ep)
        except BaseException:
            for ep in started:
                await ep.stop()
            raise
        self._ticker = asyncio.create_task(self._tick(), name="sunbox-sim-tick")

    async def stop(self) -> None:
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        for ep in self.endpoints:
            await ep.stop()

    async def __aenter__(self) -> SimulatorSet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _tick(self) -> None:
        """Keep the plant moving and timed faults expiring when nobody polls."""
        period = self.world.config.sim.tick_s
        while True:
            await asyncio.sleep(period)
            try:
                self.world.advance()
                for ep in self.endpoints:
                    await ep.sync_faults()
            except Exception:  # noqa: BLE001 - the world must keep turning; say why it stumbled
                log.exception("simulator tick failed")


# --------------------------------------------------------------------------- building


def endpoint_specs(
    config: SunboxConfig, serial_ports: Mapping[str, str] | None = None
) -> list[EndpointSpec]:
    """Group the configured devices by where they are reached."""
    specs: dict[tuple[str, str, int], EndpointSpec] = {}
    for dev in config.devices:
        if dev.transport == "tcp":
            key = ("tcp", dev.host, dev.port)
            spec = specs.get(key) or EndpointSpec(
                label=f"tcp://{dev.host}:{dev.port}", transport="tcp", host=dev.host, port=dev.port
            )
        else:
            assert dev.serial_port is not None
            sim_side = (serial_ports or {}).get(dev.serial_port)
            if sim_side is None:
                raise SimBuildError(
                    f"device '{dev.name}' is RTU on {dev.serial_port}: the simulator needs the "
                    "other end of that serial line "
                    f"(serial_ports={{'{dev.serial_port}': '/dev/pts/N'}})"
                )
            key = ("rtu", sim_side, 0)
            spec = specs.get(key) or EndpointSpec(
                label=f"rtu://{sim_side}",
                transport="rtu",
                serial_port=sim_side,
                baudrate=dev.baudrate,
                parity=dev.parity,
                stopbits=dev.stopbits,
            )
            if (spec.baudrate, spec.parity, spec.stopbits) != (
                dev.baudrate,
                dev.parity,
                dev.stopbits,
            ):
                raise SimBuildError(
                    f"devices on {dev.serial_port} disagree on baudrate/parity/stopbits"
                )
        spec.devices.append(dev)
        specs[key] = spec
    return list(specs.values())


def build_simulators(
    config: SunboxConfig,
    clock: Clock,
    *,
    compute_power_w: Callable[[], float] | None = None,
    weather: pd.DataFrame | None = None,
    serial_ports: Mapping[str, str] | None = None,
) -> SimulatorSet:
    """Simulators for every configured device, sharing one plant on ``clock``.

    ``compute_power_w`` tells what the compute node draws now (default: its idle power);
    ``weather`` (field-data frame) replaces the clear sky where it has values;
    ``serial_ports`` maps an RTU device's serial port to the simulator's end of the line.
    Raises SimBuildError (a ValueError) when the config asks for something it cannot serve.
    """
    unknown = sorted(set(config.sim.models) - {d.name for d in config.devices})
    if unknown:
        raise SimBuildError(
            f"[sim.models] names device '{unknown[0]}', which is not in [[devices]]"
        )
    world = SimWorld(config, clock, compute_power_w, weather)
    endpoints = [SimEndpoint(world, spec) for spec in endpoint_specs(config, serial_ports)]
    return SimulatorSet(world, endpoints)


STANDALONE_SUNSPEC_MODELS = [1, 101, 160, 124, 802]  # a hybrid inverter with its battery


def standalone_config(
    config: SunboxConfig,
    *,
    map_name: str,
    host: str = "127.0.0.1",
    port: int = 1502,
    unit_id: int | None = None,
    serial_port: str | None = None,
    baudrate: int = 9600,
) -> SunboxConfig:
    """The site's config reduced to one simulated device (``sunbox sim``)."""
    # map -> (device name, default unit id, SunSpec models to serve)
    layouts: dict[str, tuple[Literal["sunspec", "victron"], str, int, dict[str, list[int]]]] = {
        "sunspec": ("sunspec", "sim", 1, {"sim": STANDALONE_SUNSPEC_MODELS}),
        "victron": ("victron", "gx", 100, {}),
    }
    if map_name not in layouts:
        raise SimBuildError(f"unknown map {map_name!r}; sunspec or victron")
    map_kind, name, default_unit, models = layouts[map_name]
    dev = DeviceConfig(
        name=name,
        role="inverter",
        map=map_kind,
        host=host,
        port=port,
        unit_id=unit_id if unit_id is not None else default_unit,
        transport="rtu" if serial_port else "tcp",
        serial_port=serial_port,
        baudrate=baudrate,
    )
    sim = config.sim.model_copy(update={"models": models})
    return config.model_copy(update={"devices": [dev], "sim": sim})
