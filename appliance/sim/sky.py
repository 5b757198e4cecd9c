"""What the sky gives the plant: PV power available and outdoor temperature along time.

pvlib is vectorised and slow per call (tens of ms), a plant step must cost microseconds. So the
PV chain runs once per chunk of time (a week at 1-minute resolution by default, or the whole
range of a replay via ``prepare``) and a step reads the chunk: the exact integral of the
piecewise-linear power between two instants, so energy is right for any step length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from appliance.config import ArrayConfig, SiteConfig
from appliance.sim.outdoor import outdoor_temp_c
from appliance.solar.pvsystem import Physics, ac_power_w
from appliance.state import FloatArray

WEATHER_COLUMNS = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2", "temp_air_c", "wind_speed_m_s")
MAX_WEATHER_GAP_S = 3 * 3600.0  # longer holes in measured weather fall back to clear sky
_CACHE_CHUNKS = 3


@dataclass(frozen=True)
class _Chunk:
    start_s: float  # epoch seconds of the first grid point
    step_s: float
    pv_w: list[float]
    temp_c: list[float]
    cum_j: list[float]  # integral of pv_w from start to each grid point

    @property
    def end_s(self) -> float:
        return self.start_s + (len(self.pv_w) - 1) * self.step_s

    @cached_property
    def grid_s(self) -> FloatArray:
        return self.start_s + np.arange(len(self.pv_w), dtype=float) * self.step_s

    @cached_property
    def temp_array(self) -> FloatArray:
        return np.asarray(self.temp_c, dtype=float)

    @cached_property
    def _pv_array(self) -> FloatArray:
        return np.asarray(self.pv_w, dtype=float)

    @cached_property
    def _cum_array(self) -> FloatArray:
        return np.asarray(self.cum_j, dtype=float)

    def energy_to_many(self, t_s: FloatArray) -> FloatArray:
        """``energy_to`` at many instants inside the chunk."""
        x = (np.asarray(t_s, dtype=float) - self.start_s) / self.step_s
        i = np.minimum(x.astype(np.int64), len(self.pv_w) - 2)
        f = x - i
        p0 = self._pv_array[i]
        return np.asarray(self._cum_array[i] + (p0 * f + 0.5 * (self._pv_array[i + 1] - p0) * f * f) * self.step_s)

    def covers(self, t_s: float) -> bool:
        return self.start_s <= t_s <= self.end_s

    def energy_to(self, t_s: float) -> float:
        """Integral of PV power (J) from the chunk start to ``t_s``."""
        x = (t_s - self.start_s) / self.step_s
        i = min(int(x), len(self.pv_w) - 2)
        f = x - i
        p0 = self.pv_w[i]
        return self.cum_j[i] + (p0 * f + 0.5 * (self.pv_w[i + 1] - p0) * f * f) * self.step_s

    def value(self, series: list[float], t_s: float) -> float:
        x = (t_s - self.start_s) / self.step_s
        i = min(int(x), len(series) - 2)
        f = x - i
        return series[i] + (series[i + 1] - series[i]) * f


class WeatherTable:
    """Measured weather as arrays on epoch seconds, for fast interpolation onto chunk grids.

    Accepts the field-data frame (tz-aware UTC index; any of ghi_w_m2, dni_w_m2, dhi_w_m2,
    temp_air_c, wind_speed_m_s). Values are interpolated linearly; across a hole longer than
    three hours or outside the table they are missing (NaN), and the sky falls back to clear.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
            raise ValueError("weather must be indexed by timezone-aware times")
        known = [c for c in WEATHER_COLUMNS if c in frame.columns]
        if "ghi_w_m2" not in known and "temp_air_c" not in known:
            raise ValueError(f"weather has none of the columns {', '.join(WEATHER_COLUMNS)}")
        frame = frame.sort_index()
        seconds = frame.index.tz_convert("UTC").as_unit("ns").asi8 / 1e9
        self.columns: dict[str, tuple[FloatArray, FloatArray]] = {}
        for name in known:
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
            ok = ~np.isnan(values)
            self.columns[name] = (np.asarray(seconds[ok], dtype=float), values[ok])

    def sample(self, name: str, t_s: FloatArray) -> FloatArray | None:
        """Column ``name`` at ``t_s`` (NaN where unknown); None if the table lacks it."""
        if name not in self.columns:
            return None
        xs, ys = self.columns[name]
        if xs.size == 0:
            return np.full(t_s.shape, np.nan)
        out = np.interp(t_s, xs, ys)
        idx = np.clip(np.searchsorted(xs, t_s), 1, max(1, xs.size - 1))
        gap = xs[idx] - xs[idx - 1] if xs.size > 1 else np.zeros_like(t_s)
        bad = (t_s < xs[0]) | (t_s > xs[-1]) | (gap > MAX_WEATHER_GAP_S)
        out[bad] = np.nan
        return out


