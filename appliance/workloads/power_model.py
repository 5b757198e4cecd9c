"""Node power from CPU load: the curve between idle_w and max_w.

Servers do not draw power in proportion to load: in the SPECpower_ssj2008 results of
field_data/compute/specpower_ssj2008_server_power_vs_load.csv an idle server already draws
25-65 % of its full-load power, and above idle the shapes differ (the Xeon X5670/X5675 spend
23 % of their range at 10 % load; the older ones are nearly linear). ``compute.power_curve``
holds the wall power at 0, 10, ..., 100 % load as fractions of (max_w - idle_w) above idle; its
default is the median shape of the seven servers (``curve_from_specpower``). Energy of a job
is then CPU time × this curve: a job's share of the node's power above idle is its share of
the node's CPU time in the interval.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.config import ComputeConfig
from appliance.state import FloatArray


@dataclass(frozen=True)
class NodePowerModel:
    idle_w: float
    max_w: float
    curve: FloatArray  # fractions of (max_w - idle_w) at 0, 10, ..., 100 % load
    cpu_count: int

    @classmethod
    def from_config(cls, cfg: ComputeConfig, cpu_count: int | None = None) -> NodePowerModel:
        import os

        n = cfg.cpu_count or cpu_count or os.cpu_count() or 1
        return cls(cfg.idle_w, cfg.max_w, np.asarray(cfg.power_curve, dtype=float), int(n))

    @property
    def range_w(self) -> float:
        return self.max_w - self.idle_w

    @property
    def _loads(self) -> FloatArray:
        return np.linspace(0.0, 1.0, len(self.curve))

    def dynamic_w(self, utilisation: float) -> float:
        """Power above idle at node utilisation 0..1."""
        u = min(max(utilisation, 0.0), 1.0)
        return float(np.interp(u, self._loads, self.curve)) * self.range_w

    def utilisation_for(self, dynamic_w: float) -> float:
        """Inverse of ``dynamic_w``: the node utilisation that draws this much above idle."""
        frac = min(max(dynamic_w / self.range_w if self.range_w > 0 else 1.0, 0.0), 1.0)
        # the curve is non-decreasing; flat parts resolve to their first load
        return float(np.interp(frac, self.curve, self._loads))

    def split_w(
        self, cpu_delta_s: dict[str, float], interval_s: float, measured_node_w: float | None = None
    ) -> dict[str, float]:
        """Average power above idle of each job over an interval, from its CPU time.

        With a meter, the node's measured power above idle is split by CPU share instead."""
        total = sum(max(v, 0.0) for v in cpu_delta_s.values())
        if interval_s <= 0 or total <= 0:
            return {k: 0.0 for k in cpu_delta_s}
        if measured_node_w is not None:
            node_dyn = max(0.0, measured_node_w - self.idle_w)
        else:
            node_dyn = self.dynamic_w(total / (interval_s * self.cpu_count))
        return {k: node_dyn * max(v, 0.0) / total for k, v in cpu_delta_s.items()}


def curve_from_specpower(path: Path | str) -> list[float]:
    """Median normalised curve of the servers in a SPECpower CSV (P_0pct_W..P_100pct_W)."""
    shapes = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            watts = np.array([float(row[f"P_{p}pct_W"]) for p in range(0, 101, 10)])
            shapes.append((watts - watts[0]) / (watts[-1] - watts[0]))
    median = np.median(np.array(shapes), axis=0)
    return [round(float(v), 2) for v in median]
