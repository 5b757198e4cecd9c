"""The last days of measured slots: what the nowcast and the day persistence read.

A ring of slots keyed by slot number (slot start // step). Window sums of measured and
clear-sky power over any [a, b) of slot numbers come from one cumulative sum, so the learner can
ask "what was the clear-sky index in the hour before each of these 96 issue times" at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.state import FloatArray

SPAN_S = 6 * 86400.0


@dataclass
class RecentSlots:
    step_s: float
    slot_no: np.ndarray
    meas_w: FloatArray
    clear_w: FloatArray
    _cache: tuple[int, FloatArray, FloatArray] | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, step_s: float) -> RecentSlots:
        n = int(math.ceil(SPAN_S / step_s))
        return cls(step_s, np.full(n, -1, dtype=np.int64), np.zeros(n), np.zeros(n))

    @property
    def size(self) -> int:
        return int(self.slot_no.shape[0])

    def add(self, slots: np.ndarray, meas_w: FloatArray, clear_w: FloatArray) -> None:
        """Record completed slots (``clear_w`` is 0 for slots too dim to define an index)."""
        self._cache = None
        pos = slots % self.size
        self.slot_no[pos] = slots
        self.meas_w[pos] = np.where(clear_w > 0, meas_w, 0.0)
        self.clear_w[pos] = clear_w

    def _cumsums(self) -> tuple[int, FloatArray, FloatArray]:
        if self._cache is not None:
            return self._cache
        newest = int(self.slot_no.max())
        first = newest - self.size + 1
        expected = first + np.arange(self.size)
        pos = expected % self.size
        valid = self.slot_no[pos] == expected
        m = np.where(valid, self.meas_w[pos], 0.0)
        c = np.where(valid, self.clear_w[pos], 0.0)
        self._cache = (
            first,
            np.concatenate(([0.0], np.cumsum(m))),
            np.concatenate(([0.0], np.cumsum(c))),
        )
        return self._cache

    def window(self, end_slot: np.ndarray, width: int) -> tuple[FloatArray, FloatArray]:
        """(sum measured W, sum clear W) over slots [end_slot - width, end_slot) for each end."""
        end_slot = np.asarray(end_slot, dtype=np.int64)
        if self.slot_no.max() < 0:
            z = np.zeros(end_slot.shape)
            return z, z.copy()
        first, cm, cc = self._cumsums()
        hi = np.clip(end_slot - first, 0, self.size)
        lo = np.clip(end_slot - width - first, 0, self.size)
        return cm[hi] - cm[lo], cc[hi] - cc[lo]

    def window_one(self, end_slot: int, width: int) -> tuple[float, float]:
        """``window`` for a single end: direct sums, no cumulative arrays (the forecast path)."""
        slots = np.arange(end_slot - width, end_slot, dtype=np.int64)
        pos = slots % self.size
        valid = self.slot_no[pos] == slots
        return float(self.meas_w[pos][valid].sum()), float(self.clear_w[pos][valid].sum())

    def to_dict(self) -> dict[str, Any]:
        keep = self.slot_no >= 0
        return {
            "step_s": self.step_s,
            "slot_no": self.slot_no[keep].tolist(),
            "meas_w": np.round(self.meas_w[keep], 2).tolist(),
            "clear_w": np.round(self.clear_w[keep], 2).tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], step_s: float) -> RecentSlots:
        out = cls.empty(step_s)
        if float(data.get("step_s", step_s)) != step_s:
            return out
        slots = np.asarray(data["slot_no"], dtype=np.int64)
        if slots.size:
            out.add(
                slots,
                np.asarray(data["meas_w"], dtype=float),
                np.asarray(data["clear_w"], dtype=float),
            )
        return out