class Sky:
    """PV power available (W) and outdoor temperature (C) at any instant, chunk by chunk."""

    def __init__(
        self,
        site: SiteConfig,
        array: ArrayConfig,
        *,
        weather: pd.DataFrame | None = None,
        resolution_s: float = 60.0,
        chunk_s: float = 7 * 86400.0,
        physics: Physics | None = None,
    ) -> None:
        if resolution_s <= 0 or chunk_s < resolution_s:
            raise ValueError("resolution_s must be positive and chunk_s at least one step")
        self.site = site
        self.array = array
        self.physics = physics
        self.weather = WeatherTable(weather) if weather is not None else None
        self.resolution_s = float(resolution_s)
        self.chunk_s = float(chunk_s)
        self._chunks: list[_Chunk] = []
        self.chunks_computed = 0

    # ------------------------------------------------------------------ chunks

    def prepare(self, start: datetime, end: datetime) -> None:
        """Compute one chunk covering [start, end] in one vectorised pass (replay)."""
        t0 = math.floor(start.timestamp() / self.resolution_s) * self.resolution_s
        t1 = math.ceil(end.timestamp() / self.resolution_s) * self.resolution_s
        self._remember(self._compute(t0, max(t1, t0 + self.resolution_s)))

    def _chunk_for(self, t_s: float, forward: bool = False) -> _Chunk:
        """The chunk holding ``t_s``; with ``forward`` one that also extends beyond it."""
        for i, chunk in enumerate(self._chunks):
            if chunk.covers(t_s) and not (forward and t_s >= chunk.end_s):
                if i:
                    self._chunks.insert(0, self._chunks.pop(i))
                return chunk
        start = math.floor(t_s / self.chunk_s) * self.chunk_s
        chunk = self._compute(start, start + self.chunk_s)
        self._remember(chunk)
        return chunk

    def _remember(self, chunk: _Chunk) -> None:
        self._chunks.insert(0, chunk)
        del self._chunks[_CACHE_CHUNKS:]

    def _compute(self, start_s: float, end_s: float) -> _Chunk:
        n = int(round((end_s - start_s) / self.resolution_s)) + 1
        t_s = start_s + np.arange(n, dtype=float) * self.resolution_s
        times = pd.DatetimeIndex(pd.to_datetime(t_s, unit="s", utc=True))
        model_temp = outdoor_temp_c(self.site.lat, self.site.lon, self.site.altitude_m, times)
        temp = model_temp
        pv = np.zeros(n)
        clear = np.ones(n, dtype=bool)
        if self.weather is not None:
            measured_temp = self.weather.sample("temp_air_c", t_s)
            if measured_temp is not None:
                temp = np.where(np.isnan(measured_temp), model_temp, measured_temp)
            ghi = self.weather.sample("ghi_w_m2", t_s)
            if ghi is not None:
                measured = ~np.isnan(ghi)
                if measured.any():
                    cols: dict[str, FloatArray] = {
                        "ghi_w_m2": ghi[measured],
                        "temp_air_c": temp[measured],
                    }
                    for name in ("dni_w_m2", "dhi_w_m2", "wind_speed_m_s"):
                        col = self.weather.sample(name, t_s)
                        if col is not None:
                            cols[name] = col[measured]
                    if ("dni_w_m2" in cols) != ("dhi_w_m2" in cols) or (
                        "dni_w_m2" in cols
                        and (np.isnan(cols["dni_w_m2"]).any() or np.isnan(cols["dhi_w_m2"]).any())
                    ):
                        cols.pop("dni_w_m2", None)  # incomplete beam/diffuse: decompose GHI (Erbs)
                        cols.pop("dhi_w_m2", None)
                    pv[measured] = ac_power_w(
                        self.site, self.array, times[measured], cols, physics=self.physics
                    )
                    clear = ~measured
        if clear.any():
            pv[clear] = ac_power_w(
                self.site,
                self.array,
                times[clear],
                {"temp_air_c": temp[clear]},
                physics=self.physics,
            )
        pv = np.clip(np.nan_to_num(pv, nan=0.0), 0.0, None)
        cum = np.concatenate(([0.0], np.cumsum(0.5 * (pv[1:] + pv[:-1]) * self.resolution_s)))
        self.chunks_computed += 1
        return _Chunk(
            start_s=float(start_s),
            step_s=self.resolution_s,
            pv_w=pv.tolist(),
            temp_c=np.asarray(temp, dtype=float).tolist(),
            cum_j=cum.tolist(),
        )

    # ------------------------------------------------------------------ lookups

    def pv_energy_j(self, t0_s: float, t1_s: float) -> float:
        """PV energy (J) the array can give between two instants (epoch seconds)."""
        energy = 0.0
        t = t0_s
        while t < t1_s:
            chunk = self._chunk_for(t, forward=True)
            seg_end = min(t1_s, chunk.end_s)
            energy += chunk.energy_to(seg_end) - chunk.energy_to(t)
            t = seg_end
        return energy

    def pv_w(self, t_s: float) -> float:
        chunk = self._chunk_for(t_s)
        return chunk.value(chunk.pv_w, t_s)

    def outdoor_c(self, t_s: float) -> float:
        chunk = self._chunk_for(t_s)
        return chunk.value(chunk.temp_c, t_s)

    def outdoor_c_at(self, t_s: npt.ArrayLike) -> FloatArray:
        """``outdoor_c`` at many instants (a plan's horizon) in one call."""
        t = np.asarray(t_s, dtype=float)
        if t.size == 0:
            return np.zeros(0)
        chunk = self._chunk_for(float(t.min()))
        if not chunk.covers(float(t.max())):
            return np.array([self.outdoor_c(float(v)) for v in t])
        return np.interp(t, chunk.grid_s, chunk.temp_array)

    def pv_energy_per_slot_j(self, t0_s: float, step_s: float, n: int) -> FloatArray:
        """``pv_energy_j`` of ``n`` consecutive slots from ``t0_s`` (the perfect forecast)."""
        bounds = t0_s + np.arange(n + 1, dtype=float) * step_s
        chunk = self._chunk_for(t0_s, forward=True)
        if not chunk.covers(float(bounds[-1])):
            return np.array([self.pv_energy_j(a, a + step_s) for a in bounds[:-1]])
        return np.diff(chunk.energy_to_many(bounds))

    def at(self, moment: datetime) -> tuple[float, float]:
        """(PV available W, outdoor C) at one moment."""
        t_s = moment.astimezone(UTC).timestamp()
        return self.pv_w(t_s), self.outdoor_c(t_s)
