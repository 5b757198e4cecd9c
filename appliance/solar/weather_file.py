"""The field-data CSV format: measured or forecast weather and PV power, one row per time.

Format (used by ``sunbox forecast``, the backtest, the simulator's ``--weather`` and replay):

- a header row; column ``time`` first, in ISO 8601 *with* a UTC offset
  (``2016-06-01T12:00:00+00:00``, ``...Z`` or ``...+02:00``); rows in increasing time;
- any of ``ghi_w_m2``, ``dni_w_m2``, ``dhi_w_m2`` (W/m²), ``temp_air_c`` (°C),
  ``wind_speed_m_s`` (m/s), ``cloud_cover_pct`` (0-100), ``pv_ac_w`` (W);
- a step between 1 minute and 1 hour; gaps are allowed (missing rows or empty cells);
- each row holds the mean over the interval that starts at ``time`` (interval-beginning labels,
  like the DTU station and Open Power System Data); for 1-minute data the difference is moot;
- ``.csv`` or gzip-compressed ``.csv.gz``.

A file that breaks a rule raises ``WeatherFileError`` (a ValueError) with one line naming the
file, the line (or row time) and column, and the rule. Values in the wrong unit are caught
where physics allows: irradiance above the solar constant or in kW/m², temperatures in kelvin,
cloud cover as a 0-1 fraction, and PV power in kW (or against a wrong ``dc_kw``) when the
array's capacity is given.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from appliance.solar.timegrid import epoch_s

COLUMNS: tuple[str, ...] = (
    "ghi_w_m2",
    "dni_w_m2",
    "dhi_w_m2",
    "temp_air_c",
    "wind_speed_m_s",
    "cloud_cover_pct",
    "pv_ac_w",
)
IRRADIANCE_COLUMNS = ("ghi_w_m2", "dni_w_m2", "dhi_w_m2")
MIN_STEP_S = 60.0
MAX_STEP_S = 3600.0
MISSING_TOKENS = ("", "nan", "NaN", "NA", "N/A", "null")
_OFFSET = re.compile(r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)$")

# Physical bounds per column: (lowest, highest, what a violation usually means).
_BOUNDS: dict[str, tuple[float, float, str]] = {
    "ghi_w_m2": (-50.0, 1600.0, "irradiance must be W/m² (the solar constant is 1361 W/m²)"),
    "dni_w_m2": (-50.0, 1600.0, "irradiance must be W/m² (the solar constant is 1361 W/m²)"),
    "dhi_w_m2": (-50.0, 1000.0, "diffuse irradiance must be W/m² and below 1000"),
    "temp_air_c": (-90.0, 65.0, "air temperature must be °C (not kelvin or °F)"),
    "wind_speed_m_s": (0.0, 100.0, "wind speed must be m/s, 0-100"),
    "cloud_cover_pct": (0.0, 100.0, "cloud cover must be percent, 0-100"),
}


class WeatherFileError(ValueError):
    """A field-data file or frame that breaks the format; the message is one line."""


def read_weather_file(path: Path | str, *, capacity_w: float | None = None) -> pd.DataFrame:
    """Read and validate a field-data CSV (``.csv`` or ``.csv.gz``).

    Returns a float DataFrame indexed by tz-aware UTC times (named ``time``), with only the
    columns present in the file; ``attrs["source"]`` is the path and ``attrs["step_s"]`` the
    typical step. ``capacity_w`` (the array's DC capacity) enables the PV unit check.
    """
    p = Path(path)
    source = str(p)
    try:
        # Fast path: numbers parse as numbers. Only when some cell does not is the file read
        # again as text, to name the line and column that broke the rule.
        raw = pd.read_csv(
            p,
            dtype={"time": str},
            skip_blank_lines=False,
            na_values=list(MISSING_TOKENS),
            keep_default_na=False,
        )
        if not all(pd.api.types.is_numeric_dtype(raw[c]) for c in raw.columns if c != "time"):
            raw = pd.read_csv(p, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise WeatherFileError(f"{source}: no such file") from None
    except pd.errors.EmptyDataError:
        raise WeatherFileError(
            f"{source}: empty file (a header row with 'time' is required)"
        ) from None
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise WeatherFileError(f"{source}: cannot read ({exc})") from None
    except pd.errors.ParserError as exc:
        raise WeatherFileError(f"{source}: not a valid CSV ({str(exc).splitlines()[0]})") from None
    return _parse_table(raw, source, capacity_w)


def _parse_table(raw: pd.DataFrame, source: str, capacity_w: float | None) -> pd.DataFrame:
    names = [str(c).strip() for c in raw.columns]
    raw.columns = pd.Index(names)
    if "time" not in names:
        raise WeatherFileError(f"{source}: line 1: no 'time' column (header is {','.join(names)})")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise WeatherFileError(f"{source}: line 1: column '{dup}' appears twice")
    for name in names:
        if name != "time" and name not in COLUMNS:
            raise WeatherFileError(
                f"{source}: line 1: unknown column '{name}'{_hint(name)}; "
                f"allowed: time, {', '.join(COLUMNS)}"
            )
    if len(raw) == 0:
        raise WeatherFileError(f"{source}: no data rows")

    def where(i: int) -> str:
        return f"line {i + 2}"

    text = raw["time"].fillna("").astype(str).str.strip()
    blank = (text == "").to_numpy()
    if blank.any():
        raise WeatherFileError(f"{source}: {where(int(np.argmax(blank)))}: empty time")
    no_offset = ~text.str.contains(_OFFSET).to_numpy()
    if no_offset.any():
        i = int(np.argmax(no_offset))
        raise WeatherFileError(
            f"{source}: {where(i)}: time '{text.iloc[i]}' has no UTC offset "
            "(ISO 8601 with offset required, e.g. 2016-06-01T12:00:00+00:00)"
        )
    times = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise WeatherFileError(f"{source}: {where(i)}: time '{text.iloc[i]}' is not ISO 8601")
    data: dict[str, np.ndarray] = {}
    for name in names:
        if name == "time":
            continue
        if pd.api.types.is_numeric_dtype(raw[name]):
            data[name] = raw[name].to_numpy(dtype=float)
            continue
        col = raw[name].astype(str).str.strip()
        values = pd.to_numeric(col.where(~col.isin(MISSING_TOKENS), None), errors="coerce")
        arr = values.to_numpy(dtype=float)
        unparsed = np.isnan(arr) & ~col.isin(MISSING_TOKENS).to_numpy()
        if unparsed.any():
            i = int(np.argmax(unparsed))
            raise WeatherFileError(
                f"{source}: {where(i)}, column '{name}': '{col.iloc[i]}' is not a number"
            )
        data[name] = arr
    index = pd.DatetimeIndex(times, name="time")
    frame = pd.DataFrame(data, index=index)
    return _check(frame, source, capacity_w, where)


def _hint(name: str) -> str:
    """' (did you mean ...?)' for a near miss: a typo, or a column without its unit suffix."""
    low = name.strip().lower()
    near = [c for c in COLUMNS if c.startswith(low + "_")]
    near = near or difflib.get_close_matches(low, COLUMNS, n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def validate_weather_frame(
    frame: pd.DataFrame, source: str = "weather", *, capacity_w: float | None = None
) -> pd.DataFrame:
    """Apply the file rules to a DataFrame (e.g. a forecast a link brought as JSON).

    Returns a cleaned copy: UTC index named ``time``, float columns.
    """
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise WeatherFileError(f"{source}: must be indexed by timezone-aware times")
    for name in frame.columns:
        if name not in COLUMNS:
            hint = _hint(str(name))
            raise WeatherFileError(
                f"{source}: unknown column '{name}'{hint}; allowed: {', '.join(COLUMNS)}"
            )
    index = frame.index.tz_convert("UTC")

    def where(i: int) -> str:
        return f"row {index[i].isoformat()}"

    try:
        data = {
            str(c): pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=float)
            for c in frame.columns
        }
    except (ValueError, TypeError) as exc:
        raise WeatherFileError(f"{source}: non-numeric value ({exc})") from None
    out = pd.DataFrame(data, index=pd.DatetimeIndex(index, name="time"))
    return _check(out, source, capacity_w, where)


def _check(
    frame: pd.DataFrame, source: str, capacity_w: float | None, where: Callable[[int], str]
) -> pd.DataFrame:
    """Order, step and plausibility rules shared by files and frames."""
    t = epoch_s(pd.DatetimeIndex(frame.index))
    if len(t) > 1:
        d = np.diff(t)
        if (d <= 0).any():
            i = int(np.argmax(d <= 0)) + 1
            what = "repeats the previous time" if d[i - 1] == 0 else "goes back in time"
            raise WeatherFileError(
                f"{source}: {where(i)}: time {frame.index[i].isoformat()} {what}"
            )
        if (d < MIN_STEP_S).any():
            i = int(np.argmax(d < MIN_STEP_S)) + 1
            raise WeatherFileError(
                f"{source}: {where(i)}: rows {d[i - 1]:g} s apart; the step must be 1 min to 1 h"
            )
        step = float(np.median(d))
        if step > MAX_STEP_S:
            raise WeatherFileError(
                f"{source}: typical step is {step / 3600:g} h; the step must be 1 min to 1 h"
            )
    else:
        step = float("nan")
    span_days = (t[-1] - t[0]) / 86400.0 if len(t) else 0.0
    for name in frame.columns:
        arr = frame[name].to_numpy(dtype=float)
        finite = ~np.isnan(arr)
        if not finite.any():
            continue
        _check_column(str(name), arr, finite, span_days, source, capacity_w, where)
    frame.attrs["source"] = source
    frame.attrs["step_s"] = step
    return frame


def _check_column(
    name: str,
    arr: np.ndarray,
    finite: np.ndarray,
    span_days: float,
    source: str,
    capacity_w: float | None,
    where: Callable[[int], str],
) -> None:
    def fail(mask: np.ndarray, rule: str) -> None:
        i = int(np.argmax(mask))
        raise WeatherFileError(f"{source}: {where(i)}, column '{name}': {arr[i]:g} {rule}")

    if name in _BOUNDS:
        lo, hi, meaning = _BOUNDS[name]
        low = finite & (arr < lo)
        if low.any():
            fail(low, f"is below {lo:g}: {meaning}")
        high = finite & (arr > hi)
        if high.any():
            fail(high, f"is above {hi:g}: {meaning}")
    vmax = float(np.nanmax(arr))
    if name in IRRADIANCE_COLUMNS and name != "dhi_w_m2" and span_days >= 1.0 and 0.0 < vmax <= 1.6:
        raise WeatherFileError(
            f"{source}: column '{name}': largest value {vmax:g} over {span_days:.0f} days "
            "looks like kW/m²; "
            "expected W/m²"
        )
    if name == "cloud_cover_pct" and vmax <= 1.0 and ((arr > 0.0) & (arr < 1.0)).any():
        raise WeatherFileError(
            f"{source}: column '{name}': all values are 0-1, a fraction; expected percent 0-100"
        )
    if name == "pv_ac_w":
        floor_w = -max(50.0, 0.02 * capacity_w) if capacity_w else -1e9
        neg = finite & (arr < floor_w)
        if neg.any():
            fail(neg, "is too negative for PV output (night consumption is a few W)")
        if capacity_w:
            over = finite & (arr > 1.5 * capacity_w)
            if over.any():
                fail(
                    over,
                    f"W is above 150 % of the array's {capacity_w:g} W: "
                    "wrong unit, or wrong dc_kw?",
                )
            if span_days >= 1.0 and vmax < 0.02 * capacity_w:
                raise WeatherFileError(
                    f"{source}: column '{name}': largest value {vmax:g} W is under 2 % "
                    "of the array's "
                    f"{capacity_w:g} W over {span_days:.0f} days: kW in a W column?"
                )


def write_weather_file(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write a frame in the field-data format (gzip when the name ends in ``.gz``)."""
    clean = validate_weather_frame(frame, str(path))
    out = pd.DataFrame(index=range(len(clean)))
    out["time"] = pd.DatetimeIndex(clean.index).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    for name in COLUMNS:
        if name in clean.columns:
            out[name] = clean[name].to_numpy()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(
        p,
        index=False,
        float_format="%.6g",
        lineterminator="\n",
        compression={"method": "gzip", "mtime": 0} if p.suffix == ".gz" else None,
    )
    return p


def typical_step_s(frame: pd.DataFrame) -> float:
    """Median spacing of the rows in seconds (NaN with fewer than two rows)."""
    step = frame.attrs.get("step_s")
    if isinstance(step, float) and not np.isnan(step):
        return step
    t = epoch_s(pd.DatetimeIndex(frame.index))
    return float(np.median(np.diff(t))) if len(t) > 1 else float("nan")
