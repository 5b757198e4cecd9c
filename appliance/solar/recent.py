"""The last days of measured slots: what the nowcast and the day persistence read.

A ring of slots keyed by slot number (slot start // step). Window sums of measured and
clear-sky power over any [a, b) of slot numbers come from one cumulative sum, so the learner can
ask "what was the clear-sky index in the hour before each of these 96 issue times" at once.
Besides the slots that define an index, it remembers the bright slots that could not be used
(curtailed measurements): a window whose usable part is a small, biased share of its daylight
must not speak for the whole day (``possible_w``, the coverage test's denominator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.state import FloatArray

SPAN_S = 6 * 86400.0
EMPTY = np.iinfo(np.int64).min  # no slot here (slot numbers are negative before 1970)


@dataclass
class RecentSlots:
    step_s: float
    slot_no: np.ndarray
    meas_w: FloatArray
    clear_w: FloatArray
    possible_w: FloatArray  # clear-sky power of bright slots, usable or not
    _cache: tuple[int, FloatArray, FloatArray, FloatArray] | None = field(default=None, repr=False)

    @classmethod
    def empty(cls, step_s: float) -> RecentSlots:
        n = int(math.ceil(SPAN_S / step_s))
        return cls(step_s, np.full(n, EMPTY, dtype=np.int64), np.zeros(n), np.zeros(n), np.zeros(n))

    @property
    def size(self) -> int:
        return int(self.slot_no.shape[0])

    def add(self, slots: np.ndarray, meas_w: FloatArray, clear_w: FloatArray,
            possible_w: FloatArray | None = None) -> None:
        """Record completed slots (``clear_w`` is 0 for slots too dim, or too uncertain, to
        define an index; ``possible_w`` their clear-sky power if they were bright)."""
        self._cache = None
        pos = slots % self.size
        self.slot_no[pos] = slots
        self.meas_w[pos] = np.where(clear_w > 0, meas_w, 0.0)
        self.clear_w[pos] = clear_w
        self.possible_w[pos] = clear_w if possible_w is None else possible_w

    def _cumsums(self) -> tuple[int, FloatArray, FloatArray, FloatArray]:
        if self._cache is not None:
            return self._cache
        newest = int(self.slot_no.max())
        first = newest - self.size + 1
        expected = first + np.arange(self.size)
        pos = expected % self.size
        valid = self.slot_no[pos] == expected
        m = np.where(valid, self.meas_w[pos], 0.0)
        c = np.where(valid, self.clear_w[pos], 0.0)
        p = np.where(valid, self.possible_w[pos], 0.0)
        self._cache = (
            first,
            np.concatenate(([0.0], np.cumsum(m))),
            np.concatenate(([0.0], np.cumsum(c))),
            np.concatenate(([0.0], np.cumsum(p))),
        )
        return self._cache

    def window(self, end_slot: np.ndarray, width: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(sum measured W, sum clear W, sum possible W) over slots [end_slot - width, end_slot)."""
        end_slot = np.asarray(end_slot, dtype=np.int64)
        if self.slot_no.max() == EMPTY:
            z = np.zeros(end_slot.shape)
            return z, z.copy(), z.copy()
        first, cm, cc, cp = self._cumsums()
        hi = np.clip(end_slot - first, 0, self.size)
        lo = np.clip(end_slot - width - first, 0, self.size)
        return cm[hi] - cm[lo], cc[hi] - cc[lo], cp[hi] - cp[lo]

    def window_one(self, end_slot: int, width: int) -> tuple[float, float, float]:
        """``window`` for a single end: direct sums, no cumulative arrays (the forecast path)."""
        slots = np.arange(end_slot - width, end_slot, dtype=np.int64)
        pos = slots % self.size
        valid = self.slot_no[pos] == slots
        return (float(self.meas_w[pos][valid].sum()), float(self.clear_w[pos][valid].sum()),
                float(self.possible_w[pos][valid].sum()))

    def to_dict(self) -> dict[str, Any]:
        keep = self.slot_no != EMPTY
        return {
            "step_s": self.step_s,
            "slot_no": self.slot_no[keep].tolist(),
            "meas_w": np.round(self.meas_w[keep], 2).tolist(),
            "clear_w": np.round(self.clear_w[keep], 2).tolist(),
            "possible_w": np.round(self.possible_w[keep], 2).tolist(),
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
                np.asarray(data["possible_w"], dtype=float) if "possible_w" in data else None,
            )
        return out
