"""The simulator over real Modbus TCP on loopback, read back with the box's own decoders."""

from __future__ import annotations

from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from appliance.clock import ManualClock
from appliance.devices import sunspec, victron
from appliance.devices.registers import sunspec_model
from appliance.sim import SimulatorSet
from appliance.sim.context import device_identity
from tests.sim_helpers import (
    KISUMU_NIGHT,
    ModbusError,
    port,
    read_block,
    read_models,
    run,
    running,
    sim_config,
    write,
)


def point_address(layout: sunspec.SunSpecLayout, model_id: int, point: str) -> int:
    block = layout.block(model_id)
    assert block is not None
    return block.address + sunspec_model(model_id).point(point).offset


def test_sunspec_images_read_back_to_the_plant() -> None:
    cfg = sim_config(port())

    async def body(sims: SimulatorSet, client: AsyncModbusTcpClient, clock: ManualClock) -> None:
        inv_layout, inv = await read_models(client, 1)
        bat_layout, bat = await read_models(client, 2)
        assert inv_layout.base == 40000 and inv_layout.model_ids() == [1, 101, 160, 124]
        assert bat_layout.model_ids() == [1, 802]
        assert sunspec.common_identity(inv[1]) == device_identity(cfg, "inverter", "inverter")
        assert sunspec.common_identity(bat[1])["model"] == "SBX-BAT-10000"
        assert sunspec.common_identity(bat[1])["manufacturer"] == "Sunbox"
        snap = sims.snapshot
        assert snap.pv_power_w > 1500.0  # noon at Kisumu
        values, alarms = sunspec.channels({**inv, **bat})
        assert alarms == []
        assert values["soc_pct"] == pytest.approx(snap.soc_pct, abs=0.05)
        assert values["battery_power_w"] == pytest.approx(snap.battery_power_w, abs=0.5)
        assert values["battery_current_a"] == pytest.approx(snap.battery_current_a, abs=0.05)
        assert values["battery_voltage_v"] == pytest.approx(snap.battery_voltage_v, abs=0.05)
        assert values["battery_reserve_pct"] == 30.0
        assert values["pv_power_w"] == pytest.approx(snap.pv_power_w, abs=1.0)
        assert values["ac_load_power_w"] == pytest.approx(snap.load_power_w, abs=0.5)
        assert values["pv_energy_wh"] == pytest.approx(snap.counters.pv_wh, abs=1.0)
        assert values["battery_charge_max_w"] == pytest.approx(snap.charge_limit_w, abs=0.5)
        assert inv[124]["ChaState"] == pytest.approx(snap.soc_pct, abs=0.05)
        assert inv[160]["N"] == 2 and inv[160]["module[1].IDStr"] == "PV2"
        assert bat[802]["WHRtg"] == 10000.0 and bat[802]["Typ"] == 4

    run(running(cfg, body))


def test_victron_gx_images_read_back_to_the_plant() -> None:
    p = port()
    gx: dict[str, Any] = {
        "name": "gx",
        "role": "inverter",
        "map": "victron",
        "host": "127.0.0.1",
        "port": p,
        "unit_id": 100,
        "limits": {"victron.2901": {"min": 10, "max": 100}},
    }
    cfg = sim_config(p, devices=[gx], heat={"enabled": False, "damper": None, "room_sensor": None})

    async def body(sims: SimulatorSet, client: AsyncModbusTcpClient, clock: ManualClock) -> None:
        system = victron.decode_registers(800, await read_block(client, 100, 800, 61))
        system.update(victron.decode_registers(2901, await read_block(client, 100, 2901, 1)))
        vebus = victron.decode_registers(31, await read_block(client, 227, 31, 34))
        values, alarms = victron.channels(system, vebus)
        snap = sims.snapshot
        assert alarms == []
        assert values["soc_pct"] == pytest.approx(snap.soc_pct, abs=0.5)  # GX SoC is whole %
        assert values["battery_power_w"] == pytest.approx(snap.battery_power_w, abs=0.5)
        assert values["battery_voltage_v"] == pytest.approx(snap.battery_voltage_v, abs=0.05)
        assert values["pv_power_w"] == pytest.approx(snap.pv_power_w, abs=0.5)
        assert values["ac_load_power_w"] == pytest.approx(snap.load_power_w, abs=0.5)
        assert values["battery_reserve_pct"] == 30.0
        assert values["inverter_state"] == 9.0  # inverting
        assert system[800] == device_identity(cfg, "gx", "inverter")["serial"][-12:].lower()
        # writes: ESS minimum SoC (scale 10), VE.Bus mode; read-only and bad values refused
        await write(client, 100, 2901, [350])
        assert sims.plant.reserve_pct == 35.0
        assert (await read_block(client, 100, 2901, 1)) == [350]
        for unit, reg, raw, code in (
            (100, 843, 50, 2),
            (100, 2901, 1500, 3),
            (227, 33, 7, 3),
            (227, 31, 1, 2),
        ):
            with pytest.raises(ModbusError) as err:
                await write(client, unit, reg, [raw])
            assert err.value.code == code
        await write(client, 227, 33, [4])  # Off: the AC loads go dark
        assert sims.plant.inverter_on is False
        clock.advance(60)
        vebus = victron.decode_registers(31, await read_block(client, 227, 31, 34))
        assert vebus[31] == 0.0 and vebus[33] == 4.0 and sims.snapshot.load_power_w == 0.0
        sims.inject("soc_range")
        system = victron.decode_registers(840, await read_block(client, 100, 840, 4))
        assert system[843] == 180.0
        sims.inject("alarm")
        _, alarms = victron.channels(
            {}, victron.decode_registers(31, await read_block(client, 227, 31, 34))
        )
        assert {a.code for a in alarms} >= {"FAULT", "HighTemperature"}

    run(running(cfg, body))


