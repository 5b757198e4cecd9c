"""The simulated plant: PV, a LiFePO4 battery, the loads and a room, stepped explicitly.

Deterministic physics with no I/O and no clock of its own: whoever drives it (the Modbus
simulator, replay, a test) says which interval to advance. One step:

1. PV available over the interval (exact integral of the sky's chunk, see ``sky``).
2. Loads ask for base + compute node + damper fan; the inverter adds its standby and a share
   of its throughput.
3. PV serves the loads first, then charges the battery (charge limit, taper, soc_max); what
   neither can take is curtailed. A deficit comes from the battery down to soc_min, where the
   BMS cuts off: the loads go dark (``brownout``) and their energy is counted as unmet.
4. The compute node's power is heat: the damper sends its share into the room (RC model),
   the rest is vented.

Every energy flow is counted (Wh) and the balance closes exactly:
pv + discharge = load + inverter loss + charge, and charge - discharge - battery loss equals
the change of stored energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pandas as pd

from appliance.config import SunboxConfig
from appliance.heat.room import RoomModel
from appliance.sim.battery import LifePo4Pack
from appliance.sim.sky import Sky
from appliance.solar.pvsystem import Physics

_STRING_VMP_V = 170.0  # MPPT input voltage of a string at its maximum power point, 25 C cells
_STRING_VOC_V = 205.0
_VMP_TEMP_COEFF = -0.0035  # per K


@dataclass(frozen=True, slots=True)
class EnergyCounters:
    """Energy since the plant started (Wh)."""

    pv_available_wh: float = 0.0
    pv_wh: float = 0.0  # delivered to loads and battery
    curtailed_wh: float = 0.0
    load_demand_wh: float = 0.0  # what the loads asked for
    load_wh: float = 0.0  # what they got (base + compute + fan)
    compute_wh: float = 0.0
    fan_wh: float = 0.0
    inverter_loss_wh: float = 0.0
    charge_wh: float = 0.0  # into the battery terminals
    discharge_wh: float = 0.0  # out of the battery terminals
    battery_loss_wh: float = 0.0
    unmet_wh: float = 0.0
    heat_to_room_wh: float = 0.0
    heat_vented_wh: float = 0.0

    def balance_error_wh(self) -> float:
        """Bus balance residual: sources minus sinks (0 up to rounding)."""
        return (self.pv_wh + self.discharge_wh) - (
            self.load_wh + self.inverter_loss_wh + self.charge_wh
        )


@dataclass(frozen=True, slots=True)
class PlantSnapshot:
    """The plant at ``at`` (end of a step); powers are means over the step of ``dt_s``."""

    at: datetime
    dt_s: float
    pv_available_w: float
    pv_power_w: float
    curtailed_w: float
    pv_voltage_v: float
    load_demand_w: float
    load_power_w: float  # AC output of the inverter: base + compute + fan served
    base_load_w: float
    compute_power_w: float
    fan_power_w: float
    inverter_loss_w: float
    inverter_on: bool
    inverter_temp_c: float
    battery_power_w: float  # + charging
    battery_voltage_v: float
    battery_current_a: float  # + charging
    battery_temp_c: float
    soc_pct: float
    energy_wh: float  # stored
    reserve_pct: float
    charge_setpoint_w: float  # WChaMax as written
    charge_limit_w: float  # what the BMS accepts now (setpoint, taper)
    discharge_limit_w: float
    brownout: bool  # loads unpowered for some of the step
    bms_cutoff: bool  # discharge path open (low-voltage cut-off)
    room_temp_c: float
    outdoor_temp_c: float
    damper_pct: float
    heat_to_room_w: float
    heat_vented_w: float
    counters: EnergyCounters = field(default_factory=EnergyCounters)


@dataclass(slots=True)
class _Flows:
    pv_available: float = 0.0
    pv: float = 0.0
    load_demand: float = 0.0
    load: float = 0.0
    base: float = 0.0
    compute: float = 0.0
    fan: float = 0.0
    inverter_loss: float = 0.0
    charge: float = 0.0
    discharge: float = 0.0
    battery_loss: float = 0.0
    unmet: float = 0.0
    heat_room: float = 0.0
    heat_vented: float = 0.0
    brownout: bool = False


class Plant:
    """PV + LiFePO4 battery + loads + room; see the module docstring for one step."""

    def __init__(
        self, config: SunboxConfig, start: datetime, weather: pd.DataFrame | None = None
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self.config = config
        sim, bat = config.sim, config.battery
        self.sky = Sky(
            config.site,
            config.array,
            weather=weather,
            resolution_s=sim.pv_resolution_s,
            chunk_s=max(sim.pv_resolution_s, sim.pv_chunk_h * 3600.0),
            physics=Physics.from_config(config.forecast),
        )
        self.pack = LifePo4Pack(
            capacity_wh=bat.capacity_wh,
            soc_min_pct=bat.soc_min_pct,
            soc_max_pct=bat.soc_max_pct,
            charge_max_w=bat.charge_max_w,
            discharge_max_w=bat.discharge_max_w,
            one_way_efficiency=bat.one_way_efficiency,
            energy_wh=bat.capacity_wh
            * min(max(bat.initial_soc_pct, bat.soc_min_pct), bat.soc_max_pct)
            / 100.0,
            cells_series=sim.battery_cells_series,
            resistance_ohm=sim.battery_resistance_ohm,
            taper_start_pct=sim.charge_taper_start_pct,
            release_pct=sim.bms_release_pct,
        )
        self.room = RoomModel.from_config(config.heat)
        self.base_w = config.loads.base_w
        self.standby_w = sim.inverter_standby_w
        self.loss_frac = sim.inverter_loss_pct / 100.0
        self.fan_max_w = sim.fan_w
        self.max_step_s = sim.max_step_s
        self.pdc_w = config.array.dc_kw * 1000.0
        # setpoints the devices hold and report back
        self.reserve_pct = bat.reserve_pct
        self.charge_setpoint_w = bat.charge_max_w
        self.damper_pct = sim.initial_damper_pct
        self.inverter_on = True
        self.time = start.astimezone(UTC)
        _, outdoor = self.sky.at(self.time)
        self.room_temp_c = (
            sim.initial_room_temp_c
            if sim.initial_room_temp_c is not None
            else max(outdoor, config.heat.setpoint_c - 2.0)
        )
        self._c = _Flows()  # counters: the same fields, accumulated since start
        self.snapshot = self._snapshot(_Flows(), 0.0, self.time, outdoor)

    # ------------------------------------------------------------------ setpoints

    def set_reserve_pct(self, value: float) -> None:
        """Reserve SoC the BMS holds (802.SoCRsvMin, 124.MinRsvPct, Victron 2901)."""
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"reserve {value:g} % outside 0..100")
        self.reserve_pct = float(value)
        self._setpoints_changed()

    def set_charge_setpoint_w(self, value: float) -> None:
        """Charge power limit (124.WChaMax); the physics obeys it from the next step."""
        if not 0.0 <= value <= self.pack.charge_max_w:
            raise ValueError(f"charge limit {value:g} W outside 0..{self.pack.charge_max_w:g}")
        self.charge_setpoint_w = float(value)
        self._setpoints_changed()

    def set_damper_pct(self, value: float) -> None:
        """Damper position: 0 = all node heat vented, 100 = all into the room."""
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"damper {value:g} % outside 0..100")
        self.damper_pct = float(value)
        self._setpoints_changed()

    def set_inverter_on(self, on: bool) -> None:
        """Switch the inverter (Victron VE.Bus mode): off means the AC loads go dark."""
        self.inverter_on = bool(on)
        self._setpoints_changed()

    def _setpoints_changed(self) -> None:
        """The latest snapshot reads setpoints back as they are now (a device reports its new
        setpoint at once, not at the next physics step)."""
        self.snapshot = replace(
            self.snapshot,
            reserve_pct=self.reserve_pct,
            charge_setpoint_w=self.charge_setpoint_w,
            damper_pct=self.damper_pct,
            inverter_on=self.inverter_on,
        )

    def skip_to(self, moment: datetime) -> None:
        """Jump over time with no weather (replay gaps): the battery's state carries over."""
        moment = moment.astimezone(UTC)
        if moment < self.time:
            raise ValueError("the plant's time does not go back")
        self.time = moment
        self.snapshot = replace(self.snapshot, at=moment)

    def prepare(self, start: datetime, end: datetime) -> None:
        """Compute the PV of a whole range in one pass (replay: a year in about a second)."""
        self.sky.prepare(start, end)

    # ------------------------------------------------------------------ stepping

    def advance_to(self, moment: datetime, compute_power_w: float) -> PlantSnapshot:
        """Step from the plant's time to ``moment`` (no-op if it is not later)."""
        dt_s = (moment - self.time).total_seconds()
        if dt_s <= 0.0:
            return self.snapshot
        return self.step(self.time, dt_s, compute_power_w)

    def step(self, now: datetime, dt_s: float, compute_power_w: float) -> PlantSnapshot:
        """Advance over [now, now + dt_s) with the node drawing ``compute_power_w``."""
        if dt_s <= 0.0:
            raise ValueError("dt_s must be positive")
        t0 = now.timestamp()
        flows = _Flows()
        compute_w = compute_power_w if compute_power_w > 0.0 else 0.0
        done = 0.0
        outdoor = 0.0
        while done < dt_s:
            part = min(self.max_step_s, dt_s - done)
            outdoor = self._substep(t0 + done, part, compute_w, flows)
            done += part
        c = self._c
        c.pv_available += flows.pv_available
        c.pv += flows.pv
        c.load_demand += flows.load_demand
        c.load += flows.load
        c.compute += flows.compute
        c.fan += flows.fan
        c.inverter_loss += flows.inverter_loss
        c.charge += flows.charge
        c.discharge += flows.discharge
        c.battery_loss += flows.battery_loss
        c.unmet += flows.unmet
        c.heat_room += flows.heat_room
        c.heat_vented += flows.heat_vented
        end = now + timedelta(seconds=dt_s)
        self.time = end
        self.snapshot = self._snapshot(flows, dt_s, end, outdoor)
        return self.snapshot

    def _substep(self, t0: float, dt: float, compute_w: float, f: _Flows) -> float:
        pack = self.pack
        dt_h = dt / 3600.0
        pv = self.sky.pv_energy_j(t0, t0 + dt) / dt
        outdoor = self.sky.outdoor_c(t0 + 0.5 * dt)
        damper = self.damper_pct / 100.0
        fan = self.fan_max_w * damper if compute_w > 0.0 else 0.0
        demand = self.base_w + compute_w + fan
        loss = self.standby_w + self.loss_frac * demand
        need = demand + loss
        served = 0.0  # share of the step the loads run
        pv_to_loads = 0.0
        charge = discharge = 0.0
        if self.inverter_on and pack.discharge_enabled:
            if pv >= need:
                served = 1.0
                pv_to_loads = need
                charge = min(pv - need, pack.charge_limit_w(dt, self.charge_setpoint_w))
            else:
                deficit = need - pv
                available = pack.discharge_limit_w(dt)
                served = 1.0 if available >= deficit else available / deficit
                pv_to_loads = pv * served
                discharge = deficit * served
        battery_loss = pack.apply(-discharge, dt) if discharge > 0.0 else 0.0
        if served < 1.0:
            # dark part of the step: the MPPT still charges (the BMS allows charging)
            dark = dt * (1.0 - served)
            charge = min(pv, pack.charge_limit_w(dark, self.charge_setpoint_w)) * (1.0 - served)
        if charge > 0.0:
            battery_loss += pack.apply(charge, dt)
        f.pv_available += pv * dt_h
        f.pv += (pv_to_loads + charge) * dt_h
        f.load_demand += demand * dt_h
        f.load += demand * served * dt_h
        f.base += self.base_w * served * dt_h
        f.compute += compute_w * served * dt_h
        f.fan += fan * served * dt_h
        f.inverter_loss += loss * served * dt_h
        f.charge += charge * dt_h
        f.discharge += discharge * dt_h
        f.battery_loss += battery_loss
        f.unmet += demand * (1.0 - served) * dt_h
        heat = compute_w * served
        f.heat_room += heat * damper * dt_h
        f.heat_vented += heat * (1.0 - damper) * dt_h
        f.brownout = f.brownout or served < 1.0
        self.room_temp_c = self.room.step(self.room_temp_c, outdoor, heat * damper, dt)
        return outdoor

    # ------------------------------------------------------------------ snapshot

    def _snapshot(self, f: _Flows, dt_s: float, at: datetime, outdoor_c: float) -> PlantSnapshot:
        pack = self.pack
        per_h = 3600.0 / dt_s if dt_s > 0 else 0.0
        battery_w = (f.charge - f.discharge) * per_h
        volts = pack.voltage_v(battery_w)
        pv_w = f.pv * per_h
        pv_avail_w = f.pv_available * per_h
        load_w = f.load * per_h
        if pv_avail_w > 1.0:
            t_cell = outdoor_c + 25.0 * pv_avail_w / self.pdc_w
            vmp = _STRING_VMP_V * (1.0 + _VMP_TEMP_COEFF * (t_cell - 25.0))
            throttled = 1.0 - pv_w / pv_avail_w
            pv_v = vmp + (_STRING_VOC_V - _STRING_VMP_V) * throttled
        else:
            pv_v = 0.0
        ac_limit = self.config.array.ac_limit_w
        c = self._c
        return PlantSnapshot(
            at=at,
            dt_s=dt_s,
            pv_available_w=pv_avail_w,
            pv_power_w=pv_w,
            curtailed_w=pv_avail_w - pv_w,
            pv_voltage_v=pv_v,
            load_demand_w=f.load_demand * per_h,
            load_power_w=load_w,
            base_load_w=f.base * per_h,
            compute_power_w=f.compute * per_h,
            fan_power_w=f.fan * per_h,
            inverter_loss_w=f.inverter_loss * per_h,
            inverter_on=self.inverter_on,
            inverter_temp_c=outdoor_c + 8.0 + 25.0 * min(1.0, (load_w + abs(battery_w)) / ac_limit),
            battery_power_w=battery_w,
            battery_voltage_v=volts,
            battery_current_a=battery_w / volts if volts > 0 else 0.0,
            battery_temp_c=outdoor_c
            + 5.0
            + 3.0 * abs(battery_w) / max(pack.charge_max_w, pack.discharge_max_w),
            soc_pct=pack.soc_pct,
            energy_wh=pack.energy_wh,
            reserve_pct=self.reserve_pct,
            charge_setpoint_w=self.charge_setpoint_w,
            charge_limit_w=pack.charge_max_w * pack.taper_factor()
            if pack.soc_pct < pack.soc_max_pct
            else 0.0,
            discharge_limit_w=pack.discharge_max_w if pack.discharge_enabled else 0.0,
            brownout=f.brownout,
            bms_cutoff=not pack.discharge_enabled,
            room_temp_c=self.room_temp_c,
            outdoor_temp_c=outdoor_c,
            damper_pct=self.damper_pct,
            heat_to_room_w=f.heat_room * per_h,
            heat_vented_w=f.heat_vented * per_h,
            counters=EnergyCounters(
                pv_available_wh=c.pv_available,
                pv_wh=c.pv,
                curtailed_wh=c.pv_available - c.pv,
                load_demand_wh=c.load_demand,
                load_wh=c.load,
                compute_wh=c.compute,
                fan_wh=c.fan,
                inverter_loss_wh=c.inverter_loss,
                charge_wh=c.charge,
                discharge_wh=c.discharge,
                battery_loss_wh=c.battery_loss,
                unmet_wh=c.unmet,
                heat_to_room_wh=c.heat_room,
                heat_vented_wh=c.heat_vented,
            ),
        )
