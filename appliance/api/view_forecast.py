"""Forecast vs actual for the site's today and tomorrow (local days), with the P10-P90 band.

From now on the numbers are the daemon's live forecast (store kv ``forecast``: nowcast and
learning included). For the hours of today already past, the live forecast no longer holds
them, so the box's own model is asked about the whole window (``Hindcast``, the saved model
loaded separately from the daemon's, so no thread shares a forecaster); ``live_from`` says
where one hands over to the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from appliance.api.series import bucket_means, local_day_after, local_midnight
from appliance.clock import Clock
from appliance.config import SunboxConfig
from appliance.energy.kv import FORECAST_KEY, forecast_from_kv
from appliance.state import Channel, PowerForecast
from appliance.store import Store

HINDCAST_REFRESH_S = 900.0  # wall seconds; past hours of today do not change their forecast


@dataclass
class ForecastWindow:
    start: datetime
    end: datetime
    step_s: int
    p10_w: list[float | None]
    p50_w: list[float | None]
    p90_w: list[float | None]
    live_from: datetime | None
    source: str
    actual: list[tuple[datetime, float]] = field(default_factory=list)

    def times(self) -> list[datetime]:
        return [self.start + timedelta(seconds=k * self.step_s) for k in range(len(self.p50_w))]

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "step_s": self.step_s,
            "p10_w": self.p10_w,
            "p50_w": self.p50_w,
            "p90_w": self.p90_w,
            "live_from": None if self.live_from is None else self.live_from.isoformat(),
            "source": self.source,
            "actual": [[t.isoformat(), round(v, 1)] for t, v in self.actual],
        }


class Hindcast:
    """The saved forecaster asked about a whole window; cached, computed in a worker thread."""

    def __init__(
        self, config: SunboxConfig, store: Store, wall: Clock, weather: pd.DataFrame | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.wall = wall
        self.weather = weather
        self._cache: dict[datetime, tuple[float, PowerForecast]] = {}
        self._lock = asyncio.Lock()

    async def get(self, start: datetime, hours: float) -> PowerForecast | None:
        async with self._lock:
            hit = self._cache.get(start)
            if hit is not None and self.wall.monotonic() - hit[0] < HINDCAST_REFRESH_S:
                return hit[1]
            fc: PowerForecast | None = None
            with contextlib.suppress(
                Exception
            ):  # a model that cannot load leaves only the live part
                fc = await asyncio.to_thread(self._compute, start, hours)
            if fc is not None:
                self._cache = {start: (self.wall.monotonic(), fc)}
            return fc

    def _compute(self, start: datetime, hours: float) -> PowerForecast:
        from appliance.solar.chain import default_chain
        from appliance.solar.forecaster import load_model

        # one forecast from local midnight: only its slots through the chain, in a worker
        # process when this is the daemon (which keeps pvlib out of its memory)
        model = load_model(self.store, self.config, extend_ahead_s=0.0, chain=default_chain())
        return model.forecast(
            start, self.weather, hours=hours, step_min=self.config.planner.slot_min
        )


def _round(x: float) -> float:
    return round(float(x), 1)


def forecast_window(
    config: SunboxConfig, store: Store, now: datetime, hindcast: PowerForecast | None
) -> ForecastWindow:
    zone = config.site.zone
    start = local_midnight(now, zone)
    end = local_day_after(start, 2, zone)
    step = config.planner.slot_min * 60
    n = int((end - start).total_seconds() // step)
    p10: list[float | None] = [None] * n
    p50: list[float | None] = [None] * n
    p90: list[float | None] = [None] * n
    sources: list[str] = []

    def fill(fc: PowerForecast, from_t: datetime | None) -> None:
        t0 = fc.start.timestamp()
        for k in range(n):
            t = start + timedelta(seconds=k * step)
            if from_t is not None and t < from_t:
                continue
            i = int((t.timestamp() - t0) // fc.step_s)
            if 0 <= i < len(fc):
                p10[k], p50[k], p90[k] = (
                    _round(fc.p10_w[i]),
                    _round(fc.p50_w[i]),
                    _round(fc.p90_w[i]),
                )

    if hindcast is not None:
        fill(hindcast, None)
        sources.append(f"model ({hindcast.source})")
    live_from = None
    got = store.get_kv(FORECAST_KEY)
    if got is not None:
        with contextlib.suppress(ValueError):
            live = forecast_from_kv(got[0])
            live_from = live.start
            fill(live, live.start)
            sources.append(f"live ({live.source})")
    measured = store.telemetry.series(Channel.PV_POWER_W.value, start, now + timedelta(seconds=1))
    actual = [(t, float(np.round(v, 1))) for t, v in bucket_means(measured, start, step)]
    return ForecastWindow(start, end, step, p10, p50, p90, live_from, " + ".join(sources), actual)
