"""Room thermal model (lumped RC), shared by the simulator, the planner, the router and replay.

1R1C: C dT/dt = (T_out - T)/R + P_heat + A*I_sol. Stepped with the exact solution for constant
inputs over the step, so it is stable for any step length (a year of replay at 5-minute steps).

2R2C: the air node (C, what the sensor sees) behind an envelope node (C2, walls and floor):

    C  dT/dt  = (T_env - T)/R2 + P_heat + A*I_sol
    C2 dT_env/dt = (T - T_env)/R2 + (T_out - T_env)/(R - R2)

R stays the total resistance indoor -> outdoor, so both models agree on the steady state. It is
discretised exactly too (zero-order hold through the matrix exponential), cached per step length.

Both models expose ``discretise(dt_s) -> (Ad, Bd)`` with inputs ``u = [outdoor_c, heat_w,
solar_w_m2]``; the generic helpers below (``step_state``, ``heat_to_reach``, ``simulate_air``)
work on either, so planner and fit never care which one the site uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from scipy.linalg import expm

from appliance.config import HeatConfig
from appliance.state import FloatArray

N_INPUTS = 3  # outdoor_c, heat_w, solar_w_m2


class ThermalModel(Protocol):
    """What the planner, fit and replay need from a room model."""

    @property
    def n_states(self) -> int: ...

    @property
    def time_constant_s(self) -> float: ...

    def discretise(self, dt_s: float) -> tuple[FloatArray, FloatArray]:
        """Exact (Ad, Bd) for a step of ``dt_s`` with inputs held: x' = Ad x + Bd u."""
        ...

    def initial_state(self, room_temp_c: float, outdoor_c: float) -> FloatArray:
        """A plausible state when only the air temperature is known."""
        ...

    def config_values(self) -> dict[str, float | None]:
        """The [heat] keys that describe this model (None = key absent)."""
        ...


@dataclass(frozen=True)
class RoomModel:
    """1R1C room: one resistance to outdoors, one heat capacity."""

    r_k_per_w: float
    c_j_per_k: float
    solar_aperture_m2: float = 0.0

    def __post_init__(self) -> None:
        if not (self.r_k_per_w > 0 and self.c_j_per_k > 0 and self.solar_aperture_m2 >= 0):
            raise ValueError(
                f"room model needs R > 0, C > 0, aperture >= 0 (got R={self.r_k_per_w:g}, "
                f"C={self.c_j_per_k:g}, A={self.solar_aperture_m2:g})"
            )

    @classmethod
    def from_config(cls, heat: HeatConfig) -> RoomModel:
        """The 1R1C room of the config; a configured 2R2C room is reduced to one node.

        The reduction keeps the total resistance (same steady state) and lumps both capacities
        (same slow time constant), which is what the simulator and the router need.
        """
        c = heat.room_c_j_per_k + (heat.room_c2_j_per_k or 0.0)
        return cls(r_k_per_w=heat.room_r_k_per_w, c_j_per_k=c,
                   solar_aperture_m2=heat.room_solar_aperture_m2)

    @property
    def n_states(self) -> int:
        return 1

    @property
    def time_constant_s(self) -> float:
        return self.r_k_per_w * self.c_j_per_k

    def step(self, temp_c: float, outdoor_c: float, heat_w: float, dt_s: float,
             solar_w_m2: float = 0.0) -> float:
        """Room temperature after ``dt_s`` with constant outdoor temperature and heat input."""
        gain_w = heat_w + self.solar_aperture_m2 * solar_w_m2
        equilibrium = outdoor_c + gain_w * self.r_k_per_w
        return equilibrium + (temp_c - equilibrium) * math.exp(-dt_s / self.time_constant_s)

    def heat_for(self, temp_c: float, target_c: float, outdoor_c: float, dt_s: float) -> float:
        """Constant heat (W) that brings the room from ``temp_c`` to ``target_c`` in ``dt_s``."""
        decay = math.exp(-dt_s / self.time_constant_s)
        equilibrium = (target_c - temp_c * decay) / (1.0 - decay)
        return (equilibrium - outdoor_c) / self.r_k_per_w

    def discretise(self, dt_s: float) -> tuple[FloatArray, FloatArray]:
        a = math.exp(-dt_s / self.time_constant_s)
        g = 1.0 - a
        return (np.array([[a]]),
                np.array([[g, g * self.r_k_per_w, g * self.r_k_per_w * self.solar_aperture_m2]]))

    def initial_state(self, room_temp_c: float, outdoor_c: float) -> FloatArray:
        return np.array([room_temp_c], dtype=float)

    def config_values(self) -> dict[str, float | None]:
        return {"room_r_k_per_w": self.r_k_per_w, "room_c_j_per_k": self.c_j_per_k,
                "room_r2_k_per_w": None, "room_c2_j_per_k": None,
                "room_solar_aperture_m2": self.solar_aperture_m2}


