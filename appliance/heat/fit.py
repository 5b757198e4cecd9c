"""Fit the room's RC model to measured indoor/outdoor temperature and heating power.

Method: output error. Parameters (log-scaled, bounded) minimise the free-run error of the air
temperature over the whole record, because the planner uses the model over a night, not one
step; the one-step error is reported beside it. 1R1C starts from a linear ARX regression;
2R2C starts from the fitted 1R1C with its resistance and capacity split several ways, and
also fits the envelope's initial temperature.

Selection (``model="auto"``): the Bayesian information criterion on the free-run residuals,
BIC = n ln(SSE/n) + k ln n, with k the fitted parameters (incl. the envelope's initial state).
2R2C is chosen only when its BIC is lower than 1R1C's by more than 2 ("positive evidence",
Kass & Raftery 1995); otherwise the simpler model stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import least_squares

from appliance.heat.record import ThermalRecord
from appliance.heat.room import (
    Room2R2CModel,
    RoomModel,
    predict_one_step,
    simulate_air,
)
from appliance.state import FloatArray

ModelKind = Literal["1r1c", "2r2c"]
BIC_MARGIN = 2.0

# Search bounds (natural units); wide enough for a hut or a house, narrow enough to keep the
# matrix exponential finite.
R_BOUNDS = (1e-5, 10.0)
C_BOUNDS = (1e3, 1e10)
A_BOUNDS = (1e-4, 1000.0)


@dataclass(frozen=True)
class FitCandidate:
    kind: ModelKind
    model: RoomModel | Room2R2CModel
    initial_state: tuple[float, ...]
    rmse_one_step_k: float
    rmse_free_run_k: float
    bic: float
    n_params: int
    n_samples: int

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.kind,
            "parameters": {k: v for k, v in self.model.config_values().items() if v is not None},
            "time_constant_h": self.model.time_constant_s / 3600.0,
            "rmse_one_step_k": self.rmse_one_step_k,
            "rmse_free_run_k": self.rmse_free_run_k,
            "bic": self.bic,
            "n_params": self.n_params,
            "n_samples": self.n_samples,
        }


@dataclass(frozen=True)
class FitReport:
    chosen: FitCandidate
    candidates: tuple[FitCandidate, ...]
    criterion: str
    constant_mean_rmse_k: float
    samples: int
    dropped_rows: int
    solar: bool
    notes: tuple[str, ...] = field(default=())

    def config_values(self, digits: int = 4) -> dict[str, float | None]:
        """The [heat] keys to write, rounded to ``digits`` significant figures."""
        return {k: (None if v is None else _sig(v, digits))
                for k, v in self.chosen.model.config_values().items()}

    def as_dict(self) -> dict[str, object]:
        return {
            "chosen": self.chosen.kind,
            "criterion": self.criterion,
            "constant_mean_rmse_k": self.constant_mean_rmse_k,
            "samples": self.samples,
            "dropped_rows": self.dropped_rows,
            "solar": self.solar,
            "candidates": [c.as_dict() for c in self.candidates],
            "config": {k: v for k, v in self.config_values().items() if v is not None},
            "notes": list(self.notes),
        }


def fit_room(record: ThermalRecord, model: ModelKind | Literal["auto"] = "auto") -> FitReport:
    """Fit 1R1C, 2R2C or both (auto) and say which one the data supports."""
    if model not in ("1r1c", "2r2c", "auto"):
        raise ValueError(f"model must be 1r1c, 2r2c or auto, not {model!r}")
    notes: list[str] = []
    if float(np.ptp(record.heat_w)) <= 0.0:
        notes.append("heating power never varies: R and C are poorly separated")
    one = _fit_1r1c(record)
    candidates = [one]
    if model in ("2r2c", "auto"):
        candidates.append(_fit_2r2c(record, one))
    if model == "auto":
        two = candidates[1]
        chosen = two if two.bic < one.bic - BIC_MARGIN else one
        criterion = (f"BIC on free-run residuals: 1r1c {one.bic:.1f}, 2r2c {two.bic:.1f}; 2r2c "
                     f"only if lower by > {BIC_MARGIN:g} -> {chosen.kind}")
    else:
        chosen = candidates[-1]
        criterion = f"model {model} requested (BIC {chosen.bic:.1f})"
    ti = record.indoor_c
    return FitReport(chosen=chosen, candidates=tuple(candidates), criterion=criterion,
                     constant_mean_rmse_k=float(np.sqrt(np.mean((ti - ti.mean()) ** 2))),
                     samples=len(record), dropped_rows=record.dropped_rows,
                     solar=record.solar_w_m2 is not None, notes=tuple(notes))


# --------------------------------------------------------------------------- 1R1C


def _fit_1r1c(rec: ThermalRecord) -> FitCandidate:
    solar = rec.solar_w_m2 is not None
    start = _arx_start(rec)

    def build(q: FloatArray) -> RoomModel:
        return RoomModel(r_k_per_w=math.exp(q[0]), c_j_per_k=math.exp(q[1]),
                         solar_aperture_m2=math.exp(q[2]) if solar else 0.0)

    def residuals(q: FloatArray) -> FloatArray:
        m = build(q)
        return simulate_air(m, np.array([rec.indoor_c[0]]), rec.dt_s, rec.outdoor_c, rec.heat_w,
                            rec.solar_w_m2) - rec.indoor_c

    bounds = [R_BOUNDS, C_BOUNDS] + ([A_BOUNDS] if solar else [])
    best = _solve(residuals, [start], bounds)
    m = build(best)
    return _candidate("1r1c", m, (float(rec.indoor_c[0]),), rec, len(bounds))


def _arx_start(rec: ThermalRecord) -> FloatArray:
    """Log-parameters from a one-step linear regression (uniform-step approximation)."""
    dt = float(np.median(rec.dt_s))
    ti, to, p = rec.indoor_c, rec.outdoor_c, rec.heat_w
    cols = [ti[:-1] - to[:-1], p[:-1]]
    if rec.solar_w_m2 is not None:
        cols.append(rec.solar_w_m2[:-1])
    x = np.column_stack(cols)
    y = ti[1:] - to[:-1]
    fallback = [math.log(0.01), math.log(8e6)]
    if rec.solar_w_m2 is not None:
        fallback.append(math.log(1.0))
    try:
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    except np.linalg.LinAlgError:
        return np.array(fallback)
    a, g = float(coef[0]), float(coef[1])
    if not (0.0 < a < 1.0 and g > 0.0):
        return np.array(fallback)
    r = g / (1.0 - a)
    c = -dt / (r * math.log(a))
    out = [_clip_log(r, R_BOUNDS), _clip_log(c, C_BOUNDS)]
    if rec.solar_w_m2 is not None:
        out.append(_clip_log(float(coef[2]) / (1.0 - a) / r if coef[2] > 0 else 1.0, A_BOUNDS))
    return np.array(out)


# --------------------------------------------------------------------------- 2R2C


def _fit_2r2c(rec: ThermalRecord, one: FitCandidate) -> FitCandidate:
    solar = rec.solar_w_m2 is not None
    base = one.model
    assert isinstance(base, RoomModel)

    def build(q: FloatArray) -> Room2R2CModel:
        ri, ro = math.exp(q[0]), math.exp(q[1])
        return Room2R2CModel(r_k_per_w=ri + ro, c_j_per_k=math.exp(q[2]), r2_k_per_w=ri,
                             c2_j_per_k=math.exp(q[3]),
                             solar_aperture_m2=math.exp(q[4]) if solar else 0.0)

    n_log = 5 if solar else 4

    def residuals(q: FloatArray) -> FloatArray:
        m = build(q)
        x0 = np.array([rec.indoor_c[0], q[n_log]])
        return simulate_air(m, x0, rec.dt_s, rec.outdoor_c, rec.heat_w,
                            rec.solar_w_m2) - rec.indoor_c

    t_lo = float(min(rec.indoor_c.min(), rec.outdoor_c.min())) - 10.0
    t_hi = float(max(rec.indoor_c.max(), rec.outdoor_c.max())) + 10.0
    bounds = [R_BOUNDS, R_BOUNDS, C_BOUNDS, C_BOUNDS] + ([A_BOUNDS] if solar else [])
    starts = []
    for r_share in (0.15, 0.5):
        for c_share in (0.1, 0.4):
            q = [math.log(base.r_k_per_w * r_share), math.log(base.r_k_per_w * (1 - r_share)),
                 math.log(base.c_j_per_k * c_share), math.log(base.c_j_per_k * (1 - c_share))]
            if solar:
                q.append(math.log(max(base.solar_aperture_m2, A_BOUNDS[0] * 10)))
            wall = float(rec.outdoor_c[0] + (rec.indoor_c[0] - rec.outdoor_c[0]) * (1 - r_share))
            starts.append(np.array(q + [wall]))
    best = _solve(residuals, starts, bounds, state_bounds=(t_lo, t_hi))
    m = build(best)
    return _candidate("2r2c", m, (float(rec.indoor_c[0]), float(best[n_log])), rec,
                      len(bounds) + 1)


# --------------------------------------------------------------------------- shared


def _solve(residuals: Callable[[FloatArray], FloatArray], starts: list[FloatArray],
           bounds: list[tuple[float, float]],
           state_bounds: tuple[float, float] | None = None) -> FloatArray:
    lo = [math.log(b[0]) for b in bounds]
    hi = [math.log(b[1]) for b in bounds]
    if state_bounds is not None:
        lo.append(state_bounds[0])
        hi.append(state_bounds[1])
    best_x: FloatArray | None = None
    best_cost = math.inf
    for q0 in starts:
        q0 = np.clip(q0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
        try:
            # ftol 1e-6: the cost settles long before a flat 2R2C direction stops drifting.
            sol = least_squares(residuals, q0, bounds=(lo, hi), x_scale="jac", max_nfev=400,
                                ftol=1e-6)
        except (ValueError, np.linalg.LinAlgError, OverflowError):
            continue
        if np.isfinite(sol.cost) and sol.cost < best_cost:
            best_cost, best_x = float(sol.cost), np.asarray(sol.x, dtype=float)
    if best_x is None:
        raise ValueError("the fit did not converge from any start; check units and data")
    return best_x


def _candidate(kind: ModelKind, model: RoomModel | Room2R2CModel, x0: tuple[float, ...],
               rec: ThermalRecord, k: int) -> FitCandidate:
    state = np.array(x0)
    free = simulate_air(model, state, rec.dt_s, rec.outdoor_c, rec.heat_w, rec.solar_w_m2)
    ahead = predict_one_step(model, state, rec.dt_s, rec.outdoor_c, rec.heat_w, rec.solar_w_m2,
                             rec.indoor_c)
    n = len(rec)
    sse = float(np.sum((free - rec.indoor_c) ** 2))
    one_step = float(np.sqrt(np.mean((ahead[1:] - rec.indoor_c[1:]) ** 2)))
    bic = n * math.log(max(sse, 1e-12) / n) + k * math.log(n)
    return FitCandidate(kind=kind, model=model, initial_state=x0, rmse_one_step_k=one_step,
                        rmse_free_run_k=math.sqrt(sse / n), bic=bic, n_params=k, n_samples=n)


def _clip_log(value: float, bounds: tuple[float, float]) -> float:
    return math.log(min(max(value, bounds[0]), bounds[1]))


def _sig(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")
