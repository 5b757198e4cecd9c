"""Clear-sky AC power of the array on a slot grid, computed once and reused.

The forecaster re-forecasts every 15 minutes (35,000 times in a replayed year); solar position
and the PV chain cost milliseconds per call. So the chain runs once per range of slots, and a
forecast only slices arrays. Values are at slot midpoints: a slot's power is its mean power.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.config import ArrayConfig, SiteConfig
from appliance.solar.chain import ChainSpec, ClearBlock, PVChain
from appliance.solar.geometry import solar_hour
from appliance.solar.pvsystem import Orientation, Physics, PlaneGeometry, ac_power_w, plane_geometry
from appliance.solar.timegrid import index_from_epoch_s
from appliance.state import FloatArray

EXTEND_AHEAD_S = 14 * 86400.0  # when the table must grow, grow by at least this much
KEEP_BEHIND_S = 8 * 86400.0  # what a long-running box keeps before the newest request


@dataclass(frozen=True)
class TableBlock:
    """A contiguous run of slots: ``t0_s`` is the start of the first (UTC epoch seconds)."""

    t0_s: float
    step_s: float
    pv_clear_w: FloatArray
    elevation_deg: FloatArray
    hour_bin: np.ndarray  # int, local solar hour 0..23 at the slot midpoint
    month: np.ndarray  # int, 0..11 (UTC month at the slot midpoint)
    geometry: PlaneGeometry | None  # None when a worker process computed the block

    @classmethod
    def of(cls, blk: ClearBlock) -> TableBlock:
        return cls(blk.t0_s, blk.step_s, blk.pv_clear_w, blk.elevation_deg, blk.hour_bin, blk.month, None)

    def __len__(self) -> int:
        return int(self.pv_clear_w.shape[0])

    @property
    def end_s(self) -> float:
        return self.t0_s + len(self) * self.step_s

    def section(self, i0: int, i1: int) -> TableBlock:
        sl = np.arange(i0, i1)
        return TableBlock(
            t0_s=self.t0_s + i0 * self.step_s,
            step_s=self.step_s,
            pv_clear_w=self.pv_clear_w[i0:i1],
            elevation_deg=self.elevation_deg[i0:i1],
            hour_bin=self.hour_bin[i0:i1],
            month=self.month[i0:i1],
            geometry=None if self.geometry is None else self.geometry.take(sl),
        )


def _concat(a: TableBlock, b: TableBlock) -> TableBlock:
    ga, gb = a.geometry, b.geometry
    geom = None if ga is None or gb is None else PlaneGeometry(
        times=ga.times.append(gb.times),
        sun=type(ga.sun)(
            np.concatenate([ga.sun.apparent_zenith, gb.sun.apparent_zenith]),
            np.concatenate([ga.sun.zenith, gb.sun.zenith]),
            np.concatenate([ga.sun.azimuth, gb.sun.azimuth]),
            np.concatenate([ga.sun.apparent_elevation, gb.sun.apparent_elevation]),
        ),
        orient=Orientation(
            np.concatenate([ga.orient.surface_tilt, gb.orient.surface_tilt]),
            np.concatenate([ga.orient.surface_azimuth, gb.orient.surface_azimuth]),
        ),
        cos_aoi=np.concatenate([ga.cos_aoi, gb.cos_aoi]),
        iam=np.concatenate([ga.iam, gb.iam]),
        dni_extra=np.concatenate([ga.dni_extra, gb.dni_extra]),
        airmass_rel=np.concatenate([ga.airmass_rel, gb.airmass_rel]),
    )
    return TableBlock(
        t0_s=a.t0_s,
        step_s=a.step_s,
        pv_clear_w=np.concatenate([a.pv_clear_w, b.pv_clear_w]),
        elevation_deg=np.concatenate([a.elevation_deg, b.elevation_deg]),
        hour_bin=np.concatenate([a.hour_bin, b.hour_bin]),
        month=np.concatenate([a.month, b.month]),
        geometry=geom,
    )


def compute_block(
    site: SiteConfig, array: ArrayConfig, physics: Physics, t0_s: float, n: int, step_s: float
) -> TableBlock:
    """Run the PV chain under Ineichen clear sky for ``n`` slots starting at ``t0_s``."""
    mids = index_from_epoch_s(t0_s + (np.arange(n, dtype=float) + 0.5) * step_s)
    geom = plane_geometry(site, array, mids)
    pv = ac_power_w(site, array, mids, physics=physics, geometry=geom)
    return TableBlock(
        t0_s=t0_s,
        step_s=step_s,
        pv_clear_w=pv,
        elevation_deg=geom.sun.apparent_elevation,
        hour_bin=np.minimum(solar_hour(site, mids).astype(np.int64), 23),
        month=np.asarray(mids.month, dtype=np.int64) - 1,
        geometry=geom,
    )


class ClearSkyTable:
    """Clear-sky slots for one site/array/step, grown on demand, trimmed behind."""

    def __init__(
        self,
        site: SiteConfig,
        array: ArrayConfig,
        physics: Physics,
        step_s: float,
        extend_ahead_s: float = EXTEND_AHEAD_S,
        chain: PVChain | None = None,
        spec: ChainSpec | None = None,
    ) -> None:
        self.site = site
        self.array = array
        self.physics = physics
        self.step_s = float(step_s)
        self.extend_ahead_s = float(extend_ahead_s)
        self.chain = chain
        self.spec = spec
        self.block: TableBlock | None = None
        self.blocks_computed = 0

    def _compute(self, t0_s: float, t1_s: float) -> TableBlock:
        n = int(round((t1_s - t0_s) / self.step_s))
        self.blocks_computed += 1
        if self.chain is not None and not self.chain.in_process and self.spec is not None:
            return TableBlock.of(self.chain.clear_block(self.spec, t0_s, n, self.step_s))
        return compute_block(self.site, self.array, self.physics, t0_s, n, self.step_s)

    def missing(self, start_s: float, end_s: float) -> tuple[float, int] | None:
        """(first slot start, slot count) to compute so the table reaches ``end_s`` from
        ``start_s`` with ``extend_ahead_s`` to spare; None when it already does. Lets an
        owner compute the block elsewhere (a thread, a worker) and ``adopt`` it."""
        step = self.step_s
        lo = math.floor(start_s / step) * step
        hi = math.ceil(end_s / step) * step
        blk = self.block
        if blk is not None and blk.t0_s <= lo and hi <= blk.end_s:
            return None
        t0 = lo if blk is None or lo < blk.t0_s or lo > blk.end_s else blk.end_s
        t1 = hi + math.ceil(self.extend_ahead_s / step) * step
        return t0, int(round((t1 - t0) / step))

    def adopt(self, new: TableBlock) -> None:
        """Take a block computed elsewhere: appended when it continues the table, else it
        replaces it."""
        blk = self.block
        self.blocks_computed += 1
        if blk is not None and abs(new.t0_s - blk.end_s) < 1e-6 and new.step_s == blk.step_s:
            merged = _concat(blk, new)
            cut = int((new.t0_s - KEEP_BEHIND_S - 2 * EXTEND_AHEAD_S - merged.t0_s) // self.step_s)
            self.block = merged.section(cut, len(merged)) if cut > 0 else merged
        else:
            self.block = new

    def ensure(self, start_s: float, end_s: float, *, ahead_s: float | None = None) -> None:
        """Make the table cover the slots of [start_s, end_s) (growing ``ahead_s`` further,
        default the table's ``extend_ahead_s``, so the next calls find their slots)."""
        if ahead_s is None:
            ahead_s = self.extend_ahead_s
        step = self.step_s
        lo = math.floor(start_s / step) * step
        hi = math.ceil(end_s / step) * step
        if hi <= lo:
            hi = lo + step
        blk = self.block
        if blk is None:
            self.block = self._compute(lo, hi + math.ceil(ahead_s / step) * step)
            return
        if lo < blk.t0_s:
            if blk.t0_s - lo > 2 * EXTEND_AHEAD_S + (blk.end_s - blk.t0_s):
                self.block = self._compute(lo, hi + math.ceil(ahead_s / step) * step)
                return
            blk = _concat(self._compute(lo, blk.t0_s), blk)
        if hi > blk.end_s:
            if hi - blk.end_s > 2 * EXTEND_AHEAD_S + (blk.end_s - blk.t0_s):
                new = self._compute(lo, hi + math.ceil(ahead_s / step) * step)
                self.block = new
                return
            blk = _concat(blk, self._compute(blk.end_s, hi + math.ceil(ahead_s / step) * step))
            cut = int((lo - KEEP_BEHIND_S - blk.t0_s) // step)
            if cut > 0 and (blk.end_s - blk.t0_s) > 60 * 86400.0:
                blk = blk.section(cut, len(blk))
        self.block = blk

    def slice(self, start_s: float, n: int) -> TableBlock:
        """``n`` slots from the slot holding ``start_s`` (the table grows if needed)."""
        step = self.step_s
        s0 = math.floor(start_s / step) * step
        self.ensure(s0, s0 + n * step)
        blk = self.block
        assert blk is not None
        i0 = int(round((s0 - blk.t0_s) / step))
        return blk.section(i0, i0 + n)

    def arrays(
        self, start_s: float, n: int
    ) -> tuple[FloatArray, FloatArray, np.ndarray, np.ndarray]:
        """Views (no copies, no geometry) of (clear W, elevation, hour bin, month) for ``n``
        slots from the slot holding ``start_s``: the fast path of every forecast."""
        step = self.step_s
        s0 = math.floor(start_s / step) * step
        blk = self.block
        if blk is None or s0 < blk.t0_s or s0 + n * step > blk.end_s:
            self.ensure(s0, s0 + n * step)
            blk = self.block
            assert blk is not None
        i0 = int(round((s0 - blk.t0_s) / step))
        i1 = i0 + n
        return (
            blk.pv_clear_w[i0:i1],
            blk.elevation_deg[i0:i1],
            blk.hour_bin[i0:i1],
            blk.month[i0:i1],
        )

    def lookup(
        self, slot_starts_s: FloatArray
    ) -> tuple[FloatArray, FloatArray, np.ndarray, np.ndarray]:
        """(clear W, elevation deg, hour bin, month) for slots given by their starts."""
        if slot_starts_s.size == 0:
            empty = np.zeros(0)
            return empty, empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        self.ensure(
            float(slot_starts_s.min()),
            float(slot_starts_s.max()) + self.step_s,
            ahead_s=self.step_s,
        )
        blk = self.block
        assert blk is not None
        idx = np.round((slot_starts_s - blk.t0_s) / self.step_s).astype(np.int64)
        return blk.pv_clear_w[idx], blk.elevation_deg[idx], blk.hour_bin[idx], blk.month[idx]
