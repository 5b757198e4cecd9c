"""Irradiance and weather -> AC power of the configured array (the bare pvlib chain).

Chain: orientation -> plane-of-array (Perez) -> cell temperature (Faiman) -> DC (PVWatts with
the configured temperature coefficient) -> system losses -> inverter efficiency and AC limit.
The simulator, the forecast and replay all use this one function.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pvlib

from appliance.config import ArrayConfig, SiteConfig
from appliance.solar.clearsky import Irradiance, clear_sky
from appliance.solar.geometry import SunPosition, orientation, sun_position
from appliance.state import FloatArray

DEFAULT_TEMP_AIR_C = 20.0
DEFAULT_WIND_M_S = 1.0


def decompose_ghi(ghi: FloatArray, sun: SunPosition, times: pd.DatetimeIndex) -> Irradiance:
    """GHI -> DNI/DHI with the Erbs model (for feeds and stations that give only GHI)."""
    erbs = pvlib.irradiance.erbs(ghi, sun.zenith, times)
    dni = np.nan_to_num(np.asarray(erbs["dni"], dtype=float), nan=0.0)
    dhi = np.nan_to_num(np.asarray(erbs["dhi"], dtype=float), nan=0.0)
    return Irradiance(ghi=np.asarray(ghi, dtype=float), dni=dni, dhi=dhi)


def poa_global(
    site: SiteConfig, array: ArrayConfig, times: pd.DatetimeIndex, irr: Irradiance, sun: SunPosition
) -> FloatArray:
    """Plane-of-array global irradiance (W/m²), Perez sky diffuse, with AOI losses (Martin-Ruiz)."""
    orient = orientation(array, sun)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float)
    airmass = pvlib.atmosphere.get_relative_airmass(sun.apparent_zenith)
    total = pvlib.irradiance.get_total_irradiance(
        orient.surface_tilt,
        orient.surface_azimuth,
        sun.apparent_zenith,
        sun.azimuth,
        irr.dni,
        irr.ghi,
        irr.dhi,
        dni_extra=dni_extra,
        airmass=airmass,
        albedo=array.albedo,
        model="perez",
    )
    aoi = pvlib.irradiance.aoi(orient.surface_tilt, orient.surface_azimuth, sun.apparent_zenith, sun.azimuth)
    iam = pvlib.iam.martin_ruiz(aoi)
    beam = np.nan_to_num(np.asarray(total["poa_direct"], dtype=float), nan=0.0) * np.nan_to_num(iam, nan=0.0)
    diffuse = np.nan_to_num(np.asarray(total["poa_diffuse"], dtype=float), nan=0.0)
    return np.clip(beam + diffuse, 0.0, None)


def ac_from_poa(
    array: ArrayConfig, poa_w_m2: FloatArray, temp_air_c: FloatArray, wind_m_s: FloatArray
) -> FloatArray:
    """POA irradiance -> AC power (W) through Faiman cell temperature, PVWatts DC and losses."""
    temp_cell = pvlib.temperature.faiman(poa_w_m2, temp_air_c, wind_m_s)
    pdc0 = array.dc_kw * 1000.0
    dc = pvlib.pvsystem.pvwatts_dc(poa_w_m2, temp_cell, pdc0, array.temp_coeff_pct_per_c / 100.0)
    dc = np.asarray(dc, dtype=float) * (1.0 - array.losses_pct / 100.0)
    ac = dc * (array.inverter_efficiency_pct / 100.0)
    return np.clip(np.nan_to_num(ac, nan=0.0), 0.0, array.ac_limit_w)


def _column(weather: Mapping[str, FloatArray] | None, key: str, n: int, default: float) -> FloatArray:
    if weather is None or key not in weather:
        return np.full(n, default)
    col = np.asarray(weather[key], dtype=float)
    return np.where(np.isnan(col), default, col)


def ac_power_w(
    site: SiteConfig,
    array: ArrayConfig,
    times: pd.DatetimeIndex,
    weather: Mapping[str, FloatArray] | None = None,
    sun: SunPosition | None = None,
) -> FloatArray:
    """AC power (W) of the array at ``times`` (tz-aware).

    ``weather`` may hold arrays aligned with ``times``: ``ghi_w_m2`` (required for measured sky;
    without it the sky is clear), ``dni_w_m2`` and ``dhi_w_m2`` (else Erbs decomposition),
    ``temp_air_c``, ``wind_speed_m_s``.
    """
    if times.tz is None:
        raise ValueError("times must be timezone-aware")
    sun = sun or sun_position(site, times)
    n = len(times)
    if weather is not None and "ghi_w_m2" in weather:
        ghi = np.clip(_column(weather, "ghi_w_m2", n, 0.0), 0.0, None)
        if "dni_w_m2" in weather and "dhi_w_m2" in weather:
            irr = Irradiance(
                ghi=ghi,
                dni=np.clip(_column(weather, "dni_w_m2", n, 0.0), 0.0, None),
                dhi=np.clip(_column(weather, "dhi_w_m2", n, 0.0), 0.0, None),
            )
        else:
            irr = decompose_ghi(ghi, sun, times)
    else:
        irr = clear_sky(site, times, sun)
    poa = poa_global(site, array, times, irr, sun)
    temp_air = _column(weather, "temp_air_c", n, DEFAULT_TEMP_AIR_C)
    wind = _column(weather, "wind_speed_m_s", n, DEFAULT_WIND_M_S)
    return ac_from_poa(array, poa, temp_air, wind)
