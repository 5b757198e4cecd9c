"""A LiFePO4 battery pack as its BMS sees it: energy, limits, voltage.

Energy is the state; power at the terminals is what flows in or out (positive = charging).
One-way efficiency is the square root of the round trip, so a full cycle loses what the
datasheet says. Charge power tapers linearly to zero over the last few percent below
``soc_max`` (the constant-voltage phase); at ``soc_min`` the BMS opens the discharge path
(low-voltage cut-off) and keeps it open until the pack has recovered ``release_pct``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

# Open-circuit voltage of one LiFePO4 cell against state of charge (rest, 25 C): the long flat
# plateau is why SoC cannot be read from voltage, and why the BMS counts coulombs.
_OCV_SOC_PCT = (0.0, 5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 90.0, 95.0, 100.0)
_OCV_CELL_V = (2.80, 3.10, 3.20, 3.25, 3.28, 3.30, 3.32, 3.35, 3.40, 3.50)
CELL_NOMINAL_V = 3.2
CELL_MAX_V = 3.65
CELL_MIN_V = 2.5


def cell_ocv_v(soc_pct: float) -> float:
    """Open-circuit cell voltage at ``soc_pct`` (linear between table points)."""
    if soc_pct <= _OCV_SOC_PCT[0]:
        return _OCV_CELL_V[0]
    if soc_pct >= _OCV_SOC_PCT[-1]:
        return _OCV_CELL_V[-1]
    i = bisect_right(_OCV_SOC_PCT, soc_pct) - 1
    f = (soc_pct - _OCV_SOC_PCT[i]) / (_OCV_SOC_PCT[i + 1] - _OCV_SOC_PCT[i])
    return _OCV_CELL_V[i] + f * (_OCV_CELL_V[i + 1] - _OCV_CELL_V[i])


@dataclass
class LifePo4Pack:
    """Pack state and limits; ``energy_wh`` is what is stored (0 .. capacity_wh)."""

    capacity_wh: float
    soc_min_pct: float
    soc_max_pct: float
    charge_max_w: float
    discharge_max_w: float
    one_way_efficiency: float
    energy_wh: float
    cells_series: int = 16
    resistance_ohm: float = 0.025
    taper_start_pct: float = 95.0
    release_pct: float = 2.0
    discharge_enabled: bool = True  # False after a low-voltage cut-off until recovered

    @property
    def soc_pct(self) -> float:
        return 100.0 * self.energy_wh / self.capacity_wh

    @property
    def nominal_v(self) -> float:
        return self.cells_series * CELL_NOMINAL_V

    @property
    def e_min_wh(self) -> float:
        return self.capacity_wh * self.soc_min_pct / 100.0

    @property
    def e_max_wh(self) -> float:
        return self.capacity_wh * self.soc_max_pct / 100.0

    def taper_factor(self) -> float:
        """Share of the charge limit the BMS accepts at the present SoC (CV phase near full)."""
        start = min(self.taper_start_pct, self.soc_max_pct - 0.5)
        soc = self.soc_pct
        if soc <= start:
            return 1.0
        return max(0.0, (self.soc_max_pct - soc) / (self.soc_max_pct - start))

    def charge_limit_w(self, dt_s: float, setpoint_w: float | None = None) -> float:
        """Most charge power (terminal W) for ``dt_s`` without passing soc_max."""
        limit = self.charge_max_w * self.taper_factor()
        if setpoint_w is not None:
            limit = min(limit, setpoint_w)
        headroom_w = (
            max(0.0, self.e_max_wh - self.energy_wh) * 3600.0 / (self.one_way_efficiency * dt_s)
        )
        return max(0.0, min(limit, headroom_w))

    def discharge_limit_w(self, dt_s: float) -> float:
        """Most discharge power (terminal W) for ``dt_s`` without passing soc_min."""
        if not self.discharge_enabled:
            return 0.0
        available_w = (
            max(0.0, self.energy_wh - self.e_min_wh) * 3600.0 * self.one_way_efficiency / dt_s
        )
        return max(0.0, min(self.discharge_max_w, available_w))

    def apply(self, power_w: float, dt_s: float) -> float:
        """Move ``power_w`` (terminal, + charging) for ``dt_s``; returns the internal loss (Wh)."""
        dt_h = dt_s / 3600.0
        if power_w >= 0.0:
            stored = power_w * dt_h * self.one_way_efficiency
            loss = power_w * dt_h - stored
            self.energy_wh = min(self.capacity_wh, self.energy_wh + stored)
        else:
            drawn = -power_w * dt_h / self.one_way_efficiency
            loss = drawn + power_w * dt_h
            self.energy_wh = max(0.0, self.energy_wh - drawn)
        self._update_cutoff()
        return loss

    def _update_cutoff(self) -> None:
        soc = self.soc_pct
        if self.discharge_enabled and soc <= self.soc_min_pct + 1e-9:
            self.discharge_enabled = False
        elif not self.discharge_enabled and soc >= self.soc_min_pct + self.release_pct:
            self.discharge_enabled = True

    def voltage_v(self, power_w: float) -> float:
        """Terminal voltage with ``power_w`` flowing (+ charging raises it through R)."""
        ocv = self.cells_series * cell_ocv_v(self.soc_pct)
        current = power_w / ocv if ocv > 0 else 0.0
        return ocv + current * self.resistance_ohm
