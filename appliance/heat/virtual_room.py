"""A simulated room behind the router, for replay: the same router and ledger as the live box.

Replay has no room sensor, so the room is the configured RC model (1R1C or 2R2C) heated by the
share of compute power the router sends in, plus solar gain when irradiance is known. With
routing off every watt is vented: the baseline the routed replay is compared against.

Per replay step the caller gives the step's start, its length, the node's power and the
outdoor temperature; ``step`` returns the router's decision and updates ``ledger``.
"""

from __future__ import annotations

from datetime import datetime

from appliance.clock import as_utc
from appliance.config import HeatConfig
from appliance.heat.ledger import HeatLedger
from appliance.heat.room import room_model_from_config, step_state
from appliance.heat.router import HeatDecision, HeatRouter
from appliance.heat.schedule import ComfortSchedule
from appliance.state import Channel, Event, Reading


class VirtualRoom:
    def __init__(self, heat: HeatConfig, tz: str, *, routing: bool = True,
                 start_temp_c: float | None = None, outdoor_c: float | None = None) -> None:
        self.heat = heat
        self.routing = routing
        self.schedule = ComfortSchedule.from_config(heat, tz)
        self.model = room_model_from_config(heat)
        self.router = HeatRouter(heat, self.schedule)
        self.ledger = HeatLedger(comfort_floor_c=self.schedule.comfort_floor_c)
        temp = heat.setpoint_c if start_temp_c is None else start_temp_c
        self.state = self.model.initial_state(temp, temp if outdoor_c is None else outdoor_c)
        self.events: list[Event] = []
        self.min_temp_c = temp
        self.max_temp_c = temp

    @property
    def room_temp_c(self) -> float:
        return float(self.state[0])

    def step(self, at: datetime, dt_s: float, compute_power_w: float, outdoor_c: float,
             solar_w_m2: float = 0.0) -> HeatDecision:
        at = as_utc(at)
        temp0 = self.room_temp_c
        if self.routing:
            reading = Reading(value=temp0, at=at, stale_after_s=self.heat.sensor_stale_after_s,
                              source=f"virtual-room.{Channel.ROOM_TEMP_C.value}")
            decision = self.router.decide(at, reading, outdoor_c, compute_power_w)
            self.events.extend(decision.events)
        else:
            decision = HeatDecision(at=at, damper_pct=0.0, reason="heat routing off: vent",
                                    wanted=self.schedule.wanted(at), room_temp_c=temp0)
        heat_w = decision.heat_to_room_w(compute_power_w)
        self.state = step_state(self.model, self.state, outdoor_c, heat_w, dt_s, solar_w_m2)
        temp1 = self.room_temp_c
        self.min_temp_c = min(self.min_temp_c, temp1)
        self.max_temp_c = max(self.max_temp_c, temp1)
        self.ledger.record(dt_s, max(0.0, compute_power_w), decision.damper_pct, decision.wanted,
                           temp0, temp1)
        return decision

    def summary(self) -> dict[str, float]:
        """The replay JSON's heat figures (plus the room's range)."""
        out = self.ledger.as_dict()
        out["room_min_temp_c"] = self.min_temp_c
        out["room_max_temp_c"] = self.max_temp_c
        return out
