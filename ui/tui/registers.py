"""A device's register table as a technician reads it: point, raw value, scaled value, unit,
how old, and whether it may be written (and within what).

The API gives the scaled point table; the raw register value is recovered from the map the
value was scaled with (SunSpec scale factors from the same table, Victron and generic scales
from the register list and the config), so a wrong scale factor shows as a raw number that
does not match the device's own display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.config import DeviceConfig
from appliance.devices.registers import sunspec_model, victron_points
from ui.tui.views import DeviceView


@dataclass(frozen=True)
class RegisterRow:
    point: str
    raw: str
    scaled: str
    unit: str
    age: str
    stale: bool
    limits: str


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def _raw_and_unit(
    key: str, value: Any, table: dict[str, Any], dev: DeviceConfig | None
) -> tuple[Any, str]:
    """(raw register value, unit) of one point; raw is the value itself when nothing scales it."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value, ""
    if key.startswith("victron."):
        reg = key.removeprefix("victron.")
        vp = victron_points().get(int(reg)) if reg.isdigit() else None
        return (round(value * vp.scale), vp.unit) if vp is not None else (value, "")
    model_text, dot, rest = key.partition(".")
    if dot and model_text.isdigit():
        try:
            pdef = sunspec_model(int(model_text)).point(rest.rsplit(".", 1)[-1])
        except KeyError:
            return value, ""
        sf: Any = pdef.sf
        if isinstance(sf, str):
            sf = table.get(f"{model_text}.{sf}")
            if sf is None and "]." in rest:  # a group's own scale factor
                sf = table.get(f"{model_text}.{rest.rsplit('.', 1)[0]}.{pdef.sf}")
        if isinstance(sf, int) and not isinstance(sf, bool):
            return round(value / 10.0**sf), pdef.units
        return value, pdef.units
    if dev is not None and key in dev.points:
        p = dev.points[key]
        raw = value / p.scale
        return (round(raw) if p.type != "float32" else raw), p.unit
    return value, ""


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 6000:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def register_rows(view: DeviceView, dev: DeviceConfig | None, now: datetime) -> list[RegisterRow]:
    """Every point of the device, in map order; stale when older than the device's limit."""
    age_s = None if view.points_at is None else max(0.0, (now - view.points_at).total_seconds())
    stale_after = dev.stale_after_s if dev is not None else 15.0
    stale = age_s is None or age_s > stale_after
    limits = dev.limits if dev is not None else {}
    rows = []
    for key, value in view.points.items():
        raw, unit = _raw_and_unit(key, value, view.points, dev)
        lim = limits.get(key)
        rows.append(
            RegisterRow(
                key,
                _fmt(raw),
                _fmt(value),
                unit,
                _age(age_s),
                stale,
                "" if lim is None else f"{lim.min:g}..{lim.max:g}",
            )
        )
    return rows
