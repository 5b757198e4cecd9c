"""Images of `generic` devices (room sensors, dampers): registers described in the config.

Each point is named by the channel it carries; the simulated world knows these channels and
only the damper is a setpoint. Several generic devices may share one unit id (a room sensor
and a damper actuator on one small controller, as in the demo).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from appliance.config import DeviceConfig, RegisterPoint
from appliance.devices.codec import word_count
from appliance.sim.context import DeviceContext
from appliance.sim.image import Bind, Getter, RegisterImage, SimBuildError, Slot
from appliance.sim.plant import Plant

CHANNELS: dict[str, tuple[Getter, float]] = {  # channel -> (value, relative noise)
    "room_temp_c": (lambda s: s.room_temp_c, 0.002),
    "outdoor_temp_c": (lambda s: s.outdoor_temp_c, 0.002),
    "damper_pct": (lambda s: s.damper_pct, 0.0),
    "compute_power_w": (lambda s: s.compute_power_w, 0.004),
    "fan_power_w": (lambda s: s.fan_power_w, 0.004),
    "heat_to_room_w": (lambda s: s.heat_to_room_w, 0.004),
    "pv_power_w": (lambda s: s.pv_power_w, 0.004),
    "ac_load_power_w": (lambda s: s.load_power_w, 0.004),
    "battery_power_w": (lambda s: s.battery_power_w, 0.004),
    "soc_pct": (lambda s: s.soc_pct, 0.0),
}


def _setpoints(plant: Plant) -> dict[str, tuple[Callable[[float], None], tuple[float, float]]]:
    return {"damper_pct": (plant.set_damper_pct, (0.0, 100.0))}


def build_generic_image(
    contexts: Sequence[DeviceContext], devices: Sequence[DeviceConfig]
) -> RegisterImage:
    """One unit's image from the points of every generic device on it."""
    points: list[tuple[str, str, RegisterPoint]] = [
        (dev.name, channel, point) for dev in devices for channel, point in dev.points.items()
    ]
    if not points:
        raise SimBuildError("a generic unit needs at least one point")
    ctx = contexts[0]
    first = min(p.address for _, _, p in points)
    last = max(p.address + _size(p) - 1 for _, _, p in points)
    label = "+".join(d.name for d in devices) + f"@unit{ctx.unit_id}"
    image = RegisterImage.empty(label, first, last)
    setpoints = _setpoints(ctx.plant)
    for dev_name, channel, point in points:
        if channel not in CHANNELS:
            raise SimBuildError(
                f"device '{dev_name}': the simulator has no channel '{channel}' "
                f"(it serves {', '.join(sorted(CHANNELS))})"
            )
        getter, noise = CHANNELS[channel]
        if point.writable:
            if channel not in setpoints:
                raise SimBuildError(
                    f"device '{dev_name}': point '{channel}' is writable, but the "
                    f"simulated world has no setpoint for it (only {', '.join(setpoints)})"
                )
            setter, allowed = setpoints[channel]
            bind = Bind(get=getter, setter=setter, allowed=allowed)
        else:
            bind = Bind(get=getter, noise=noise)
        type_name = "uint16" if point.kind == "coil" else point.type
        image.place(
            Slot(
                name=channel,
                offset=point.address - first,
                type=type_name,
                size=_size(point),
                factor=1.0 / point.scale,
                writable=point.writable,
                bind=bind,
            )
        )
    # Small controllers answer for their whole register span (unused ones read 0), so a client
    # may fetch it in one request; writes to unused registers are still refused.
    image.serve(first, last - first + 1)
    image.finish()
    return image


def _size(point: RegisterPoint) -> int:
    return 1 if point.kind == "coil" else word_count(point.type)
