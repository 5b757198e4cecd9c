"""Heat accounting: where the compute's energy went as heat, and how warm the home stayed.

Every watt the node draws ends as heat, so heat delivered = IT energy. The damper splits it
between the room and the vent. Heat *used* is what reached the room while heat was wanted;
the energy reuse factor follows ISO/IEC 30134-6 (ERF = reused energy / IT energy). The comfort
deficit integrates how far the room sat below setpoint - band while heat was wanted (K·h).

One ``HeatLedger`` is updated per step by the daemon (measured room) and by replay (simulated
room); ``as_dict``/``from_dict`` let the daemon keep it across restarts in the store's kv table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class HeatLedger:
    comfort_floor_c: float
    heat_delivered_wh: float = 0.0  # = IT energy: all compute power becomes heat
    heat_to_room_wh: float = 0.0  # through the damper, wanted or not
    heat_used_wh: float = 0.0  # to the room while heat was wanted
    heat_vented_wh: float = 0.0
    comfort_deficit_kh: float = 0.0
    wanted_s: float = 0.0
    unmeasured_wanted_s: float = 0.0  # wanted, but no room temperature to judge comfort
    elapsed_s: float = 0.0

    def record(self, dt_s: float, compute_power_w: float, damper_pct: float, wanted: bool,
               room_temp_c: float | None, room_temp_end_c: float | None = None) -> None:
        """Account one step of ``dt_s`` with the compute at ``compute_power_w``.

        ``room_temp_c`` is the room at the start of the step (None when unknown); with
        ``room_temp_end_c`` too, the deficit is integrated by the trapezoid rule.
        """
        for name, value in (("dt_s", dt_s), ("compute_power_w", compute_power_w)):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (0.0 <= damper_pct <= 100.0):
            raise ValueError(f"damper_pct must be within 0..100, got {damper_pct!r}")
        h = dt_s / 3600.0
        total_wh = compute_power_w * h
        room_wh = total_wh * damper_pct / 100.0
        self.elapsed_s += dt_s
        self.heat_delivered_wh += total_wh
        self.heat_to_room_wh += room_wh
        self.heat_vented_wh += total_wh - room_wh
        if not wanted:
            return
        self.wanted_s += dt_s
        self.heat_used_wh += room_wh
        if room_temp_c is None:
            self.unmeasured_wanted_s += dt_s
            return
        gap0 = max(0.0, self.comfort_floor_c - room_temp_c)
        gap1 = gap0 if room_temp_end_c is None else max(0.0, self.comfort_floor_c - room_temp_end_c)
        self.comfort_deficit_kh += (gap0 + gap1) / 2.0 * h

    @property
    def it_energy_wh(self) -> float:
        return self.heat_delivered_wh

    @property
    def erf(self) -> float:
        """Energy reuse factor; 0 when the node used no energy (nothing could be reused)."""
        return self.heat_used_wh / self.heat_delivered_wh if self.heat_delivered_wh > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """The figures for replay JSON, the API and persistence (units in the keys)."""
        out = asdict(self)
        out["it_energy_wh"] = self.it_energy_wh
        out["erf"] = self.erf
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeatLedger:
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in data.items() if k in known})
