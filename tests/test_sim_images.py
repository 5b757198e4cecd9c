"""Register images: a write lands whole or is refused with a Modbus code, losing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.config import SunboxConfig
from appliance.sim.context import DeviceContext
from appliance.sim.image import (
    ILLEGAL_ADDRESS,
    ILLEGAL_VALUE,
    RegisterImage,
    SimBuildError,
    WriteRefused,
)
from appliance.sim.image_generic import build_generic_image
from appliance.sim.image_sunspec import build_sunspec_image
from appliance.sim.image_victron import build_system_image, build_vebus_image
from appliance.sim.plant import Plant
from tests.conftest import make_config

CFG = make_config(sim={"measurement_noise": False})
PLANT = Plant(CFG, datetime(2024, 3, 21, 9, tzinfo=UTC))
SNAP = PLANT.step(PLANT.time, 60.0, 120.0)


def images() -> list[RegisterImage]:
    inverter, battery, room, damper = CFG.devices
    ctx = DeviceContext.of(CFG, PLANT, inverter)
    out = [
        build_sunspec_image(ctx, 40000),
        build_sunspec_image(DeviceContext.of(CFG, PLANT, battery), 40000),
        build_system_image(ctx, "gx@100"),
        build_vebus_image(ctx, "gx@227"),
        build_generic_image([DeviceContext.of(CFG, PLANT, room)], [room, damper]),
    ]
    for image in out:
        image.render(SNAP)
    return out


IMAGES = images()


def setpoints() -> tuple[float, float, float, bool]:
    return PLANT.reserve_pct, PLANT.charge_setpoint_w, PLANT.damper_pct, PLANT.inverter_on


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=len(IMAGES) - 1),
    offset=st.integers(min_value=-3, max_value=400),
    values=st.lists(st.integers(min_value=0, max_value=0xFFFF), min_size=1, max_size=8),
)
def test_any_write_is_applied_whole_or_refused_cleanly(
    which: int, offset: int, values: list[int]
) -> None:
    image = IMAGES[which]
    address = image.start + offset
    before_words = list(image.words)
    before_setpoints = setpoints()
    try:
        names = image.write(address, values)
    except WriteRefused as exc:
        assert exc.code in (ILLEGAL_ADDRESS, ILLEGAL_VALUE)
        assert image.words == before_words and setpoints() == before_setpoints
        return
    assert names
    for slot_name in names:  # what was accepted reads back as written (held) or from the plant
        slot = image.slot(slot_name)
        assert slot.writable


def test_setpoints_are_bounded_and_read_back_from_the_plant() -> None:
    battery = IMAGES[1]
    slot = battery.slot("802.SoCRsvMin")
    battery.write(battery.start + slot.offset, slot.encode(45.0))
    assert PLANT.reserve_pct == 45.0
    battery.render(PLANT.snapshot)
    assert battery.value("802.SoCRsvMin") == 45.0
    with pytest.raises(WriteRefused) as err:
        battery.write(battery.start + slot.offset, [1001])  # 100.1 %
    assert err.value.code == ILLEGAL_VALUE and PLANT.reserve_pct == 45.0
    PLANT.set_reserve_pct(30.0)


def config(**sections: Any) -> SunboxConfig:
    return make_config(None, **sections)


def test_configs_the_simulator_cannot_serve_are_named() -> None:
    bad = config(
        devices=[
            {
                "name": "room",
                "role": "room_sensor",
                "map": "generic",
                "points": {"humidity_pct": {"address": 0}},
            }
        ],
        heat={"enabled": False, "damper": None, "room_sensor": None},
    )
    dev = bad.devices[0]
    with pytest.raises(SimBuildError, match="humidity_pct"):
        build_generic_image([DeviceContext.of(bad, PLANT, dev)], [dev])
    writable = config(
        devices=[
            {
                "name": "room",
                "role": "room_sensor",
                "map": "generic",
                "points": {"room_temp_c": {"address": 0, "writable": True}},
            }
        ],
        heat={"enabled": False, "damper": None, "room_sensor": None},
    )
    dev = writable.devices[0]
    with pytest.raises(SimBuildError, match="no setpoint"):
        build_generic_image([DeviceContext.of(writable, PLANT, dev)], [dev])
    meter = config(sim={"models": {"inverter": [1, 203]}})
    with pytest.raises(SimBuildError, match="203"):
        build_sunspec_image(DeviceContext.of(meter, PLANT, meter.devices[0]), 40000)
