"""What the box really draws when no job runs: learned from its own meters, for the planner.

The configured base load (router, modem, controller) plus the node's idle power is a
nameplate figure; the inverter's standby and conversion losses, a damper fan and the node's
real idle come on top. Planning on the nameplate makes every night longer than planned. The
box sees it all in one number: what the DC bus delivers (PV minus battery charging) minus what
the jobs draw. An exponentially weighted mean of that, never below the nameplate, is what the
planner plans the essentials with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from appliance.config import SunboxConfig

TIME_CONSTANT_S = 6 * 3600.0  # slow: the essentials change with seasons and fans, not minutes


@dataclass
class EssentialLoad:
    nameplate_w: float
    estimate_w: float | None = None
    last_at: datetime | None = None

    @classmethod
    def from_config(cls, config: SunboxConfig) -> EssentialLoad:
        return cls(nameplate_w=config.loads.base_w + config.compute.idle_w)

    def update(self, at: datetime, pv_w: float | None, battery_w: float | None, jobs_w: float) -> None:
        """One measurement: ``battery_w`` positive when charging, ``jobs_w`` above the node's idle."""
        if pv_w is None or battery_w is None:
            return
        sample = max(0.0, pv_w - battery_w - jobs_w)
        if self.estimate_w is None or self.last_at is None:
            self.estimate_w, self.last_at = sample, at
            return
        dt = max(0.0, (at - self.last_at).total_seconds())
        alpha = 1.0 - math.exp(-dt / TIME_CONSTANT_S)
        self.estimate_w += alpha * (sample - self.estimate_w)
        self.last_at = at

    @property
    def value_w(self) -> float:
        """What to plan with: the learned draw, never below the nameplate."""
        return max(self.nameplate_w, self.estimate_w if self.estimate_w is not None else self.nameplate_w)
