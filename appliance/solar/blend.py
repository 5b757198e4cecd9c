"""How much each source of sky knowledge deserves, per forecast horizon, learned from errors.

Sources of the clear-sky index of a slot: the site's climatology, a weather feed (NWP), the
index measured in the last hour (nowcast) and over the last day (persistence of the weather
regime). Which one to trust depends on the horizon and on the feed: a good NWP wins day-ahead,
the last hour wins the next hour, and a biased or shifted feed should get little weight or be
corrected. So for each horizon bin the box fits a linear blend
``k = b0 + b1 clim + b2 nwp + b3 now + b4 day`` by ridge regression on its own past
(exponentially faded), weighted by clear-sky power squared so that it minimises the error in
watts. The ridge pulls towards "climatology" (and an even split with a feed the box has not yet
judged), so a source earns weight only with evidence.

A source is not always there (no feed; no daylight in the last hour), so there is one blend per
availability pattern, each trained on every slot where its sources were known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.state import FloatArray

HORIZON_EDGES_H = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 36.0, 48.0])
REPRESENTATIVE_H = np.array([0.5, 1.5, 3.0, 6.0, 12.0, 20.0, 30.0, 42.0, 60.0])
N_HORIZONS = len(REPRESENTATIVE_H)
N_FEATURES = 5  # intercept, climatology, nwp, nowcast, day
NWP, NOW, DAY = 1, 2, 4  # availability bits
N_PATTERNS = 8
RIDGE = np.array([15.0, 15.0, 15.0, 15.0, 15.0])  # in units of sum of weights (~1 day of sun)
NWP_PRIOR_WEIGHT = 0.5  # an unjudged feed shares evenly with climatology


def horizon_bin(horizon_h: FloatArray) -> np.ndarray:
    return np.searchsorted(HORIZON_EDGES_H, horizon_h, side="right")


def _pattern_features(p: int) -> np.ndarray:
    """Boolean mask of the features a pattern uses."""
    return np.array([True, True, bool(p & NWP), bool(p & NOW), bool(p & DAY)])


_MASKS = np.stack([_pattern_features(p) for p in range(N_PATTERNS)])  # (8, 5)
_PRIOR = np.zeros((N_PATTERNS, N_FEATURES))
_PRIOR[:, 1] = 1.0
for _p in range(N_PATTERNS):
    if _p & NWP:
        _PRIOR[_p, 1] = 1.0 - NWP_PRIOR_WEIGHT
        _PRIOR[_p, 2] = NWP_PRIOR_WEIGHT


@dataclass
class SourceBlend:
    a: FloatArray = field(
        default_factory=lambda: np.zeros((N_HORIZONS, N_PATTERNS, N_FEATURES, N_FEATURES))
    )
    c: FloatArray = field(default_factory=lambda: np.zeros((N_HORIZONS, N_PATTERNS, N_FEATURES)))
    half_life_days: float = 60.0
    _beta: FloatArray | None = field(default=None, repr=False)

    def fade(self, elapsed_days: float) -> None:
        f = 0.5 ** (elapsed_days / self.half_life_days)
        self.a *= f
        self.c *= f

    def update(
        self, hbin: int, x: FloatArray, avail: np.ndarray, y: FloatArray, w: FloatArray
    ) -> None:
        """Add samples of one horizon bin: features ``x`` (n, 5), availability, target, weight."""
        if x.shape[0] == 0:
            return
        elig = (avail[None, :] & np.arange(N_PATTERNS)[:, None]) == np.arange(N_PATTERNS)[:, None]
        ew = elig * w[None, :]  # (8, n)
        xx = x[:, :, None] * x[:, None, :]  # (n, 5, 5)
        self.a[hbin] += np.einsum("pn,nij->pij", ew, xx)
        self.c[hbin] += np.einsum("pn,ni->pi", ew, x * y[:, None])
        self._beta = None

    def update_all(self, x: FloatArray, avail: np.ndarray, y: FloatArray, w: FloatArray) -> None:
        """``update`` for every horizon bin at once: ``x`` (bins, n, 5), ``avail`` (bins, n)."""
        if x.shape[1] == 0:
            return
        p = np.arange(N_PATTERNS)[None, :, None]
        elig = (avail[:, None, :] & p) == p  # (bins, 8, n)
        ew = elig * w[None, None, :]
        xx = x[:, :, :, None] * x[:, :, None, :]  # (bins, n, 5, 5)
        self.a += np.einsum("bpn,bnij->bpij", ew, xx)
        self.c += np.einsum("bpn,bni->bpi", ew, x * y[None, :, None])
        self._beta = None

    def beta(self) -> FloatArray:
        """Blend coefficients [horizon, pattern, feature] (unused features are 0)."""
        if self._beta is not None:
            return self._beta
        mask = _MASKS[None, :, :]  # (1, 8, 5)
        pair = mask[..., :, None] & mask[..., None, :]
        a = np.where(pair, self.a, 0.0)
        eye = np.eye(N_FEATURES)[None, None]
        reg = np.where(mask[..., :, None], RIDGE[None, None, :, None] * eye, 0.0)
        unused = (~mask)[..., :, None] * eye  # identity on unused features keeps the system regular
        m = a + reg + unused
        rhs = np.where(mask, self.c + RIDGE[None, None, :] * _PRIOR[None], 0.0)
        beta: FloatArray = np.asarray(np.linalg.solve(m, rhs[..., None])[..., 0], dtype=float)
        self._beta = beta
        return beta

    def predict(self, hbin: np.ndarray, pattern: np.ndarray, x: FloatArray) -> FloatArray:
        b = self.beta()[hbin, pattern]
        return np.asarray(np.einsum("ni,ni->n", b, x), dtype=float)

    def weights_table(self, pattern: int) -> list[dict[str, float]]:
        """Readable coefficients per horizon bin for one availability pattern."""
        b = self.beta()[:, pattern]
        names = ("intercept", "climatology", "weather", "nowcast", "day")
        out = []
        for i, h in enumerate(REPRESENTATIVE_H):
            row = {"horizon_h": float(h)}
            row.update(
                {n: round(float(b[i, j]), 3) for j, n in enumerate(names) if _MASKS[pattern, j]}
            )
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": np.round(self.a, 5).tolist(),
            "c": np.round(self.c, 5).tolist(),
            "half_life_days": self.half_life_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceBlend:
        a = np.asarray(data["a"], dtype=float)
        c = np.asarray(data["c"], dtype=float)
        if a.shape != (N_HORIZONS, N_PATTERNS, N_FEATURES, N_FEATURES) or c.shape != (
            N_HORIZONS,
            N_PATTERNS,
            N_FEATURES,
        ):
            raise ValueError("saved source blend has the wrong shape")
        return cls(a=a, c=c, half_life_days=float(data.get("half_life_days", 60.0)))
