"""Clear-sky irradiance: Ineichen-Perez with the monthly Linke turbidity pvlib ships."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from appliance.config import SiteConfig
from appliance.solar.geometry import SunPosition
from appliance.solar.lazy_pvlib import pvlib
from appliance.state import FloatArray


@dataclass(frozen=True)
class Irradiance:
    ghi: FloatArray
    dni: FloatArray
    dhi: FloatArray


@lru_cache(maxsize=64)
def _monthly_linke(lat: float, lon: float) -> tuple[float, ...]:
    """The twelve monthly values at a place (reading pvlib's HDF5 table costs milliseconds)."""
    mid_months = pd.DatetimeIndex([pd.Timestamp(2020, m, 15, tz="UTC") for m in range(1, 13)])
    values = pvlib.clearsky.lookup_linke_turbidity(mid_months, lat, lon)
    return tuple(float(v) for v in np.asarray(values, dtype=float))


def linke_turbidity(site: SiteConfig, times: pd.DatetimeIndex) -> FloatArray:
    """Monthly climatological Linke turbidity at the site (pvlib's LinkeTurbidities.h5)."""
    table = np.asarray(_monthly_linke(site.lat, site.lon))
    return np.asarray(table[np.asarray(times.month) - 1], dtype=float)


def clear_sky(site: SiteConfig, times: pd.DatetimeIndex, sun: SunPosition) -> Irradiance:
    """Ineichen clear-sky GHI/DNI/DHI in W/m²; zero when the sun is down."""
    airmass_rel = pvlib.atmosphere.get_relative_airmass(sun.apparent_zenith)
    pressure = pvlib.atmosphere.alt2pres(site.altitude_m)
    airmass_abs = pvlib.atmosphere.get_absolute_airmass(airmass_rel, pressure)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(times), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):  # night: airmass is NaN, handled below
        cs = pvlib.clearsky.ineichen(
            sun.apparent_zenith,
            airmass_abs,
            linke_turbidity(site, times),
            altitude=site.altitude_m,
            dni_extra=dni_extra,
        )

    def arr(key: str) -> FloatArray:
        return np.nan_to_num(np.asarray(cs[key], dtype=float), nan=0.0)

    return Irradiance(ghi=arr("ghi"), dni=arr("dni"), dhi=arr("dhi"))
