"""Measured thermal records: indoor and outdoor temperature and heating power over time.

Two layouts are read as they come:

- the Armadillo test-building CSV of pySIP (``Time`` in s, ``T_ext``, ``P_hea``, ``I_sol``,
  ``T_int``), and
- a plain CSV ``time,indoor_temp_c,outdoor_temp_c,heat_w[,solar_w_m2]`` where ``time`` is
  ISO 8601 (a zone or ``Z``; naive means UTC) or seconds.

Rows with a missing value are dropped (and counted); times must increase.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from appliance.state import FloatArray

PLAIN = ("time", "indoor_temp_c", "outdoor_temp_c", "heat_w")
ARMADILLO = ("Time", "T_int", "T_ext", "P_hea")
MIN_ROWS = 20


@dataclass(frozen=True)
class ThermalRecord:
    time_s: FloatArray  # seconds since the first sample
    indoor_c: FloatArray
    outdoor_c: FloatArray
    heat_w: FloatArray
    solar_w_m2: FloatArray | None
    layout: str
    dropped_rows: int = 0

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def dt_s(self) -> FloatArray:
        return np.diff(self.time_s)


def load_record(path: Path | str) -> ThermalRecord:
    """Read a thermal CSV; ValueError with one clear line when it cannot be used."""
    p = Path(path)
    try:
        frame = pd.read_csv(p)
    except FileNotFoundError:
        raise ValueError(f"{p}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise ValueError(f"{p}: cannot read ({exc.strerror or exc})") from None
    cols = set(frame.columns)
    if set(ARMADILLO) <= cols:
        names = {"time": "Time", "indoor": "T_int", "outdoor": "T_ext", "heat": "P_hea",
                 "solar": "I_sol"}
        layout = "armadillo"
    elif set(PLAIN) <= cols:
        names = {"time": "time", "indoor": "indoor_temp_c", "outdoor": "outdoor_temp_c",
                 "heat": "heat_w", "solar": "solar_w_m2"}
        layout = "plain"
    else:
        raise ValueError(
            f"{p}: needs columns {','.join(PLAIN)}[,solar_w_m2] (or the Armadillo layout "
            f"{','.join(ARMADILLO)}[,I_sol]); found {','.join(map(str, frame.columns))}"
        )
    keep = [names[k] for k in ("time", "indoor", "outdoor", "heat")]
    has_solar = names["solar"] in cols
    if has_solar:
        keep.append(names["solar"])
    frame = frame[keep]
    times = _seconds(frame[names["time"]], p)
    values = frame.drop(columns=[names["time"]]).apply(pd.to_numeric, errors="coerce")
    ok = np.isfinite(times) & np.all(np.isfinite(values.to_numpy(dtype=float)), axis=1)
    dropped = int((~ok).sum())
    times, values = times[ok], values[ok]
    if len(times) < MIN_ROWS:
        raise ValueError(f"{p}: only {len(times)} complete rows; at least {MIN_ROWS} are needed")
    steps = np.diff(times)
    if np.any(steps <= 0):
        bad = int(np.argmax(steps <= 0)) + 1
        raise ValueError(f"{p}: time does not increase at data row {bad + 1}")
    return ThermalRecord(
        time_s=times - times[0],
        indoor_c=values[names["indoor"]].to_numpy(dtype=float),
        outdoor_c=values[names["outdoor"]].to_numpy(dtype=float),
        heat_w=values[names["heat"]].to_numpy(dtype=float),
        solar_w_m2=values[names["solar"]].to_numpy(dtype=float) if has_solar else None,
        layout=layout,
        dropped_rows=dropped,
    )


def _seconds(column: pd.Series, path: Path) -> FloatArray:
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().mean() > 0.9:
        return numeric.to_numpy(dtype=float)
    try:
        stamps = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: time column is neither seconds nor ISO 8601 ({exc})") from None
    if stamps.notna().mean() <= 0.9:
        raise ValueError(f"{path}: time column is neither seconds nor ISO 8601 times")
    epoch = pd.Timestamp(0, tz="UTC")
    return (stamps - epoch).dt.total_seconds().to_numpy(dtype=float)
