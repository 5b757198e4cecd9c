"""The array's effective scale and shape, learned from the upper envelope of its own power.

Installers' kWp, tilt and azimuth are often wrong, and soiling or shading change them. Under
a clear sky, measured power over modelled clear-sky power is the array's true scale at that
hour; clouds only push the ratio down. So a high quantile of that ratio, per local solar hour
(faded over weeks), is the effective scale there: a wrong kWp shows as a level, a wrong
azimuth as a slope across the day. Few samples lean on the all-day value, then on 1 (trust
the configuration until the data says otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.solar.quantiles import hist_quantile
from appliance.state import FloatArray

BIN_WIDTH = 0.02
N_BINS = 90  # ratios 0 .. 1.8
ENVELOPE_QUANTILE = 0.9
HALF_LIFE_DAYS = 30.0
HOUR_PRIOR_SLOTS = 20.0  # slots of one hour's data worth as much as the all-day value
ALL_PRIOR_SLOTS = 40.0  # slots worth as much as the configured scale (1.0)
MIN_SCALE, MAX_SCALE = 0.3, 1.8


def _quantile(hist: FloatArray, q: float) -> FloatArray:
    return hist_quantile(hist, q, 0.0, BIN_WIDTH)


@dataclass
class ScaleEnvelope:
    hist: FloatArray = field(default_factory=lambda: np.zeros((24, N_BINS)))
    _scale: FloatArray | None = field(default=None, repr=False)
    _overall: float | None = field(default=None, repr=False)

    def update(self, hour: np.ndarray, ratio: FloatArray, elapsed_days: float) -> None:
        """Add measured/clear ratios of bright slots; fade older ones."""
        self.hist *= 0.5 ** (elapsed_days / HALF_LIFE_DAYS)
        b = np.clip((ratio / BIN_WIDTH).astype(np.int64), 0, N_BINS - 1)
        np.add.at(self.hist, (hour, b), 1.0)
        self._scale = None
        self._overall = None

    def scale_by_hour(self) -> FloatArray:
        """Effective scale per local solar hour (1.0 = the configuration is right)."""
        if self._scale is not None:
            return self._scale
        n_hour = self.hist.sum(axis=1)
        n_all = float(n_hour.sum())
        q_all = float(_quantile(self.hist.sum(axis=0), ENVELOPE_QUANTILE)) if n_all > 0 else 1.0
        g_all = (n_all * q_all + ALL_PRIOR_SLOTS) / (n_all + ALL_PRIOR_SLOTS)
        q_hour = np.where(n_hour > 0, _quantile(self.hist, ENVELOPE_QUANTILE), g_all)
        g = (n_hour * q_hour + HOUR_PRIOR_SLOTS * g_all) / (n_hour + HOUR_PRIOR_SLOTS)
        self._scale = np.clip(g, MIN_SCALE, MAX_SCALE)
        return self._scale

    def overall(self) -> float:
        """One number for people: the scale at the hours with most data."""
        if self._overall is None:
            n_hour = self.hist.sum(axis=1)
            g = self.scale_by_hour()
            self._overall = float(np.average(g, weights=n_hour)) if n_hour.sum() > 0 else 1.0
        return self._overall

    def to_dict(self) -> dict[str, Any]:
        return {"hist": np.round(self.hist, 3).tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScaleEnvelope:
        hist = np.asarray(data["hist"], dtype=float)
        if hist.shape != (24, N_BINS):
            raise ValueError(
                f"saved scale envelope has shape {hist.shape}, expected (24, {N_BINS})"
            )
        return cls(hist=hist)
