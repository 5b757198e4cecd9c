"""The site's clear-sky-index climatology, learned from its own measured power.

Without a weather feed the box still must not forecast a cloudless sky every day. It learns,
per calendar month and local solar hour, how much of the clear-sky power it actually got
(ratio of sums, so bright hours weigh more than dim ones), plus a recent-weeks value per hour
for months it has not lived through yet, and a prior for a box with no history at all.
Indices here are *raw*: measured power over the configured array's clear-sky power, so they
also absorb a wrong kWp; ``ScaleEnvelope`` separates the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.state import FloatArray

MONTH_PRIOR_H = 5.0  # hours of a month-hour bin's data worth as much as the fallback
RECENT_PRIOR_H = 3.0  # hours of recent data worth as much as the prior
RECENT_HALF_LIFE_DAYS = 10.0


def _zeros(*shape: int) -> FloatArray:
    return np.zeros(shape, dtype=float)


@dataclass
class IndexClimatology:
    prior_index: float = 0.7
    meas_wh: FloatArray = field(default_factory=lambda: _zeros(12, 24))
    clear_wh: FloatArray = field(default_factory=lambda: _zeros(12, 24))
    hours: FloatArray = field(default_factory=lambda: _zeros(12, 24))
    recent_meas_wh: FloatArray = field(default_factory=lambda: _zeros(24))
    recent_clear_wh: FloatArray = field(default_factory=lambda: _zeros(24))
    recent_hours: FloatArray = field(default_factory=lambda: _zeros(24))
    _table: FloatArray | None = field(default=None, repr=False)

    def update(
        self,
        month: np.ndarray,
        hour: np.ndarray,
        meas_w: FloatArray,
        clear_w: FloatArray,
        step_h: float,
        elapsed_days: float,
    ) -> None:
        """Add daylight slots (``clear_w`` > 0); fade the recent part by ``elapsed_days``."""
        decay = 0.5 ** (elapsed_days / RECENT_HALF_LIFE_DAYS)
        self.recent_meas_wh *= decay
        self.recent_clear_wh *= decay
        self.recent_hours *= decay
        flat = month * 24 + hour
        m = np.bincount(flat, weights=meas_w * step_h, minlength=288).reshape(12, 24)
        c = np.bincount(flat, weights=clear_w * step_h, minlength=288).reshape(12, 24)
        h = np.bincount(flat, minlength=288).reshape(12, 24) * step_h
        self.meas_wh += m
        self.clear_wh += c
        self.hours += h
        self.recent_meas_wh += m.sum(axis=0)
        self.recent_clear_wh += c.sum(axis=0)
        self.recent_hours += h.sum(axis=0)
        self._table = None

    def table(self) -> FloatArray:
        """Raw clear-sky index by [month, hour], blending month, recent and prior."""
        if self._table is not None:
            return self._table
        with np.errstate(divide="ignore", invalid="ignore"):
            recent = np.where(
                self.recent_clear_wh > 0,
                self.recent_meas_wh / self.recent_clear_wh,
                self.prior_index,
            )
            month = np.where(self.clear_wh > 0, self.meas_wh / self.clear_wh, 0.0)
        w_r = self.recent_hours / (self.recent_hours + RECENT_PRIOR_H)
        base = w_r * recent + (1.0 - w_r) * self.prior_index
        w_m = self.hours / (self.hours + MONTH_PRIOR_H)
        self._table = np.clip(w_m * month + (1.0 - w_m) * base[None, :], 0.0, 1.5)
        return self._table

    def predict(self, month: np.ndarray, hour: np.ndarray) -> FloatArray:
        return self.table()[month, hour]

    @property
    def learned_hours(self) -> float:
        return float(self.hours.sum())

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior_index": self.prior_index,
            "meas_wh": _round(self.meas_wh),
            "clear_wh": _round(self.clear_wh),
            "hours": _round(self.hours),
            "recent_meas_wh": _round(self.recent_meas_wh),
            "recent_clear_wh": _round(self.recent_clear_wh),
            "recent_hours": _round(self.recent_hours),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexClimatology:
        return cls(
            prior_index=float(data["prior_index"]),
            meas_wh=_arr(data["meas_wh"], (12, 24)),
            clear_wh=_arr(data["clear_wh"], (12, 24)),
            hours=_arr(data["hours"], (12, 24)),
            recent_meas_wh=_arr(data["recent_meas_wh"], (24,)),
            recent_clear_wh=_arr(data["recent_clear_wh"], (24,)),
            recent_hours=_arr(data["recent_hours"], (24,)),
        )


def _round(a: FloatArray, digits: int = 4) -> list[Any]:
    """JSON-friendly nested lists with bounded precision (state lives in the store's kv)."""
    out: list[Any] = np.round(a, digits).tolist()
    return out


def _arr(data: Any, shape: tuple[int, ...]) -> FloatArray:
    a = np.asarray(data, dtype=float)
    if a.shape != shape:
        raise ValueError(f"saved forecast state has shape {a.shape}, expected {shape}")
    return a