def test_writes_in_range_are_applied_and_read_back_others_refused() -> None:
    cfg = sim_config(port())

    async def body(sims: SimulatorSet, client: AsyncModbusTcpClient, clock: ManualClock) -> None:
        bat_layout, bat = await read_models(client, 2)
        inv_layout, _ = await read_models(client, 1)
        reserve = point_address(bat_layout, 802, "SoCRsvMin")
        soc_sf = int(bat[802]["SoC_SF"] or 0)
        await write(client, 2, reserve, [round(40 / 10**soc_sf)])
        assert sims.plant.reserve_pct == 40.0
        _, bat = await read_models(client, 2)
        assert bat[802]["SoCRsvMin"] == 40.0
        _, inv = await read_models(client, 1)
        assert inv[124]["MinRsvPct"] == 40.0  # one BMS setpoint, seen through both models
        await write(client, 1, point_address(inv_layout, 124, "WChaMax"), [800])
        assert sims.plant.charge_setpoint_w == 800.0
        clock.advance(120)
        _, bat = await read_models(client, 2)
        assert bat[802]["W"] == pytest.approx(800.0, abs=0.5)  # physics obeys the new limit
        refused = [
            (2, reserve, round(120 / 10**soc_sf), 3),  # 120 % reserve
            (2, point_address(bat_layout, 802, "SoC"), 500, 2),  # read-only
            (2, point_address(bat_layout, 802, "SetOp"), 9, 3),  # not an enum value
            (1, point_address(inv_layout, 124, "WChaMax"), 5000, 3),  # above charge_max_w
            (
                1,
                point_address(inv_layout, 124, "OutWRte"),
                10,
                2,
            ),  # RW in the model, not implemented
            (1, point_address(inv_layout, 101, "W"), 10, 2),
            (1, 40000, 0, 2),  # the SunS marker
            (3, 0, 250, 2),  # room temperature is a sensor
            (3, 5, 1, 2),  # an unused register of the room controller
            (3, 10, 160, 3),  # damper beyond 100 %
        ]
        for unit, address, raw, code in refused:
            with pytest.raises(ModbusError) as err:
                await write(client, unit, address, [raw])
            assert err.value.code == code, (unit, address, raw)
        assert sims.plant.reserve_pct == 40.0 and sims.plant.charge_setpoint_w == 800.0
        await write(client, 3, 10, [60])
        assert sims.plant.damper_pct == 60.0
        clock.advance(60)
        assert (await read_block(client, 3, 10, 1)) == [60]
        room = await read_block(client, 3, 0, 2)
        assert room[0] / 10 == pytest.approx(sims.snapshot.room_temp_c, abs=0.05)
        assert room[1] / 10 == pytest.approx(sims.snapshot.outdoor_temp_c, abs=0.05)
        with pytest.raises(ModbusError) as err:
            await read_block(client, 9, 0, 2)
        assert err.value.code == 11  # no such unit behind this gateway

    run(running(cfg, body))


async def _read_802(client: AsyncModbusTcpClient) -> list[int]:
    return await read_block(client, 2, 40000, 2 + 68 + 2 + 64)


