"""Bounded writes: only points the official map marks writable, only values inside the limits
the site configured, always read back.

A point with no configured limit is never written, whatever the caller asks: the limits in
the config are the technician's signature on what the box may do to the hardware.
"""

from __future__ import annotations

from appliance.config import DeviceConfig
from appliance.devices import sunspec, victron
from appliance.devices.codec import decode, encode
from appliance.devices.drivers import SunSpecDriver
from appliance.devices.link import ModbusIOError, ModbusLink
from appliance.devices.registers import sunspec_model
from appliance.state import WriteRequest, WriteResult


class WriteRefused(Exception):
    """The write was not attempted: read-only point, no limit configured, or out of limits."""


def check_limits(dev: DeviceConfig, point: str, value: float) -> None:
    limit = dev.limits.get(point)
    if limit is None:
        raise WriteRefused(f"{dev.name}.{point}: no limit configured in [devices.limits]; not written")
    if not limit.min <= value <= limit.max:
        raise WriteRefused(f"{dev.name}.{point} = {value:g} is outside its limits {limit.min:g}..{limit.max:g}")


async def write_point(dev: DeviceConfig, link: ModbusLink, driver: object, req: WriteRequest) -> WriteResult:
    """Write one point and read it back. Raises WriteRefused before any I/O when not allowed."""
    check_limits(dev, req.point, req.value)
    if dev.map == "sunspec":
        read_back, resolution = await _write_sunspec(dev, link, driver, req)
    elif dev.map == "victron":
        read_back, resolution = await _write_victron(dev, link, req)
    else:
        read_back, resolution = await _write_generic(dev, link, req)
    ok = read_back is not None and abs(read_back - req.value) <= resolution
    detail = "read back" if ok else "READ-BACK MISMATCH"
    return WriteResult(
        device=dev.name, point=req.point, requested=req.value, written=ok, read_back=read_back,
        reason=f"{req.reason}; {detail} {read_back if read_back is not None else 'nothing'}",
    )


def _split_sunspec_point(point: str) -> tuple[int, str]:
    model_text, _, name = point.partition(".")
    if not model_text.isdigit() or not name:
        raise WriteRefused(f"SunSpec point must look like '124.MinRsvPct', got {point!r}")
    return int(model_text), name


async def _write_sunspec(
    dev: DeviceConfig, link: ModbusLink, driver: object, req: WriteRequest
) -> tuple[float | None, float]:
    model_id, name = _split_sunspec_point(req.point)
    try:
        pdef = sunspec.writable_point(model_id, name)
    except (KeyError, PermissionError) as exc:
        raise WriteRefused(str(exc)) from None
    if not isinstance(driver, SunSpecDriver):
        raise WriteRefused(f"{dev.name} is not a SunSpec device")
    if driver.layout is None:
        await driver.prepare(link)
    assert driver.layout is not None
    block = driver.layout.block(model_id)
    if block is None:
        raise WriteRefused(f"{dev.name} does not implement SunSpec model {model_id}")
    model = sunspec_model(model_id)
    words = await link.read_holding(dev.unit_id, block.address, block.length + 2)
    sf = 0
    if isinstance(pdef.sf, str):
        sf_value = sunspec.decode_model(model, words).get(pdef.sf)
        if not isinstance(sf_value, int) or not -10 <= sf_value <= 10:
            raise WriteRefused(f"{dev.name}: scale factor {pdef.sf} = {sf_value!r} is not usable; "
                               f"cannot scale {req.point}")
        sf = sf_value
    elif isinstance(pdef.sf, int):
        sf = pdef.sf
    raw = round(req.value / 10.0**sf)
    try:
        payload = encode(raw, pdef.type, pdef.size)
    except ValueError as exc:
        raise WriteRefused(f"{req.point}: {exc}") from None
    await link.write_registers(dev.unit_id, block.address + pdef.offset, payload)
    after = await link.read_holding(dev.unit_id, block.address, block.length + 2)
    value = sunspec.decode_model(model, after).get(name)
    return (float(value) if isinstance(value, int | float) else None), 0.5 * 10.0**sf


async def _write_victron(dev: DeviceConfig, link: ModbusLink, req: WriteRequest) -> tuple[float | None, float]:
    reg_text = req.point.removeprefix("victron.")
    if not reg_text.isdigit():
        raise WriteRefused(f"Victron point must look like 'victron.2901', got {req.point!r}")
    try:
        vp = victron.writable_point(int(reg_text))
        unit = victron.unit_for(vp, dev.vebus_unit_id)
    except (KeyError, PermissionError) as exc:
        raise WriteRefused(str(exc)) from None
    try:
        payload = encode(round(req.value * vp.scale), vp.type, vp.size)
    except ValueError as exc:
        raise WriteRefused(f"{req.point}: {exc}") from None
    await link.write_registers(unit, vp.register, payload)
    back = decode(await link.read_holding(unit, vp.register, vp.size), vp.type, vp.size)
    value = float(back) / vp.scale if isinstance(back, int | float) else None
    return value, 0.5 / vp.scale


async def _write_generic(dev: DeviceConfig, link: ModbusLink, req: WriteRequest) -> tuple[float | None, float]:
    p = dev.points.get(req.point)
    if p is None or not p.writable:
        raise WriteRefused(f"{dev.name}.{req.point} is not a writable point of this device")
    size = 2 if p.type in ("int32", "uint32", "float32") else 1
    if p.kind == "coil":
        await link.write_coil(dev.unit_id, p.address, req.value >= 0.5)
        bits = await link.read_coils(dev.unit_id, p.address, 1)
        return (1.0 if bits[0] else 0.0), 0.0
    if p.kind != "holding":
        raise WriteRefused(f"{dev.name}.{req.point}: input registers cannot be written")
    raw: float = req.value / p.scale
    try:
        payload = encode(raw if p.type == "float32" else round(raw), p.type, size)
    except ValueError as exc:
        raise WriteRefused(f"{req.point}: {exc}") from None
    await link.write_registers(dev.unit_id, p.address, payload)
    back = decode(await link.read_holding(dev.unit_id, p.address, size), p.type)
    value = float(back) * p.scale if isinstance(back, int | float) else None
    return value, p.scale / 2


__all__ = ["WriteRefused", "check_limits", "write_point", "ModbusIOError"]
