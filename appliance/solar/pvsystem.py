"""Irradiance and weather -> AC power of the configured array: the one PV physics chain.

Chain: orientation -> plane-of-array (Perez or Hay-Davies sky diffuse, ground reflection,
Martin-Ruiz incidence-angle losses on the beam) -> cell temperature (Faiman or SAPM) -> DC
(PVWatts with the configured temperature coefficient, or a CEC module through the single-diode
model) -> system losses -> inverter (PVWatts part-load efficiency, AC limit). The simulator,
the forecast, the backtest and replay all use this one function, so a physics change shows up
everywhere at once.

Everything that depends only on the sun and the mount (``PlaneGeometry``) can be computed once
and reused for many skies: the forecaster turns each new weather feed into power without
recomputing solar positions.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd

from appliance.config import ArrayConfig, ForecastConfig, SiteConfig
from appliance.solar.clearsky import Irradiance, clear_sky
from appliance.solar.geometry import Orientation, SunPosition, orientation, sun_position
from appliance.solar.lazy_pvlib import pvlib
from appliance.state import FloatArray

DEFAULT_TEMP_AIR_C = 20.0
DEFAULT_WIND_M_S = 1.0


@dataclass(frozen=True)
class Physics:
    """Which model answers each physical question (from the ``[forecast]`` config section)."""

    transposition: Literal["perez", "haydavies"] = "perez"
    cell_temp_model: Literal["faiman", "sapm"] = "faiman"
    sapm_mount: str = "open_rack_glass_glass"
    dc_model: Literal["pvwatts", "cec"] = "pvwatts"
    cec_module: str | None = None
    decomposition: Literal["erbs", "dirint"] = "erbs"

    @classmethod
    def from_config(cls, forecast: ForecastConfig) -> Physics:
        physics = cls(
            transposition=forecast.transposition,
            cell_temp_model=forecast.cell_temp_model,
            sapm_mount=forecast.sapm_mount,
            dc_model=forecast.dc_model,
            cec_module=forecast.cec_module,
            decomposition=forecast.decomposition,
        )
        if physics.dc_model == "cec":
            cec_parameters(physics.cec_module or "")  # fail at start, not at the first sunrise
        return physics


DEFAULT_PHYSICS = Physics()


@lru_cache(maxsize=1)
def _cec_table() -> pd.DataFrame:
    return pvlib.pvsystem.retrieve_sam("CECMod")


def cec_parameters(name: str) -> dict[str, float]:
    """Single-diode parameters of a module in pvlib's CEC table; ValueError naming near misses."""
    table = _cec_table()
    if name not in table.columns:
        near = difflib.get_close_matches(name, list(table.columns), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(n) for n in near)}?)" if near else ""
        raise ValueError(f"forecast.cec_module = {name!r}: not in pvlib's CEC module table{hint}")
    col = table[name]
    keys = (
        "alpha_sc",
        "a_ref",
        "I_L_ref",
        "I_o_ref",
        "R_sh_ref",
        "R_s",
        "Adjust",
        "I_mp_ref",
        "V_mp_ref",
    )
    return {k: float(col[k]) for k in keys}


@dataclass(frozen=True)
class PlaneGeometry:
    """Sun, mount and incidence at a set of times: what does not depend on the weather."""

    times: pd.DatetimeIndex
    sun: SunPosition
    orient: Orientation
    cos_aoi: FloatArray  # projection of the beam on the module plane, >= 0
    iam: FloatArray  # Martin-Ruiz incidence-angle modifier of the beam
    dni_extra: FloatArray
    airmass_rel: FloatArray

    def take(self, index: np.ndarray) -> PlaneGeometry:
        return PlaneGeometry(
            times=self.times[index],
            sun=self.sun.take(index),
            orient=Orientation(self.orient.surface_tilt[index], self.orient.surface_azimuth[index]),
            cos_aoi=self.cos_aoi[index],
            iam=self.iam[index],
            dni_extra=self.dni_extra[index],
            airmass_rel=self.airmass_rel[index],
        )


def plane_geometry(
    site: SiteConfig, array: ArrayConfig, times: pd.DatetimeIndex, sun: SunPosition | None = None
) -> PlaneGeometry:
    if times.tz is None:
        raise ValueError("times must be timezone-aware")
    sun = sun or sun_position(site, times)
    orient = orientation(array, sun)
    proj = pvlib.irradiance.aoi_projection(
        orient.surface_tilt, orient.surface_azimuth, sun.apparent_zenith, sun.azimuth
    )
    cos_aoi = np.clip(np.nan_to_num(np.asarray(proj, dtype=float), nan=0.0), 0.0, 1.0)
    aoi_deg = np.degrees(np.arccos(cos_aoi))
    iam = np.nan_to_num(np.asarray(pvlib.iam.martin_ruiz(aoi_deg), dtype=float), nan=0.0)
    with np.errstate(invalid="ignore"):
        airmass = np.asarray(
            pvlib.atmosphere.get_relative_airmass(sun.apparent_zenith), dtype=float
        )
    return PlaneGeometry(
        times=times,
        sun=sun,
        orient=orient,
        cos_aoi=cos_aoi,
        iam=iam,
        dni_extra=np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float),
        airmass_rel=airmass,
    )


