"""Where the PV chain runs: in this process, or in a short-lived worker process.

The chain (solar position, clear sky, transposition, temperature, DC, inverter) needs pvlib,
and pvlib brings about 60 MB of modules that stay resident once imported. The daemon needs the
chain's results only now and then: a clear-sky table two weeks ahead, and a weather feed turned
into a clear-sky index when a link brings one. So the daemon asks a ``WorkerChain``: each call
starts ``python -m appliance.solar.chain``, which computes and exits, and the daemon keeps its
memory small for months on end. Replay, the CLI and tests, which run the chain constantly or
have pvlib loaded anyway, use ``InProcessChain``. Both return the same numbers (a test holds
them to it).
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from appliance.config import ArrayConfig, SiteConfig
from appliance.state import FloatArray

BRIGHT_CLEAR_SHARE = 0.01  # a feed's clear-sky index is defined where clear-sky AC >= 1 % of DC
WORKER_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class ClearBlock:
    """What a forecast needs of the clear-sky table for ``n`` slots from ``t0_s``."""

    t0_s: float
    step_s: float
    pv_clear_w: FloatArray
    elevation_deg: FloatArray
    hour_bin: np.ndarray  # int, local solar hour 0..23 at the slot midpoint
    month: np.ndarray  # int, 0..11 (UTC month at the slot midpoint)


@dataclass(frozen=True)
class ChainSpec:
    """The site and array the chain models, as plain data a worker can rebuild them from."""

    site: dict[str, Any]
    array: dict[str, Any]
    physics: dict[str, Any]
    cloud_model: str

    @classmethod
    def of(cls, site: SiteConfig, array: ArrayConfig, physics: Any, cloud_model: str) -> ChainSpec:
        return cls(site.model_dump(mode="json"), array.model_dump(mode="json"), dict(physics.__dict__),
                   cloud_model)


class PVChain(Protocol):
    in_process: bool

    def clear_block(self, spec: ChainSpec, t0_s: float, n: int, step_s: float) -> ClearBlock: ...

    def weather_index(self, spec: ChainSpec, frame: pd.DataFrame, step_s: float) -> tuple[int, FloatArray]: ...


# --------------------------------------------------------------------------- the computations


def _objects(spec: ChainSpec) -> tuple[SiteConfig, ArrayConfig, Any]:
    from appliance.solar.pvsystem import Physics

    return (SiteConfig.model_validate(spec.site), ArrayConfig.model_validate(spec.array), Physics(**spec.physics))


def compute_clear_block(spec: ChainSpec, t0_s: float, n: int, step_s: float) -> ClearBlock:
    from appliance.solar.clearsky_table import compute_block

    site, array, physics = _objects(spec)
    blk = compute_block(site, array, physics, t0_s, n, step_s)
    return ClearBlock(blk.t0_s, blk.step_s, blk.pv_clear_w, blk.elevation_deg, blk.hour_bin, blk.month)


def weather_slot_range(frame: pd.DataFrame, step_s: float) -> tuple[int, int]:
    """First and one-past-last slot number a feed speaks for (an hour past its last row)."""
    from appliance.solar.timegrid import epoch_s

    t = epoch_s(pd.DatetimeIndex(frame.index))
    return int(math.floor(t[0] / step_s)), int(math.ceil((t[-1] + 3600.0) / step_s))


def clear_sky_index(pv_w: FloatArray, pv_clear_w: FloatArray, capacity_w: float) -> FloatArray:
    """Feed power over clear-sky power where the sky is bright enough to say, else NaN."""
    bright = pv_clear_w >= BRIGHT_CLEAR_SHARE * capacity_w
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(bright, pv_w / pv_clear_w, np.nan)
    return np.asarray(np.clip(k, 0.0, 1.5), dtype=float)


def compute_weather_index(spec: ChainSpec, frame: pd.DataFrame, step_s: float) -> tuple[int, FloatArray]:
    """(first slot number, clear-sky index per slot) of a weather feed, from scratch."""
    from appliance.solar.clearsky_table import compute_block
    from appliance.solar.weather_inputs import pv_from_weather

    site, array, physics = _objects(spec)
    first, last = weather_slot_range(frame, step_s)
    blk = compute_block(site, array, physics, first * step_s, last - first, step_s)
    assert blk.geometry is not None
    pv = pv_from_weather(site, array, blk.geometry.times, frame, physics=physics, geometry=blk.geometry,
                         cloud_model=spec.cloud_model)
    return first, clear_sky_index(pv, blk.pv_clear_w, array.dc_kw * 1000.0)


# --------------------------------------------------------------------------- the two places


class InProcessChain:
    in_process = True

    def clear_block(self, spec: ChainSpec, t0_s: float, n: int, step_s: float) -> ClearBlock:
        return compute_clear_block(spec, t0_s, n, step_s)

    def weather_index(self, spec: ChainSpec, frame: pd.DataFrame, step_s: float) -> tuple[int, FloatArray]:
        return compute_weather_index(spec, frame, step_s)


class ChainWorkerError(RuntimeError):
    pass


class WorkerChain:
    """Each call runs in a fresh ``python -m appliance.solar.chain`` (request and answer are
    pickled over its stdin/stdout: the parent trusts the child it started, and vice versa)."""

    in_process = False

    def __init__(self, python: str = sys.executable, timeout_s: float = WORKER_TIMEOUT_S) -> None:
        self.python = python
        self.timeout_s = timeout_s
        self.calls = 0

    def _call(self, request: tuple[Any, ...]) -> Any:
        self.calls += 1
        proc = subprocess.run([self.python, "-m", "appliance.solar.chain"], input=pickle.dumps(request),
                              capture_output=True, timeout=self.timeout_s, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise ChainWorkerError(f"PV chain worker failed (exit {proc.returncode}): {tail[0]}")
        return pickle.loads(proc.stdout)  # noqa: S301 - our own child's answer

    def clear_block(self, spec: ChainSpec, t0_s: float, n: int, step_s: float) -> ClearBlock:
        out = self._call(("clear_block", spec, t0_s, n, step_s))
        assert isinstance(out, ClearBlock)
        return out

    def weather_index(self, spec: ChainSpec, frame: pd.DataFrame, step_s: float) -> tuple[int, FloatArray]:
        first, k = self._call(("weather_index", spec, frame, step_s))
        return int(first), np.asarray(k, dtype=float)


def default_chain() -> PVChain:
    """In this process if pvlib is loaded already (nothing to save), else in a worker."""
    return InProcessChain() if "pvlib" in sys.modules else WorkerChain()


def _worker() -> int:
    request = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from the parent that started us
    op, *args = request
    if op == "clear_block":
        out: Any = compute_clear_block(*args)
    elif op == "weather_index":
        out = compute_weather_index(*args)
    else:
        print(f"unknown request {op!r}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(pickle.dumps(out))
    return 0


if __name__ == "__main__":
    # run the importable module's worker, so what is pickled names appliance.solar.chain, not __main__
    from appliance.solar.chain import _worker as worker

    raise SystemExit(worker())