@dataclass(frozen=True)
class Room2R2CModel:
    """2R2C room: air node (C, measured) coupled through R2 to an envelope node (C2).

    ``r_k_per_w`` is the total resistance indoor -> outdoor; the envelope -> outdoor part is
    ``r_k_per_w - r2_k_per_w``. Solar gain enters the air node through ``solar_aperture_m2``.
    """

    r_k_per_w: float
    c_j_per_k: float
    r2_k_per_w: float
    c2_j_per_k: float
    solar_aperture_m2: float = 0.0

    def __post_init__(self) -> None:
        if not (self.c_j_per_k > 0 and self.c2_j_per_k > 0 and self.r2_k_per_w > 0):
            raise ValueError("2R2C room needs C, C2 and R2 > 0")
        if not self.r_k_per_w > self.r2_k_per_w:
            raise ValueError(f"2R2C room needs R ({self.r_k_per_w:g}) > R2 ({self.r2_k_per_w:g})")
        if self.solar_aperture_m2 < 0:
            raise ValueError("solar aperture must be >= 0")

    @property
    def n_states(self) -> int:
        return 2

    @property
    def ro_k_per_w(self) -> float:
        """Envelope -> outdoor resistance."""
        return self.r_k_per_w - self.r2_k_per_w

    @property
    def time_constant_s(self) -> float:
        """The slow (dominant) time constant: what the planner's horizon has to cover."""
        eig = np.linalg.eigvals(self._continuous()[0])
        return float(1.0 / np.min(np.abs(eig.real)))

    def _continuous(self) -> tuple[FloatArray, FloatArray]:
        ri, ro, ci, cw = self.r2_k_per_w, self.ro_k_per_w, self.c_j_per_k, self.c2_j_per_k
        a = np.array([[-1.0 / (ri * ci), 1.0 / (ri * ci)],
                      [1.0 / (ri * cw), -(1.0 / ri + 1.0 / ro) / cw]])
        b = np.array([[0.0, 1.0 / ci, self.solar_aperture_m2 / ci],
                      [1.0 / (ro * cw), 0.0, 0.0]])
        return a, b

    def discretise(self, dt_s: float) -> tuple[FloatArray, FloatArray]:
        ad, bd = _zoh(self, round(float(dt_s), 6))
        return ad.copy(), bd.copy()

    def initial_state(self, room_temp_c: float, outdoor_c: float) -> FloatArray:
        """Envelope on the steady conduction line between the air and outdoors."""
        wall = outdoor_c + (room_temp_c - outdoor_c) * self.ro_k_per_w / self.r_k_per_w
        return np.array([room_temp_c, wall], dtype=float)

    def config_values(self) -> dict[str, float | None]:
        return {"room_r_k_per_w": self.r_k_per_w, "room_c_j_per_k": self.c_j_per_k,
                "room_r2_k_per_w": self.r2_k_per_w, "room_c2_j_per_k": self.c2_j_per_k,
                "room_solar_aperture_m2": self.solar_aperture_m2}


@lru_cache(maxsize=256)
def _zoh(model: Room2R2CModel, dt_s: float) -> tuple[FloatArray, FloatArray]:
    a, b = model._continuous()
    n, m = b.shape
    block = np.zeros((n + m, n + m))
    block[:n, :n] = a
    block[:n, n:] = b
    e = expm(block * dt_s)
    return e[:n, :n], e[:n, n:]


def room_model_from_config(heat: HeatConfig) -> RoomModel | Room2R2CModel:
    """The configured room: 2R2C when its two extra keys are set, else 1R1C."""
    if heat.room_r2_k_per_w is not None and heat.room_c2_j_per_k is not None:
        return Room2R2CModel(r_k_per_w=heat.room_r_k_per_w, c_j_per_k=heat.room_c_j_per_k,
                             r2_k_per_w=heat.room_r2_k_per_w, c2_j_per_k=heat.room_c2_j_per_k,
                             solar_aperture_m2=heat.room_solar_aperture_m2)
    return RoomModel(r_k_per_w=heat.room_r_k_per_w, c_j_per_k=heat.room_c_j_per_k,
                     solar_aperture_m2=heat.room_solar_aperture_m2)


Discrete = tuple[FloatArray, FloatArray]  # (A_d, B_d) of one step length