def decompose_ghi(
    ghi: FloatArray, sun: SunPosition, times: pd.DatetimeIndex, model: str = "erbs"
) -> Irradiance:
    """GHI -> DNI/DHI (Erbs, or DIRINT which also uses the GHI's variability) for feeds and
    stations that give only GHI."""
    ghi = np.clip(np.nan_to_num(np.asarray(ghi, dtype=float), nan=0.0), 0.0, None)
    if model == "dirint" and len(times) > 1:
        dni_s = pvlib.irradiance.dirint(ghi, sun.zenith, times)
        dni = np.nan_to_num(np.asarray(dni_s, dtype=float), nan=0.0)
        cosz = np.clip(np.cos(np.radians(sun.zenith)), 0.0, None)
        dni = np.where(cosz > 0.0, np.minimum(dni, ghi / np.maximum(cosz, 1e-6)), 0.0)
        dhi = np.clip(ghi - dni * cosz, 0.0, None)
        return Irradiance(ghi=ghi, dni=dni, dhi=dhi)
    erbs = pvlib.irradiance.erbs(ghi, sun.zenith, times)
    dni = np.nan_to_num(np.asarray(erbs["dni"], dtype=float), nan=0.0)
    dhi = np.nan_to_num(np.asarray(erbs["dhi"], dtype=float), nan=0.0)
    return Irradiance(ghi=ghi, dni=dni, dhi=dhi)


def poa_effective(
    geom: PlaneGeometry, array: ArrayConfig, irr: Irradiance, physics: Physics = DEFAULT_PHYSICS
) -> FloatArray:
    """Plane-of-array irradiance reaching the cells (W/m²): beam x IAM + sky + ground diffuse."""
    sun, orient = geom.sun, geom.orient
    with np.errstate(invalid="ignore", divide="ignore"):
        if physics.transposition == "haydavies":
            sky = pvlib.irradiance.haydavies(
                orient.surface_tilt,
                orient.surface_azimuth,
                irr.dhi,
                irr.dni,
                geom.dni_extra,
                sun.apparent_zenith,
                sun.azimuth,
            )
        else:
            sky = pvlib.irradiance.perez(
                orient.surface_tilt,
                orient.surface_azimuth,
                irr.dhi,
                irr.dni,
                geom.dni_extra,
                sun.apparent_zenith,
                sun.azimuth,
                geom.airmass_rel,
            )
    ground = pvlib.irradiance.get_ground_diffuse(orient.surface_tilt, irr.ghi, albedo=array.albedo)
    beam = irr.dni * geom.cos_aoi * geom.iam
    total = beam + np.nan_to_num(np.asarray(sky, dtype=float), nan=0.0)
    total = total + np.nan_to_num(np.asarray(ground, dtype=float), nan=0.0)
    return np.clip(total, 0.0, None)


def poa_global(
    site: SiteConfig, array: ArrayConfig, times: pd.DatetimeIndex, irr: Irradiance, sun: SunPosition
) -> FloatArray:
    """Plane-of-array irradiance (W/m²) reaching the cells; see ``poa_effective``."""
    return poa_effective(plane_geometry(site, array, times, sun), array, irr)


def cell_temperature_c(
    poa_w_m2: FloatArray,
    temp_air_c: FloatArray,
    wind_m_s: FloatArray,
    physics: Physics = DEFAULT_PHYSICS,
) -> FloatArray:
    if physics.cell_temp_model == "sapm":
        p = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][physics.sapm_mount]
        out = pvlib.temperature.sapm_cell(
            poa_w_m2, temp_air_c, wind_m_s, p["a"], p["b"], p["deltaT"]
        )
    else:
        out = pvlib.temperature.faiman(poa_w_m2, temp_air_c, wind_m_s)
    return np.asarray(out, dtype=float)


