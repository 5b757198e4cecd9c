"""The stateful PV forecaster: learns from the box's own measured power, forecasts P10/P50/P90.

Used by the daemon (live), replay (a year re-forecast every 15 minutes) and the backtest; the
pure ``forecast.forecast_pv`` wraps it. The model, per slot:

    clear-sky AC power of the configured array (pvlib chain, precomputed)        P_cs
  x effective scale of the array at that solar hour (``envelope``)               g
  = calibrated clear-sky power                                                   C
  x clear-sky index k, blended per horizon from climatology, a weather feed,
    the last hour and the last day (``blend``), plus its own error quantiles
    per horizon and sky state (``quantiles``)                                    k10 k50 k90

Learning is prequential: when measured slots arrive, the box first asks what it *would have*
forecast for them at each horizon with what it knew before (hindsight issue times), scores
that against the measurement, and only then adds them to its statistics. So the error
quantiles are out-of-sample and a source's weight reflects how it did in forecasts.

Learned state is JSON (``to_state``/``from_state``; ``save_model``/``load_model`` put it in
the store's kv under ``forecast_model``), so a reboot keeps what the box learned.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from appliance.clock import Clock, as_utc
from appliance.config import SunboxConfig
from appliance.solar.blend import DAY, NOW, NWP, REPRESENTATIVE_H, SourceBlend, horizon_bin
from appliance.solar.chain import (
    ChainSpec,
    ClearBlock,
    InProcessChain,
    PVChain,
    clear_sky_index,
    weather_slot_range,
)
from appliance.solar.clearsky_table import EXTEND_AHEAD_S, ClearSkyTable, TableBlock
from appliance.solar.climatology import IndexClimatology
from appliance.solar.envelope import ScaleEnvelope
from appliance.solar.pvsystem import Physics
from appliance.solar.quantiles import ResidualQuantiles, sky_state
from appliance.solar.recent import RecentSlots
from appliance.solar.timegrid import epoch_s
from appliance.solar.weather_file import validate_weather_frame
from appliance.solar.weather_inputs import pv_from_weather
from appliance.state import FloatArray, ForecastCalibration, PowerForecast

if TYPE_CHECKING:
    from appliance.store import Store

STATE_VERSION = 1
KV_KEY = "forecast_model"
DAYLIGHT_ELEVATION_DEG = 5.0  # slots scored and learned from (low sun is noise, not signal)
BRIGHT_FRACTION = 0.05  # calibrated clear-sky power (share of DC kW) that defines an index
ENVELOPE_FRACTION = 0.03  # clear-sky power share above which a slot informs the scale
LEARN_EVERY_S = 3 * 3600.0  # statistics are updated in batches of this much time
LEARN_CHUNK_S = 86400.0  # long histories are learned a day at a time, in order
NOWCAST_WINDOW_S = 3600.0
DAY_WINDOW_S = 86400.0
K_MAX = 1.3  # highest clear-sky index forecast (cloud enhancement on 15-min means is rarer)
MAX_SAMPLE_FACTOR = 10.0  # samples above this many times the DC capacity are rejected
WEATHER_KEEP_S = 800 * 86400.0  # a feed's indices older than this are dropped


def _fingerprint(config: SunboxConfig, step_s: float) -> str:
    """What the learned state depends on; a different array means starting over."""
    payload = {
        "site": config.site.model_dump(mode="json", exclude={"name"}),
        "array": config.array.model_dump(mode="json"),
        "physics": Physics.from_config(config.forecast).__dict__,
        "step_s": step_s,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


NO_SLOT = -(2**62)
COVERAGE_MIN = 0.5  # a persistence window speaks only if half its daylight is known


class Forecaster:
    """Incremental PV forecaster for one site and array. Not thread-safe: one owner calls it."""

    def __init__(
        self,
        config: SunboxConfig,
        clock: Clock | None = None,
        *,
        extend_ahead_s: float = EXTEND_AHEAD_S,
        chain: PVChain | None = None,
        calibration: ForecastCalibration | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.extend_ahead_s = extend_ahead_s
        self.chain: PVChain = chain or InProcessChain()
        fc = config.forecast
        self.site = config.site
        self.array = config.array
        self.physics = Physics.from_config(fc)
        self.step_s = float(fc.step_min * 60)
        self.horizon_h = float(fc.horizon_h)
        self.nowcast_h = float(fc.nowcast_h)
        self.capacity_w = config.array.dc_kw * 1000.0
        self.climatology = IndexClimatology(prior_index=fc.prior_clear_sky_index)
        self.envelope = ScaleEnvelope()
        self.blend = SourceBlend(half_life_days=fc.learn_half_life_days)
        self.quantiles = ResidualQuantiles(half_life_days=fc.learn_half_life_days)
        self.recent = RecentSlots.empty(self.step_s)
        # the running-energy calibration, when the box runs one (``forecast.running_calibration``)
        self.running = calibration
        self.fingerprint = _fingerprint(config, self.step_s)
        self.spec = ChainSpec.of(self.site, self.array, self.physics, fc.cloud_model)
        self.restore_note = "new"
        self._tables: dict[float, ClearSkyTable] = {}
        self._open_slot: int | None = None
        self._open_sum = 0.0
        self._open_n = 0
        self._open_censored = False  # some sample of the open slot may have been curtailed
        self.samples_censored = 0  # slots learned above their (curtailed) measurement
        # last completed slot number; slot numbers are negative before 1970 (TMY years), so the
        # sentinel for "none yet" is far below any real slot rather than -1
        self._last_done: int = NO_SLOT
        self._pending_slots: list[np.ndarray] = []
        self._pending_meas: list[FloatArray] = []
        self._last_learn_s: float | None = None
        self._weather_obj: pd.DataFrame | None = None
        self._nwp: dict[float, tuple[int, FloatArray]] = {}  # step -> (first slot no, index)
        self.slots_learned = 0
        self.samples_rejected = 0

    # ------------------------------------------------------------------ tables

    def table(self, step_s: float | None = None) -> ClearSkyTable:
        step = float(step_s or self.step_s)
        tab = self._tables.get(step)
        if tab is None:
            tab = ClearSkyTable(self.site, self.array, self.physics, step, self.extend_ahead_s,
                                chain=self.chain, spec=self.spec)
            self._tables[step] = tab
        return tab

    def precompute(self, start: datetime, end: datetime) -> None:
        """Compute clear-sky power for [start, end) at once (replay: the whole year)."""
        self.table().ensure(as_utc(start).timestamp(), as_utc(end).timestamp(), ahead_s=self.step_s)

    # ------------------------------------------------------------------ weather

    def table_needs(self, now: datetime, hours: float | None = None,
                    step_min: int | None = None) -> list[tuple[float, float, int]]:
        """(step, first slot start, slots) the tables lack to learn at ``now`` and forecast
        ``hours`` from it: what an owner may compute off its event loop and ``adopt``."""
        now_s = as_utc(now).timestamp()
        end_s = now_s + (self.horizon_h if hours is None else float(hours)) * 3600.0
        out = []
        for step in {self.step_s, float(step_min * 60) if step_min else self.step_s}:
            gap = self.table(step).missing(now_s - step, end_s + step)
            if gap is not None:
                out.append((step, gap[0], gap[1]))
        return out

    def adopt_block(self, block: ClearBlock) -> None:
        self.table(block.step_s).adopt(TableBlock.of(block))

    def weather_indices(
        self, frame: pd.DataFrame, *, step_min: int | None = None
    ) -> dict[float, tuple[int, FloatArray]]:
        """A feed's clear-sky index per slot for every step in use (and ``step_min``), computed
        by the chain alone (no shared state: safe off the event loop; then ``set_weather``)."""
        frame = validate_weather_frame(frame, str(frame.attrs.get("source", "weather")))
        steps = set(self._nwp) | {self.step_s} | ({float(step_min * 60)} if step_min else set())
        return {step: self.chain.weather_index(self.spec, frame, step) for step in steps}

    def set_weather(self, weather: pd.DataFrame | None,
                    indices: dict[float, tuple[int, FloatArray]] | None = None) -> None:
        """Take a weather feed (field-data frame: GHI and/or cloud cover, temp, wind).

        Its clear-sky index per slot is kept: for forecasting, and to judge the feed against
        measurements as they arrive. A newer feed overrides an older one where it has values;
        ``None`` changes nothing (what earlier feeds said stays known).
        """
        if weather is None or weather is self._weather_obj:
            return
        frame = validate_weather_frame(weather, str(weather.attrs.get("source", "weather")))
        self._weather_obj = weather
        steps = set(self._nwp) | {self.step_s} | set(indices or {})
        for step in steps:
            known = (indices or {}).get(step)
            self._merge_nwp(step, known if known is not None else self._weather_index(frame, step))

    def _weather_index(self, frame: pd.DataFrame, step: float) -> tuple[int, FloatArray]:
        if not self.chain.in_process:
            return self.chain.weather_index(self.spec, frame, step)
        # in this process: reuse the table's sun and mount geometry, computed once for the year
        first, last = weather_slot_range(frame, step)
        tab = self.table(step)
        tab.ensure(first * step, last * step, ahead_s=step)
        blk = tab.block
        assert blk is not None
        i0 = int(round((first * step - blk.t0_s) / step))
        sec = blk.section(i0, i0 + (last - first))
        if sec.geometry is None:
            return self.chain.weather_index(self.spec, frame, step)
        pv = pv_from_weather(
            self.site,
            self.array,
            sec.geometry.times,
            frame,
            physics=self.physics,
            geometry=sec.geometry,
            cloud_model=self.config.forecast.cloud_model,
        )
        return first, clear_sky_index(pv, sec.pv_clear_w, self.capacity_w)

    def _merge_nwp(self, step: float, new: tuple[int, FloatArray]) -> None:
        old = self._nwp.get(step)
        first, k = new
        if old is not None:
            o_first, o_k = old
            lo = min(first, o_first)
            hi = max(first + k.size, o_first + o_k.size)
            merged = np.full(hi - lo, np.nan)
            merged[o_first - lo : o_first - lo + o_k.size] = o_k
            fresh = ~np.isnan(k)
            view = merged[first - lo : first - lo + k.size]
            view[fresh] = k[fresh]
            first, k = lo, merged
        limit = int(WEATHER_KEEP_S / step)
        if k.size > limit:
            first, k = first + k.size - limit, k[k.size - limit :]
        self._nwp[step] = (first, k)

    def _nwp_at(self, step: float, slots: np.ndarray) -> FloatArray:
        entry = self._nwp.get(step)
        if entry is None and self._weather_obj is not None and step != self.step_s:
            frame = validate_weather_frame(self._weather_obj)
            self._merge_nwp(step, self._weather_index(frame, step))
            entry = self._nwp.get(step)
        if entry is None:
            return np.full(slots.shape, np.nan)
        first, k = entry
        idx = slots - first
        ok = (idx >= 0) & (idx < k.size)
        out = np.full(slots.shape, np.nan)
        out[ok] = k[idx[ok]]
        return out

    # ------------------------------------------------------------------ observing

    def observe(
        self, times: pd.DatetimeIndex | pd.Series | list[datetime], measured_pv_w: Any
    ) -> int:
        """Take measured PV AC power samples (W) at ``times`` (tz-aware); returns how many count.

        Samples are averaged into slots; a slot is complete when a later sample arrives or a
        forecast is asked for after its end. Samples older than the slot in progress, NaN, or
        beyond ten times the array's capacity are not used (``samples_rejected`` counts them).
        """
        idx = pd.DatetimeIndex(times)
        values = np.asarray(measured_pv_w, dtype=float).reshape(-1)
        if len(idx) != values.size:
            raise ValueError(f"observe: {len(idx)} times but {values.size} values")
        if values.size == 0:
            return 0
        t = epoch_s(idx)
        if values.size > 1 and (np.diff(t) < 0).any():
            order = np.argsort(t, kind="stable")
            t, values = t[order], values[order]
        ok = (
            ~np.isnan(values)
            & (values <= MAX_SAMPLE_FACTOR * self.capacity_w)
            & (values >= -0.1 * self.capacity_w)
        )
        slots = np.floor(t / self.step_s).astype(np.int64)
        floor_slot = self._open_slot if self._open_slot is not None else self._last_done + 1
        ok &= slots >= floor_slot
        self.samples_rejected += int((~ok).sum())
        if not ok.any():
            return 0
        slots, values = slots[ok], np.clip(values[ok], 0.0, None)
        used = int(values.size)
        if self._open_slot is not None:
            slots = np.concatenate(([self._open_slot], slots))
            values = np.concatenate(([self._open_sum], values))
            counts_in = np.concatenate(([self._open_n], np.ones(used, dtype=np.int64)))
        else:
            counts_in = np.ones(used, dtype=np.int64)
        uniq, inv = np.unique(slots, return_inverse=True)
        sums = np.bincount(inv, weights=values)
        counts = np.bincount(inv, weights=counts_in)
        self._open_slot, self._open_sum, self._open_n = (
            int(uniq[-1]),
            float(sums[-1]),
            int(counts[-1]),
        )
        if uniq.size > 1:
            self._complete(uniq[:-1], sums[:-1] / counts[:-1])
        return used

    def observe_one(self, at: datetime, measured_pv_w: float | None, *, censored: bool = False) -> bool:
        """One sample (the control loop's latest reading): the cheap path of ``observe``.

        ``censored``: the MPPT may have been curtailing (battery nearly full or charging at its
        limit), so the sample is only a lower bound of what the sun offered. A slot with such a
        sample is learned only if it is bright anyway (see ``_complete``): a curtailed sunny
        hour must not teach the forecaster that the day was dull.
        """
        if measured_pv_w is None or measured_pv_w != measured_pv_w:
            self.samples_rejected += 1
            return False
        value = float(measured_pv_w)
        if value > MAX_SAMPLE_FACTOR * self.capacity_w or value < -0.1 * self.capacity_w:
            self.samples_rejected += 1
            return False
        slot = int(math.floor(as_utc(at).timestamp() / self.step_s))
        if self._open_slot is not None and slot == self._open_slot:
            self._open_sum += max(value, 0.0)
            self._open_n += 1
            self._open_censored |= censored
            return True
        if slot < (self._open_slot if self._open_slot is not None else self._last_done + 1):
            self.samples_rejected += 1
            return False
        if self._open_slot is not None:
            done, mean = self._open_slot, self._open_sum / max(self._open_n, 1)
            was_censored = self._open_censored
            self._open_slot, self._open_sum, self._open_n = slot, max(value, 0.0), 1
            self._open_censored = censored
            self._complete(np.array([done], dtype=np.int64), np.array([mean]),
                           np.array([True]) if was_censored else None)
        else:
            self._open_slot, self._open_sum, self._open_n = slot, max(value, 0.0), 1
            self._open_censored = censored
        return True

    def flush(self, now: datetime) -> None:
        """Complete the slot in progress if ``now`` is past its end."""
        if (
            self._open_slot is not None
            and (self._open_slot + 1) * self.step_s <= as_utc(now).timestamp()
        ):
            slot, mean = self._open_slot, self._open_sum / max(self._open_n, 1)
            was_censored = self._open_censored
            self._open_slot, self._open_sum, self._open_n = None, 0.0, 0
            self._open_censored = False
            self._complete(np.array([slot], dtype=np.int64), np.array([mean]),
                           np.array([True]) if was_censored else None)

    def _complete(self, slots: np.ndarray, means: FloatArray, censored: np.ndarray | None = None) -> None:
        """Record finished slots, a day at a time so long histories are learned in order.

        Censored slots (possibly curtailed) are kept only when bright anyway: at least
        ``CENSORED_BRIGHT`` of the calibrated clear-sky power (a lower bound that high says the
        sky was clear enough); the others are dropped, since they say nothing about the sky."""
        if self.running is not None:
            self.running.record(slots.astype(float) * self.step_s, means, censored, self.step_s)
        chunk = max(1, int(LEARN_CHUNK_S / self.step_s))
        if slots.size > 1:  # one pass of the PV chain for a long history, not one per day
            self.table().ensure(float(slots[0]) * self.step_s, float(slots[-1] + 1) * self.step_s)
        if censored is not None and censored.any():
            # A censored slot says "at least this much". Dropping it would keep only the dull
            # hours (a sunny day fills the battery and curtails; a dull one does not), and the
            # forecaster would learn that every day is dull. Instead it is learned at the larger
            # of its bound and the climatological index for its month and hour: the expected
            # sky, never below what was measured (a Kaplan-Meier-like redistribution).
            clear_c, elev_c, hour_c, month_c = self.table().lookup(slots * self.step_s)
            g_c = self.envelope.scale_by_hour()[hour_c]
            cal_c = g_c * clear_c
            k_clim = self.climatology.table()[month_c, hour_c] / np.maximum(g_c, 1e-9)
            bright_c = (cal_c >= BRIGHT_FRACTION * self.capacity_w) & (elev_c > 0.0)
            lifted = np.where(censored & bright_c, np.maximum(means, k_clim * cal_c), means)
            self.samples_censored += int((censored & bright_c & (lifted > means)).sum())
            means = lifted
        for i in range(0, slots.size, chunk):
            s, m = slots[i : i + chunk], means[i : i + chunk]
            clear, elev, hour, _month = self.table().lookup(s * self.step_s)
            cal = self.envelope.scale_by_hour()[hour] * clear
            bright = (cal >= BRIGHT_FRACTION * self.capacity_w) & (elev > 0.0)
            self.recent.add(s, m, np.where(bright, cal, 0.0))
            self._pending_slots.append(s)
            self._pending_meas.append(m)
            self._last_done = int(s[-1])
            if (
                self._last_done - int(self._pending_slots[0][0]) + 1
            ) * self.step_s >= LEARN_EVERY_S:
                self.learn()

    # ------------------------------------------------------------------ learning

    def learn(self) -> None:
        """Fold pending completed slots into the statistics (prequential: score, then learn)."""
        if not self._pending_slots:
            return
        slots = np.concatenate(self._pending_slots)
        meas = np.concatenate(self._pending_meas)
        self._pending_slots, self._pending_meas = [], []
        step = self.step_s
        clear, elev, hour, month = self.table().lookup(slots * step)
        end_s = float((slots[-1] + 1) * step)
        elapsed_days = (
            0.0 if self._last_learn_s is None else max(0.0, end_s - self._last_learn_s) / 86400.0
        )
        self._last_learn_s = end_s
        self.blend.fade(elapsed_days)
        self.quantiles.fade(elapsed_days)

        g = self.envelope.scale_by_hour()[hour]
        cal = g * clear
        day = (elev > DAYLIGHT_ELEVATION_DEG) & (cal >= BRIGHT_FRACTION * self.capacity_w * 0.2)
        if day.any():
            self._learn_sources(slots[day], meas[day], cal[day], hour[day], month[day], g[day])
        lit = clear > 0.01 * self.capacity_w
        self.climatology.update(
            month[lit], hour[lit], meas[lit], clear[lit], step / 3600.0, elapsed_days
        )
        bright = (clear >= ENVELOPE_FRACTION * self.capacity_w) & (elev > DAYLIGHT_ELEVATION_DEG)
        self.envelope.update(hour[bright], meas[bright] / clear[bright], elapsed_days)
        self.slots_learned += int(slots.size)

    def _learn_sources(
        self,
        slots: np.ndarray,
        meas: FloatArray,
        cal: FloatArray,
        hour: np.ndarray,
        month: np.ndarray,
        g: FloatArray,
    ) -> None:
        """Hindsight forecasts of these slots from every horizon bin at once, scored, then
        added to the blend and the error histograms."""
        step = self.step_s
        n = slots.size
        nb = REPRESENTATIVE_H.size
        y = np.clip(meas / cal, 0.0, 2.0)
        w = (cal / self.capacity_w) ** 2
        k_nwp = self._nwp_at(step, slots)
        has_nwp = ~np.isnan(k_nwp)
        x = np.zeros((nb, n, 5))
        x[:, :, 0] = 1.0
        x[:, :, 1] = self.climatology.predict(month, hour) / g
        x[:, :, 2] = np.where(has_nwp, k_nwp, 0.0)
        avail = np.broadcast_to(np.where(has_nwp, NWP, 0), (nb, n)).copy()
        lead = REPRESENTATIVE_H[:, None] * 3600.0 / step  # hindsight issue times, in slots
        issue_slot = np.floor((slots + 0.5)[None, :] - lead).astype(np.int64).ravel()
        min_clear = BRIGHT_FRACTION * self.capacity_w
        m, c, p = self.recent.window(issue_slot, max(1, int(round(NOWCAST_WINDOW_S / step))))
        ok = ((c >= min_clear) & (c >= COVERAGE_MIN * p)).reshape(nb, n) & (
            REPRESENTATIVE_H <= self.nowcast_h)[:, None]
        x[:, :, 3] = np.where(ok, m.reshape(nb, n) / np.maximum(c.reshape(nb, n), 1e-9), 0.0)
        avail |= np.where(ok, NOW, 0)
        m, c, p = self.recent.window(issue_slot, max(1, int(round(DAY_WINDOW_S / step))))
        ok = ((c >= 4.0 * min_clear) & (c >= COVERAGE_MIN * p)).reshape(nb, n)
        x[:, :, 4] = np.where(ok, m.reshape(nb, n) / np.maximum(c.reshape(nb, n), 1e-9), 0.0)
        avail |= np.where(ok, DAY, 0)

        hb = np.repeat(np.arange(nb), n)
        flat_x = x.reshape(nb * n, 5)
        flat_avail = avail.ravel()
        flat_y = np.tile(y, nb)
        flat_nwp = np.tile(has_nwp, nb)
        full = np.clip(self.blend.predict(hb, flat_avail, flat_x), 0.0, K_MAX)
        self.quantiles.update(hb, sky_state(full), flat_nwp, flat_y - full)
        if has_nwp.any():
            alt = np.clip(self.blend.predict(hb, flat_avail & ~NWP, flat_x), 0.0, K_MAX)
            sel = flat_nwp
            no_feed = np.zeros(int(sel.sum()), dtype=bool)
            self.quantiles.update(hb[sel], sky_state(alt[sel]), no_feed, flat_y[sel] - alt[sel])
        self.blend.update_all(x, avail, y, w)

    # ------------------------------------------------------------------ forecasting

    def forecast(
        self,
        now: datetime | None = None,
        weather: pd.DataFrame | None = None,
        *,
        hours: float | None = None,
        step_min: int | None = None,
    ) -> PowerForecast:
        """P10/P50/P90 AC power per slot from the slot holding ``now`` for ``hours`` (default
        ``[forecast] horizon_h``), at ``step_min`` (default ``[forecast] step_min``)."""
        if now is None:
            if self.clock is None:
                raise ValueError("forecast: no time given and no clock")
            now = self.clock.now()
        now = as_utc(now)
        now_s = now.timestamp()
        if weather is not None:
            self.set_weather(weather)
        self.flush(now)
        if (
            self._pending_slots
            and (self._last_done - int(self._pending_slots[0][0]) + 1) * self.step_s
            >= LEARN_EVERY_S
        ):
            self.learn()
        step = float(step_min * 60) if step_min else self.step_s
        horizon_h = self.horizon_h if hours is None else float(hours)
        if horizon_h <= 0:
            raise ValueError("forecast: hours must be positive")
        first = int(math.floor(now_s / step))
        n = max(1, int(math.ceil((now_s + horizon_h * 3600.0) / step)) - first)
        clear, _elev, hour, month = self.table(step).arrays(first * step, n)
        g_hour = self.envelope.scale_by_hour()
        g = g_hour[hour]
        cal = g * clear
        x = np.empty((n, 5))
        x[:, 0] = 1.0
        x[:, 1] = self.climatology.table()[month, hour] / g
        k_nwp = self._nwp_at(step, first + np.arange(n, dtype=np.int64))
        has_nwp = k_nwp == k_nwp  # not NaN
        x[:, 2] = np.where(has_nwp, k_nwp, 0.0)
        k_now, k_day = self._persistence(now_s)
        x[:, 3] = k_now if k_now is not None else 0.0
        x[:, 4] = k_day if k_day is not None else 0.0
        horizon = ((first + np.arange(n) + 0.5) * step - now_s) / 3600.0
        avail = has_nwp * NWP
        if k_now is not None:
            avail = avail + (horizon <= self.nowcast_h) * NOW
        if k_day is not None:
            avail = avail + DAY
        hb = horizon_bin(np.maximum(horizon, 0.0))
        k50 = np.minimum(np.maximum(self.blend.predict(hb, avail, x), 0.0), K_MAX)
        q = self.quantiles.table()[hb, sky_state(k50), has_nwp.view(np.int8)]
        lo = np.minimum(np.maximum(k50 + q[:, 0], 0.0), K_MAX)
        mid = np.minimum(np.maximum(k50 + q[:, 1], lo), K_MAX)
        hi = np.minimum(np.maximum(k50 + q[:, 2], mid), K_MAX)
        cap = self.array.ac_limit_w * max(1.0, float(g_hour.max()))
        p10 = np.minimum(cal * lo, cap)
        p50 = np.minimum(cal * mid, cap)
        p90 = np.minimum(cal * hi, cap)
        sources = self._sources(
            bool(has_nwp.any()), k_now is not None and horizon[0] <= self.nowcast_h
        )
        out = PowerForecast(
            issued_at=now,
            start=datetime.fromtimestamp(first * step, tz=UTC),
            step_s=int(step),
            p10_w=p10,
            p50_w=p50,
            p90_w=p90,
            source=sources,
            meta={
                "scale": round(self.envelope.overall(), 3),
                "learned_slots": self.slots_learned,
                "mean_w": np.minimum(cal * k50, cap),  # expected value (P50 is the median)
            },
        )
        if self.running is None:
            return out
        self.running.issue(out)
        return replace(out, running_levels=self.running.levels_for(out))

    def _persistence(self, now_s: float) -> tuple[float | None, float | None]:
        """Measured clear-sky index over the last hour and the last day (None: not known)."""
        end = int(math.floor(now_s / self.step_s))
        min_clear = BRIGHT_FRACTION * self.capacity_w
        m, c, p = self.recent.window_one(end, max(1, int(round(NOWCAST_WINDOW_S / self.step_s))))
        k_now = m / c if c >= min_clear and c >= COVERAGE_MIN * p else None
        m, c, p = self.recent.window_one(end, max(1, int(round(DAY_WINDOW_S / self.step_s))))
        k_day = m / c if c >= 4.0 * min_clear and c >= COVERAGE_MIN * p else None
        return k_now, k_day

    def _sources(self, nwp: bool, now: bool) -> str:
        parts = []
        if nwp:
            parts.append("weather")
        if now:
            parts.append("nowcast")
        parts.append("climatology" if self.climatology.learned_hours > 0 else "prior")
        return "+".join(parts)

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """Everything learned, as JSON-able data (pending slots are learned first)."""
        self.learn()
        return {
            "version": STATE_VERSION,
            "fingerprint": self.fingerprint,
            "step_s": self.step_s,
            "climatology": self.climatology.to_dict(),
            "envelope": self.envelope.to_dict(),
            "blend": self.blend.to_dict(),
            "quantiles": self.quantiles.to_dict(),
            "running": None if self.running is None else self.running.to_dict(),
            "recent": self.recent.to_dict(),
            "open": None
            if self._open_slot is None
            else [self._open_slot, self._open_sum, self._open_n],
            "last_done": self._last_done,
            "last_learn_s": self._last_learn_s,
            "slots_learned": self.slots_learned,
        }

    @classmethod
    def from_state(
        cls,
        config: SunboxConfig,
        state: dict[str, Any],
        clock: Clock | None = None,
        *,
        extend_ahead_s: float = EXTEND_AHEAD_S,
        chain: PVChain | None = None,
        calibration: ForecastCalibration | None = None,
    ) -> Forecaster:
        """A forecaster with saved learning; a state from another array/site starts fresh
        (``restore_note`` says why)."""
        out = cls(config, clock, extend_ahead_s=extend_ahead_s, chain=chain, calibration=calibration)
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            out.restore_note = "saved state has an unknown version; starting fresh"
            return out
        if state.get("fingerprint") != out.fingerprint:
            out.restore_note = (
                "site, array or physics changed since the state was saved; starting fresh"
            )
            return out
        try:
            out.climatology = IndexClimatology.from_dict(state["climatology"])
            out.climatology.prior_index = config.forecast.prior_clear_sky_index
            out.envelope = ScaleEnvelope.from_dict(state["envelope"])
            out.blend = SourceBlend.from_dict(state["blend"])
            out.blend.half_life_days = config.forecast.learn_half_life_days
            out.quantiles = ResidualQuantiles.from_dict(state["quantiles"])
            out.quantiles.half_life_days = config.forecast.learn_half_life_days
            out.recent = RecentSlots.from_dict(state["recent"], out.step_s)
            if out.running is not None and state.get("running"):  # else it starts fresh
                out.running.restore(state["running"])
            if state.get("open"):
                slot, total, count = state["open"]
                out._open_slot, out._open_sum, out._open_n = int(slot), float(total), int(count)
            out._last_done = int(state.get("last_done", NO_SLOT))
            last = state.get("last_learn_s")
            out._last_learn_s = None if last is None else float(last)
            out.slots_learned = int(state.get("slots_learned", 0))
        except (KeyError, TypeError, ValueError) as exc:
            fresh = cls(config, clock, extend_ahead_s=extend_ahead_s, chain=chain, calibration=calibration)
            fresh.restore_note = f"saved state unreadable ({exc}); starting fresh"
            return fresh
        out.restore_note = "restored"
        return out


def save_model(store: Store, forecaster: Forecaster, at: datetime) -> None:
    """Keep what the forecaster learned in the store (kv ``forecast_model``)."""
    store.put_kv(KV_KEY, forecaster.to_state(), at)


def load_model(
    store: Store,
    config: SunboxConfig,
    clock: Clock | None = None,
    *,
    extend_ahead_s: float = EXTEND_AHEAD_S,
    chain: PVChain | None = None,
    calibration: ForecastCalibration | None = None,
) -> Forecaster:
    """The forecaster as saved in the store, or a fresh one (see ``restore_note``).

    For a single forecast (a CLI or API request) pass ``extend_ahead_s=0``: only the slots
    asked for go through the PV chain, not two weeks ahead.
    """
    row = store.get_kv(KV_KEY)
    if row is None:
        return Forecaster(config, clock, extend_ahead_s=extend_ahead_s, chain=chain, calibration=calibration)
    return Forecaster.from_state(config, row[0], clock, extend_ahead_s=extend_ahead_s, chain=chain,
                                 calibration=calibration)