def step_state(model: ThermalModel, state: FloatArray, outdoor_c: float, heat_w: float,
               dt_s: float, solar_w_m2: float = 0.0) -> FloatArray:
    """State after ``dt_s`` with inputs held; ``state[0]`` is the air temperature."""
    return step_discrete(model.discretise(dt_s), state, outdoor_c, heat_w, solar_w_m2)


def heat_to_reach(model: ThermalModel, state: FloatArray, target_c: float, outdoor_c: float,
                  dt_s: float, solar_w_m2: float = 0.0) -> float:
    """Constant heat (W, may be negative) that puts the air at ``target_c`` after ``dt_s``."""
    return heat_to_reach_discrete(model.discretise(dt_s), state, target_c, outdoor_c, solar_w_m2)


def step_discrete(d: Discrete, state: FloatArray, outdoor_c: float, heat_w: float,
                  solar_w_m2: float = 0.0) -> FloatArray:
    """``step_state`` with the discretisation done once (a horizon of equal steps)."""
    ad, bd = d
    return ad @ state + bd @ np.array([outdoor_c, heat_w, solar_w_m2])


def heat_to_reach_discrete(d: Discrete, state: FloatArray, target_c: float, outdoor_c: float,
                           solar_w_m2: float = 0.0) -> float:
    """``heat_to_reach`` with the discretisation done once."""
    ad, bd = d
    free = float(ad[0] @ state + bd[0, 0] * outdoor_c + bd[0, 2] * solar_w_m2)
    return (target_c - free) / float(bd[0, 1])


def simulate_air(model: ThermalModel, state: FloatArray, dt_s: Sequence[float] | FloatArray,
                 outdoor_c: FloatArray, heat_w: FloatArray,
                 solar_w_m2: FloatArray | None = None) -> FloatArray:
    """Free-run air temperature at each sample, starting from ``state`` at sample 0.

    ``dt_s[k]`` is the time from sample k to k+1 (inputs of sample k held over it); the result
    has one value per sample (``len(dt_s) + 1``). Steps of equal length share one
    discretisation, so a long uniform record costs one matrix exponential.
    """
    return _run(model, state, dt_s, outdoor_c, heat_w, solar_w_m2, measured=None)


def predict_one_step(model: ThermalModel, state: FloatArray, dt_s: Sequence[float] | FloatArray,
                     outdoor_c: FloatArray, heat_w: FloatArray, solar_w_m2: FloatArray | None,
                     measured_c: FloatArray) -> FloatArray:
    """One-step-ahead air temperature: each step starts from the measured air temperature.

    Hidden nodes (the 2R2C envelope) are carried by the model, driven by the measured air:
    an open observer, so no noise parameters are needed. Result[0] is the measurement itself.
    """
    return _run(model, state, dt_s, outdoor_c, heat_w, solar_w_m2,
                measured=np.asarray(measured_c, dtype=float))


def _run(model: ThermalModel, state: FloatArray, dt_s: Sequence[float] | FloatArray,
         outdoor_c: FloatArray, heat_w: FloatArray, solar_w_m2: FloatArray | None,
         measured: FloatArray | None) -> FloatArray:
    dts = np.asarray(dt_s, dtype=float)
    n = dts.shape[0] + 1
    solar = np.zeros(n) if solar_w_m2 is None else np.asarray(solar_w_m2, dtype=float)
    to, p, i = (np.asarray(outdoor_c, float).tolist(), np.asarray(heat_w, float).tolist(),
                solar.tolist())
    meas = None if measured is None else measured.tolist()
    cache: dict[float, tuple[float, ...]] = {}
    out = np.empty(n)
    x0 = float(state[0])
    x1 = float(state[1]) if len(state) > 1 else 0.0
    out[0] = x0
    for k, dt in enumerate(dts.tolist()):
        m = cache.get(dt)
        if m is None:
            ad, bd = model.discretise(dt)
            if ad.shape[0] == 1:
                m = (float(ad[0, 0]), 0.0, 0.0, 0.0, *map(float, bd[0]), 0.0, 0.0, 0.0)
            else:
                m = (*map(float, ad.ravel()), *map(float, bd.ravel()))
            cache[dt] = m
        a00, a01, a10, a11, b00, b01, b02, b10, b11, b12 = m
        if meas is not None:
            x0 = meas[k]
        x0, x1 = (a00 * x0 + a01 * x1 + b00 * to[k] + b01 * p[k] + b02 * i[k],
                  a10 * x0 + a11 * x1 + b10 * to[k] + b11 * p[k] + b12 * i[k])
        out[k + 1] = x0
    return out