def dc_power_w(
    array: ArrayConfig,
    poa_w_m2: FloatArray,
    temp_cell_c: FloatArray,
    physics: Physics = DEFAULT_PHYSICS,
) -> FloatArray:
    """DC power of the whole array at its maximum power point, before system losses."""
    pdc0 = array.dc_kw * 1000.0
    if physics.dc_model == "cec":
        p = cec_parameters(physics.cec_module or "")
        lit = poa_w_m2 > 0.0
        out = np.zeros_like(poa_w_m2, dtype=float)
        if lit.any():
            params: Any = pvlib.pvsystem.calcparams_cec(
                poa_w_m2[lit],
                temp_cell_c[lit],
                p["alpha_sc"],
                p["a_ref"],
                p["I_L_ref"],
                p["I_o_ref"],
                p["R_sh_ref"],
                p["R_s"],
                p["Adjust"],
            )
            mpp = pvlib.pvsystem.max_power_point(*params, method="newton")
            module_stc_w = p["I_mp_ref"] * p["V_mp_ref"]
            out[lit] = np.asarray(mpp["p_mp"], dtype=float) * (pdc0 / module_stc_w)
        return np.clip(np.nan_to_num(out, nan=0.0), 0.0, None)
    dc = pvlib.pvsystem.pvwatts_dc(poa_w_m2, temp_cell_c, pdc0, array.temp_coeff_pct_per_c / 100.0)
    return np.clip(np.nan_to_num(np.asarray(dc, dtype=float), nan=0.0), 0.0, None)


def ac_from_dc(array: ArrayConfig, dc_w: FloatArray) -> FloatArray:
    """System losses, then the inverter/MPPT: PVWatts part-load efficiency and the AC limit."""
    dc = dc_w * (1.0 - array.losses_pct / 100.0)
    eta = array.inverter_efficiency_pct / 100.0
    pdc0 = array.ac_limit_w / eta
    with np.errstate(divide="ignore", invalid="ignore"):
        ac = pvlib.inverter.pvwatts(dc, pdc0, eta_inv_nom=eta)
    return np.clip(np.nan_to_num(np.asarray(ac, dtype=float), nan=0.0), 0.0, array.ac_limit_w)


def ac_from_poa(
    array: ArrayConfig,
    poa_w_m2: FloatArray,
    temp_air_c: FloatArray,
    wind_m_s: FloatArray,
    physics: Physics = DEFAULT_PHYSICS,
) -> FloatArray:
    """POA irradiance -> AC power (W) through cell temperature, DC model, losses, inverter."""
    temp_cell = cell_temperature_c(poa_w_m2, temp_air_c, wind_m_s, physics)
    return ac_from_dc(array, dc_power_w(array, poa_w_m2, temp_cell, physics))


def _column(
    weather: Mapping[str, FloatArray] | None, key: str, n: int, default: float
) -> FloatArray:
    if weather is None or key not in weather:
        return np.full(n, default)
    col = np.asarray(weather[key], dtype=float)
    return np.where(np.isnan(col), default, col)


def sky_irradiance(
    site: SiteConfig,
    geom: PlaneGeometry,
    weather: Mapping[str, FloatArray] | None,
    physics: Physics = DEFAULT_PHYSICS,
) -> Irradiance:
    """GHI/DNI/DHI from the weather (measured or forecast), else Ineichen clear sky."""
    n = len(geom.times)
    if weather is not None and "ghi_w_m2" in weather:
        ghi = np.clip(_column(weather, "ghi_w_m2", n, 0.0), 0.0, None)
        if "dni_w_m2" in weather and "dhi_w_m2" in weather:
            return Irradiance(
                ghi=ghi,
                dni=np.clip(_column(weather, "dni_w_m2", n, 0.0), 0.0, None),
                dhi=np.clip(_column(weather, "dhi_w_m2", n, 0.0), 0.0, None),
            )
        return decompose_ghi(ghi, geom.sun, geom.times, physics.decomposition)
    return clear_sky(site, geom.times, geom.sun)


def ac_power_w(
    site: SiteConfig,
    array: ArrayConfig,
    times: pd.DatetimeIndex,
    weather: Mapping[str, FloatArray] | None = None,
    sun: SunPosition | None = None,
    *,
    physics: Physics | None = None,
    geometry: PlaneGeometry | None = None,
) -> FloatArray:
    """AC power (W) of the array at ``times`` (tz-aware).

    ``weather`` may hold arrays aligned with ``times``: ``ghi_w_m2`` (required for measured sky;
    without it the sky is clear), ``dni_w_m2`` and ``dhi_w_m2`` (else decomposition),
    ``temp_air_c``, ``wind_speed_m_s``. ``physics`` picks the models (default: Perez, Faiman,
    PVWatts, Erbs); ``geometry`` reuses a precomputed ``plane_geometry`` for these times.
    """
    if times.tz is None:
        raise ValueError("times must be timezone-aware")
    physics = physics or DEFAULT_PHYSICS
    geom = geometry if geometry is not None else plane_geometry(site, array, times, sun)
    if len(geom.times) != len(times):
        raise ValueError("geometry does not match times")
    n = len(times)
    irr = sky_irradiance(site, geom, weather, physics)
    poa = poa_effective(geom, array, irr, physics)
    temp_air = _column(weather, "temp_air_c", n, DEFAULT_TEMP_AIR_C)
    wind = _column(weather, "wind_speed_m_s", n, DEFAULT_WIND_M_S)
    return ac_from_poa(array, poa, temp_air, wind, physics)
