"""How the daemon publishes its forecast and site state for other processes (store kv).

``sunbox jobs submit`` may run while the daemon runs or not; admission must see the same
inputs either way, so the daemon writes the latest forecast under ``forecast`` (this format)
and its snapshot under ``box``/``site_state`` (readings by channel, each with ``value``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from appliance.state import PowerForecast

FORECAST_KEY = "forecast"
SITE_KEYS = ("site_state", "box")


def forecast_to_kv(fc: PowerForecast) -> dict[str, Any]:
    return {
        "issued_at": fc.issued_at.isoformat(),
        "start": fc.start.isoformat(),
        "step_s": int(fc.step_s),
        "p10_w": [round(float(v), 1) for v in fc.p10_w],
        "p50_w": [round(float(v), 1) for v in fc.p50_w],
        "p90_w": [round(float(v), 1) for v in fc.p90_w],
        "source": fc.source,
    }


def forecast_from_kv(data: dict[str, Any]) -> PowerForecast:
    """Inverse of ``forecast_to_kv``; raises ValueError on a malformed payload."""
    try:
        p10, p50, p90 = (np.asarray(data[k], dtype=float) for k in ("p10_w", "p50_w", "p90_w"))
        if not (len(p10) == len(p50) == len(p90)) or len(p50) == 0:
            raise ValueError("quantile arrays differ in length or are empty")
        start = datetime.fromisoformat(data["start"])
        issued = datetime.fromisoformat(data["issued_at"])
        if start.tzinfo is None or issued.tzinfo is None:
            raise ValueError("naive time in forecast")
        return PowerForecast(
            issued_at=issued,
            start=start,
            step_s=int(data["step_s"]),
            p10_w=p10,
            p50_w=p50,
            p90_w=p90,
            source=str(data.get("source", "daemon")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed forecast: {exc}") from exc


def soc_from_snapshot(data: Any) -> float | None:
    """SoC from a published snapshot ({"readings": {"soc_pct": {"value": ...}}})."""
    try:
        value = data["readings"]["soc_pct"]["value"]
    except (KeyError, TypeError):
        return None
    return None if value is None else float(value)