@pytest.mark.parametrize(
    "kind", ["exception", "silent", "garbage", "frozen", "soc_range", "alarm", "drop"]
)
def test_every_fault_is_observable_by_a_raw_client_and_clears(kind: str) -> None:
    cfg = sim_config(port())

    async def body(sims: SimulatorSet, client: AsyncModbusTcpClient, clock: ManualClock) -> None:
        clean = await _read_802(client)
        sims.inject(kind, "battery")
        await sims.settle()
        if kind == "exception":
            with pytest.raises(ModbusError) as err:
                await _read_802(client)
            assert err.value.code == 4
            assert (await read_block(client, 1, 40000, 2)) == [
                0x5375,
                0x6E53,
            ]  # the other unit is fine
        elif kind == "silent":
            with pytest.raises(Exception, match="No response"):
                await _read_802(client)
            assert (await read_block(client, 1, 40000, 2)) == [0x5375, 0x6E53]
        elif kind == "garbage":
            a, b = await _read_802(client), await _read_802(client)
            assert a[:4] == clean[:4] and a[70:72] == [802, 62]  # marker and model headers kept
            changed = sum(x != y for x, y in zip(a, clean, strict=True))
            assert changed > 40 and a != b
            assert {0x8000, 0xFFFF} & set(a)
            decoded = sunspec.decode_model(sunspec_model(802), a[70:])
            sunspec.channels({802: decoded})  # must not raise
        elif kind == "frozen":
            soc_before = sims.snapshot.soc_pct
            clock.advance(3600)  # an hour of night discharge later
            assert (await _read_802(client)) == clean
            assert sims.snapshot.soc_pct < soc_before - 0.5  # the world moved on
        elif kind == "soc_range":
            _, models = await read_models(client, 2)
            assert models[802]["SoC"] == 180.0
            assert sunspec.channels(models)[0]["soc_pct"] == 180.0
        elif kind == "alarm":
            _, bat = await read_models(client, 2)
            _, inv = await read_models(client, 1)
            assert bat[802]["State"] == 99 and inv[101]["St"] != 7  # only the battery unit
            codes = {a.code for a in sunspec.channels(bat)[1]}
            assert {"FAULT", "OVER_TEMP_ALARM"} <= codes
        elif kind == "drop":
            with pytest.raises(Exception):  # noqa: B017 - closed connection, any client error
                await _read_802(client)
            fresh = AsyncModbusTcpClient(
                "127.0.0.1", port=cfg.devices[0].port, timeout=0.5, retries=0
            )
            assert not await fresh.connect()
            fresh.close()
        sims.clear()
        await sims.settle()
        clock.advance(600)
        again = AsyncModbusTcpClient("127.0.0.1", port=cfg.devices[0].port, timeout=0.5, retries=0)
        assert await again.connect()
        try:
            after = await _read_802(again)
        finally:
            again.close()
        assert after[:4] == clean[:4]
        decoded = sunspec.decode_model(sunspec_model(802), after[70:])
        assert decoded["SoC"] == pytest.approx(sims.snapshot.soc_pct, abs=0.05)
        assert decoded["State"] == 3

    run(running(cfg, body, start=KISUMU_NIGHT))


def test_service_unit_switches_faults_and_the_compute_load_over_modbus() -> None:
    cfg = sim_config(port())

    async def body(sims: SimulatorSet, client: AsyncModbusTcpClient, clock: ManualClock) -> None:
        assert (await read_block(client, 247, 0, 4)) == [0, 0xFFFF, 0, 0]
        await write(client, 247, 0, [3, 0xFFFF, 0, 2])  # exception on unit 2 only
        with pytest.raises(ModbusError) as err:
            await read_block(client, 2, 40000, 2)
        assert err.value.code == 4
        assert (await read_block(client, 1, 40000, 2)) == [0x5375, 0x6E53]
        assert (await read_block(client, 247, 0, 4)) == [3, 0xFFFF, 0, 2]
        await write(client, 247, 0, [0])
        assert (await read_block(client, 2, 40000, 2)) == [0x5375, 0x6E53]
        await write(client, 247, 1, [250])
        clock.advance(60)
        await read_block(client, 2, 40000, 2)
        assert sims.snapshot.compute_power_w == pytest.approx(250.0)
        for bad in ([9], [1]):  # unknown code; drop without a duration
            with pytest.raises(ModbusError) as err:
                await write(client, 247, 0, bad)
            assert err.value.code == 3
        with pytest.raises(ModbusError):
            await write(client, 247, 3, [5])  # no device unit 5 here
        await write(client, 247, 0, [1, 250, 2, 0])  # drop everything for 2 clock seconds
        with pytest.raises(Exception):  # noqa: B017
            await read_block(client, 1, 40000, 2)
        clock.advance(3)
        for _ in range(100):  # the tick (50 ms wall) notices the expiry and listens again
            await sims.endpoints[0].sync_faults()
            if not sims.endpoints[0].dropped:
                break
        again = AsyncModbusTcpClient("127.0.0.1", port=cfg.devices[0].port, timeout=0.5, retries=0)
        assert await again.connect()
        try:
            r = await again.read_holding_registers(0, count=4, device_id=247)
            assert r.registers == [0, 250, 2, 0]
        finally:
            again.close()

    run(running(cfg, body))
