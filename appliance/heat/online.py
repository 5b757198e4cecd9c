"""Online refinement of the room's 1R1C parameters from the box's own sensors.

Raw samples (every control cycle) are folded into windows of ``window_s``. Over a window the
1R1C balance integrates exactly:

    T_end - T_start = (1/(R C)) * ∫(T_out - T) dt + (1/C) * ∫P dt

which is linear in theta = [1/(RC), 1/C] for any window length, with the integrals taken by
the trapezoid rule over the samples. Recursive least squares with a forgetting factor tracks
theta, starting from the configured R and C as a prior (scaled so both components are ~1).

Guards, because a wrong model is worse than an old one:
- a window with a gap longer than ``max_gap_s`` or a missing value is dropped;
- a window whose regressors would move the room less than ``min_signal_k`` (no excitation:
  room at outdoor temperature and no heat) is skipped *before* forgetting, so the covariance
  cannot wind up during a quiet spell;
- the estimate is published only after ``min_windows`` updates, when both relative standard
  deviations are below ``max_rel_std``, and when R and C lie within ``bound_factor`` of the
  prior (and inside the config's limits). Otherwise ``model`` stays what it was and
  ``status`` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from appliance.clock import as_utc
from appliance.heat.room import RoomModel
from appliance.state import FloatArray

R_LIMITS = (1e-5, 10.0)  # the [heat] config's accepted range
C_LIMITS = (1e3, 1e10)


@dataclass
class _Window:
    start_at: datetime
    start_temp_c: float
    last_at: datetime
    last_temp_c: float
    last_outdoor_c: float
    last_heat_w: float
    int_drive_ks: float = 0.0  # ∫(T_out - T) dt, K·s
    int_heat_j: float = 0.0  # ∫P dt, J
    max_gap_s: float = 0.0


class OnlineRoomEstimator:
    """Feed ``add(at, room_temp_c, outdoor_c, heat_w)``; read ``model`` and ``status``.

    ``heat_w`` is all heat into the room: the compute's share through the damper plus any
    other heater the box knows of.
    """

    def __init__(self, prior: RoomModel, *, window_s: float = 10800.0, max_gap_s: float = 300.0,
                 forgetting: float = 0.998, noise_k: float = 0.1, min_signal_k: float = 0.2,
                 min_windows: int = 24, max_rel_std: float = 0.15,
                 bound_factor: float = 4.0) -> None:
        if not (0.9 <= forgetting <= 1.0):
            raise ValueError("forgetting must be within 0.9..1.0")
        if window_s <= 0 or max_gap_s <= 0 or noise_k <= 0 or bound_factor <= 1:
            raise ValueError("window_s, max_gap_s, noise_k must be > 0 and bound_factor > 1")
        self.prior = prior
        self.model = prior
        self.window_s = window_s
        self.max_gap_s = max_gap_s
        self.forgetting = forgetting
        self.noise_k = noise_k
        self.min_signal_k = min_signal_k
        self.min_windows = min_windows
        self.max_rel_std = max_rel_std
        self.bound_factor = bound_factor
        # theta = scale * beta; beta starts at 1 with unit prior variance (±100 %).
        self._scale = np.array([1.0 / (prior.r_k_per_w * prior.c_j_per_k), 1.0 / prior.c_j_per_k])
        self._beta = np.ones(2)
        self._cov = np.eye(2)
        self.updates = 0
        self.skipped = 0
        self.status = "collecting: no window yet"
        self._window: _Window | None = None

    # ------------------------------------------------------------------ feeding

    def add(self, at: datetime, room_temp_c: float | None, outdoor_c: float | None,
            heat_w: float | None) -> RoomModel | None:
        """Add one sample; returns the new model when this sample published one."""
        at = as_utc(at)
        if room_temp_c is None or outdoor_c is None or heat_w is None or not all(
                math.isfinite(v) for v in (room_temp_c, outdoor_c, heat_w)):
            self._window = None
            self.status = "window dropped: a sample lacked a value"
            return None
        w = self._window
        if w is None:
            self._window = _Window(at, room_temp_c, at, room_temp_c, outdoor_c, heat_w)
            return None
        dt = (at - w.last_at).total_seconds()
        if dt <= 0:
            return None  # duplicate or out-of-order sample: ignore it
        drive0, drive1 = w.last_outdoor_c - w.last_temp_c, outdoor_c - room_temp_c
        w.int_drive_ks += 0.5 * (drive0 + drive1) * dt
        w.int_heat_j += 0.5 * (w.last_heat_w + heat_w) * dt
        w.max_gap_s = max(w.max_gap_s, dt)
        w.last_at, w.last_temp_c = at, room_temp_c
        w.last_outdoor_c, w.last_heat_w = outdoor_c, heat_w
        if (at - w.start_at).total_seconds() < self.window_s:
            return None
        self._window = _Window(at, room_temp_c, at, room_temp_c, outdoor_c, heat_w)
        return self._close(w)

    def _close(self, w: _Window) -> RoomModel | None:
        if w.max_gap_s > self.max_gap_s:
            self.skipped += 1
            self.status = f"window dropped: {w.max_gap_s:.0f} s gap > {self.max_gap_s:g} s"
            return None
        phi = np.array([w.int_drive_ks, w.int_heat_j]) * self._scale
        if float(np.max(np.abs(phi))) < self.min_signal_k:
            self.skipped += 1
            self.status = "window skipped: too little excitation (room near outdoor, no heat)"
            return None
        y = w.last_temp_c - w.start_temp_c
        self._rls(phi, y)
        self.updates += 1
        return self._publish()

    def _rls(self, phi: FloatArray, y: float) -> None:
        lam, r = self.forgetting, self.noise_k**2
        p = self._cov
        gain = p @ phi / (lam * r + float(phi @ p @ phi))
        self._beta = self._beta + gain * (y - float(phi @ self._beta))
        p = (p - np.outer(gain, phi @ p)) / lam
        p = 0.5 * (p + p.T)
        # Cap at the prior so forgetting cannot inflate what we know beyond what we assumed.
        self._cov = p if np.trace(p) <= 2.0 else p * (2.0 / np.trace(p))

    # ------------------------------------------------------------------ publishing

    def _publish(self) -> RoomModel | None:
        if self.updates < self.min_windows:
            self.status = f"learning: {self.updates}/{self.min_windows} windows"
            return None
        b0, b1 = float(self._beta[0]), float(self._beta[1])
        if b0 <= 0 or b1 <= 0:
            self.status = "estimate rejected: non-physical (negative) parameters"
            return None
        rel = np.sqrt(np.diag(self._cov)) / np.abs(self._beta)
        if float(np.max(rel)) > self.max_rel_std:
            self.status = (f"learning: uncertainty {float(np.max(rel)) * 100:.0f} % > "
                           f"{self.max_rel_std * 100:.0f} %")
            return None
        theta = self._beta * self._scale
        c = 1.0 / float(theta[1])
        r = float(theta[1] / theta[0])
        f = self.bound_factor
        if not (self.prior.r_k_per_w / f <= r <= self.prior.r_k_per_w * f
                and self.prior.c_j_per_k / f <= c <= self.prior.c_j_per_k * f
                and R_LIMITS[0] <= r <= R_LIMITS[1] and C_LIMITS[0] <= c <= C_LIMITS[1]):
            self.status = (f"estimate rejected: R={r:.4g} K/W, C={c:.4g} J/K outside "
                           f"x{f:g} of the prior")
            return None
        self.model = RoomModel(r_k_per_w=r, c_j_per_k=c,
                               solar_aperture_m2=self.prior.solar_aperture_m2)
        self.status = (f"refined: R={r:.4g} K/W, C={c:.4g} J/K (±{float(np.max(rel)) * 100:.0f} %, "
                       f"{self.updates} windows)")
        return self.model

    # ------------------------------------------------------------------ persistence

    def to_dict(self) -> dict[str, Any]:
        """Learned state for the store's kv table (the open window is not kept)."""
        return {"beta": self._beta.tolist(), "cov": self._cov.tolist(), "updates": self.updates,
                "skipped": self.skipped, "status": self.status,
                "model": [self.model.r_k_per_w, self.model.c_j_per_k],
                "prior": [self.prior.r_k_per_w, self.prior.c_j_per_k]}

    def restore(self, data: dict[str, Any]) -> bool:
        """Take back learned state if it was learned from the same prior; False otherwise."""
        prior = data.get("prior")
        if not prior or not np.allclose(prior, [self.prior.r_k_per_w, self.prior.c_j_per_k]):
            return False
        self._beta = np.array(data["beta"], dtype=float)
        self._cov = np.array(data["cov"], dtype=float)
        self.updates = int(data["updates"])
        self.skipped = int(data.get("skipped", 0))
        self.status = str(data.get("status", self.status))
        r, c = data["model"]
        self.model = RoomModel(r_k_per_w=float(r), c_j_per_k=float(c),
                               solar_aperture_m2=self.prior.solar_aperture_m2)
        return True
