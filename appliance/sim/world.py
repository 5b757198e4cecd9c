"""The simulated world shared by every endpoint: one plant, one clock, one fault board.

The plant is stepped lazily to the clock's time whenever a request comes in, and by a
background tick otherwise, so energy keeps flowing whether or not anyone polls.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import pandas as pd

from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.sim.faults import FaultBoard
from appliance.sim.plant import Plant, PlantSnapshot

log = logging.getLogger("appliance.sim")


class SimWorld:
    """Plant + clock + faults + what the compute node draws."""

    def __init__(
        self,
        config: SunboxConfig,
        clock: Clock,
        compute_power_w: Callable[[], float] | None = None,
        weather: pd.DataFrame | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.plant = Plant(config, clock.now(), weather=weather)
        self.faults = FaultBoard(clock)
        self.compute_override_w: float | None = None
        self.rng = random.Random(config.sim.seed)
        idle = config.compute.idle_w
        self._compute_fn: Callable[[], float] = compute_power_w or (lambda: idle)
        self._last_compute_w = idle
        self._compute_error_logged = False

    @property
    def snapshot(self) -> PlantSnapshot:
        return self.plant.snapshot

    def compute_power_w(self) -> float:
        """What the node draws: the override if set, else the caller's function (last good value
        if it fails, so a bug on the box side cannot stop the world)."""
        if self.compute_override_w is not None:
            return self.compute_override_w
        try:
            value = float(self._compute_fn())
        except Exception as exc:  # noqa: BLE001 - the callback belongs to someone else
            if not self._compute_error_logged:
                log.warning(
                    "compute power callback failed (%s); holding %.0f W", exc, self._last_compute_w
                )
                self._compute_error_logged = True
            return self._last_compute_w
        if value != value or value < 0:  # NaN or negative
            return self._last_compute_w
        self._last_compute_w = value
        return value

    def advance(self) -> PlantSnapshot:
        """Step the plant to the clock's now."""
        return self.plant.advance_to(self.clock.now(), self.compute_power_w())
