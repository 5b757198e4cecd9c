"""The box's view of the plant without Modbus: what replay's control cycle reads.

Replay runs the real control code in-process; instead of polling registers it reads the
plant's snapshot as fresh readings (the same channels the device layer produces).
"""

from __future__ import annotations

from datetime import datetime

from appliance.sim.plant import PlantSnapshot
from appliance.state import Alarm, Channel, Reading, SiteState


def site_state(snap: PlantSnapshot, now: datetime, stale_after_s: float = 900.0) -> SiteState:
    values: dict[str, float] = {
        Channel.SOC_PCT: snap.soc_pct,
        Channel.BATTERY_POWER_W: snap.battery_power_w,
        Channel.BATTERY_VOLTAGE_V: snap.battery_voltage_v,
        Channel.BATTERY_RESERVE_PCT: snap.reserve_pct,
        Channel.PV_POWER_W: snap.pv_power_w,
        Channel.AC_LOAD_POWER_W: snap.load_power_w,
        Channel.COMPUTE_POWER_W: snap.compute_power_w,
        Channel.ROOM_TEMP_C: snap.room_temp_c,
        Channel.OUTDOOR_TEMP_C: snap.outdoor_temp_c,
        Channel.DAMPER_PCT: snap.damper_pct,
    }
    readings: dict[str, Reading] = {ch: Reading(float(v), now, stale_after_s, "plant") for ch, v in values.items()}
    alarms = (Alarm("plant", "BMS_CUTOFF", "BMS low-voltage cut-off: loads unpowered"),) if snap.bms_cutoff else ()
    return SiteState(at=now, readings=readings, alarms=alarms)
