"""Job streams for replay, built from real traces and scaled to an energy-constrained box.

- Arrivals: the inter-arrival gaps of production LLM-inference requests (Azure, Patel et al.
  "Splitwise", ISCA 2024; field_data/compute/azure_llm_inference_trace_*_2023.csv), stretched
  in time so the mean rate is ``jobs_per_day``: the burstiness of real demand, at box scale.
- Sizes and power: PlanetLab VM-days (Beloglazov & Buyya, CCPE 2012; 5-minute CPU
  utilisation). A job is one VM-day's work: its energy is the day's utilisation through the
  node's power curve, its power the node power at the VM's 95th-percentile utilisation, so the
  heavy tail of real batch work is kept. Sizes are then scaled so that, per day, base load +
  critical services + deferrable work = daily PV / ``pv_to_demand`` (1.5: energy-constrained).
- Deadlines: arrival + a slack drawn from ``slack_h`` (and at least twice the run time).
- One critical service (always on) and one sponge job per week soaking surplus.

Deterministic by seed. Records are the replay's jobs-file lines:
``{"id", "arrival", "kind", "power_w", "energy_wh", "deadline", "value"}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from appliance.config import SunboxConfig
from appliance.paths import field_data_dir
from appliance.state import FloatArray, Job, JobKind, JobState
from appliance.workloads.power_model import NodePowerModel

AZURE_FILES = ("azure_llm_inference_trace_conv_2023.csv", "azure_llm_inference_trace_code_2023.csv")
PLANETLAB_FILE = "planetlab_vm_cpu_util_5min_10days_2011.csv.gz"


class StreamError(ValueError):
    """The requested stream cannot be built (box too small, bad parameters)."""


@dataclass(frozen=True)
class StreamSpec:
    start: datetime
    days: int
    daily_pv_wh: float
    pv_to_demand: float = 1.5
    jobs_per_day: float = 6.0
    critical_share: float = 0.25  # of the demand above base load
    sponge_share_of_pv: float = 0.2  # weekly sponge job size, as a share of a week's PV
    slack_h: tuple[float, ...] = (8.0, 12.0, 24.0, 36.0)
    seed: int = 0


def azure_gaps_s(folder: Path | None = None) -> FloatArray:
    """Inter-arrival gaps (s) of the Azure LLM-inference traces, in trace order."""
    folder = folder or field_data_dir() / "compute"
    gaps = []
    for name in AZURE_FILES:
        times = pd.to_datetime(pd.read_csv(folder / name, usecols=["TIMESTAMP"])["TIMESTAMP"])
        ns = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        gaps.append(np.diff(np.sort(ns)) / 1e9)
    out = np.concatenate(gaps)
    return np.asarray(out[out > 0], dtype=float)


def planetlab_days(folder: Path | None = None) -> FloatArray:
    """CPU utilisation (0..1) of PlanetLab VM-days, one row of 288 five-minute values each."""
    folder = folder or field_data_dir() / "compute"
    frame = pd.read_csv(folder / PLANETLAB_FILE)
    util = frame.iloc[:, 2:].to_numpy(dtype=float) / 100.0
    return np.asarray(np.clip(np.nan_to_num(util, nan=0.0), 0.0, 1.0), dtype=float)


def generate(
    spec: StreamSpec,
    config: SunboxConfig,
    *,
    gaps_s: FloatArray | None = None,
    vm_days: FloatArray | None = None,
) -> list[dict[str, Any]]:
    if spec.days < 1:
        raise StreamError("days must be at least 1")
    if spec.daily_pv_wh <= 0 or spec.pv_to_demand <= 0 or spec.jobs_per_day <= 0:
        raise StreamError("daily PV, PV-to-demand ratio and jobs per day must be positive")
    model = NodePowerModel.from_config(config.compute, cpu_count=1)
    base_wh_day = (config.loads.base_w + config.compute.idle_w) * 24.0
    demand = spec.daily_pv_wh / spec.pv_to_demand - base_wh_day
    if demand <= 0:
        raise StreamError(
            f"daily PV {spec.daily_pv_wh:.0f} Wh / {spec.pv_to_demand:g} does not even cover the "
            f"base load ({base_wh_day:.0f} Wh/day): a bigger array or smaller loads are needed"
        )
    crit_w = spec.critical_share * demand / 24.0
    if crit_w > 0.5 * model.range_w:
        raise StreamError(
            f"critical load {crit_w:.0f} W would take over half the node's {model.range_w:.0f} W"
        )
    rng = np.random.default_rng(spec.seed)
    gaps = azure_gaps_s() if gaps_s is None else gaps_s
    days = planetlab_days() if vm_days is None else vm_days
    end = spec.start + timedelta(days=spec.days)
    records: list[dict[str, Any]] = []
    if crit_w > 0:
        records.append(_record("c1", spec.start, "critical", crit_w, None, None, 1.0))

    # arrivals: Azure gaps stretched to the wanted rate, from a seeded offset, cyclic
    stretch = (86400.0 / spec.jobs_per_day) / float(gaps.mean())
    n_jobs = int(np.ceil(spec.days * spec.jobs_per_day * 1.5)) + 10
    offset = int(rng.integers(len(gaps)))
    idx = (offset + np.arange(n_jobs)) % len(gaps)
    arrivals_s = np.cumsum(gaps[idx] * stretch)
    arrivals_s = arrivals_s[arrivals_s < spec.days * 86400.0]
    # sizes: seeded VM-days through the node's power curve
    rows = days[rng.integers(len(days), size=len(arrivals_s))]
    curve_x = np.linspace(0.0, 1.0, len(model.curve))
    dyn = np.interp(rows, curve_x, model.curve) * model.range_w
    raw_wh = dyn.sum(axis=1) * (5.0 / 60.0)
    peak_w = np.interp(np.percentile(rows, 95, axis=1), curve_x, model.curve) * model.range_w
    target_total = (1.0 - spec.critical_share) * demand * spec.days
    scale = target_total / max(float(raw_wh.sum()), 1e-9)
    slack_choice = rng.choice(np.asarray(spec.slack_h, dtype=float), size=len(arrivals_s))
    for i, (t_s, e_raw, p_raw, slack) in enumerate(
        zip(arrivals_s, raw_wh, peak_w, slack_choice, strict=True)
    ):
        energy = float(e_raw * scale)
        power = float(np.clip(p_raw, 0.25 * model.range_w, model.range_w - crit_w))
        run_h = energy / power
        arrival = spec.start + timedelta(seconds=float(t_s))
        deadline = arrival + timedelta(hours=max(float(slack), 2.0 * run_h))
        if energy < 1.0:
            continue
        records.append(
            _record(f"d{i + 1:05d}", arrival, "deferrable", power, energy, deadline, 1.0)
        )
    week = 0
    while spec.start + timedelta(days=7 * week) < end:
        arrival = spec.start + timedelta(days=7 * week, hours=1)
        if arrival < end:
            energy = spec.sponge_share_of_pv * spec.daily_pv_wh * 7.0
            records.append(
                _record(
                    f"s{week + 1:03d}", arrival, "sponge", 0.5 * model.range_w, energy, None, 1.0
                )
            )
        week += 1
    records.sort(key=lambda r: (r["arrival"], r["id"]))
    return records


def _record(
    job_id: str,
    arrival: datetime,
    kind: str,
    power_w: float,
    energy_wh: float | None,
    deadline: datetime | None,
    value: float,
) -> dict[str, Any]:
    return {
        "id": job_id,
        "arrival": arrival.isoformat(),
        "kind": kind,
        "power_w": round(power_w, 1),
        "energy_wh": None if energy_wh is None else round(energy_wh, 1),
        "deadline": None if deadline is None else deadline.isoformat(),
        "value": value,
    }


def write_jsonl(records: Sequence[dict[str, Any]], path: Path | str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
    return p


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Read a jobs file; raises StreamError naming the line of the first bad record."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise StreamError(f"{path}:{n}: not JSON ({exc.msg})") from None
            missing = {"id", "arrival", "kind", "power_w", "energy_wh", "deadline", "value"} - set(
                rec
            )
            if missing:
                raise StreamError(f"{path}:{n}: missing {', '.join(sorted(missing))}")
            out.append(rec)
    return out


def record_to_job(rec: dict[str, Any]) -> Job:
    """A jobs-file record as a pending Job (simulated work: no command)."""
    try:
        kind = JobKind(rec["kind"])
        arrival = datetime.fromisoformat(rec["arrival"])
        deadline = None if rec["deadline"] is None else datetime.fromisoformat(rec["deadline"])
        energy = None if rec["energy_wh"] is None else float(rec["energy_wh"])
        power = float(rec["power_w"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamError(f"job {rec.get('id', '?')}: {exc}") from None
    if arrival.tzinfo is None or (deadline is not None and deadline.tzinfo is None):
        raise StreamError(f"job {rec['id']}: times need a UTC offset")
    if kind is JobKind.DEFERRABLE and (energy is None or deadline is None):
        raise StreamError(f"job {rec['id']}: a deferrable job needs energy_wh and deadline")
    if kind is JobKind.CRITICAL and (energy is not None or deadline is not None):
        raise StreamError(f"job {rec['id']}: a critical job has null energy_wh and deadline")
    if power <= 0:
        raise StreamError(f"job {rec['id']}: power_w must be positive")
    return Job(
        id=str(rec["id"]),
        name=str(rec["id"]),
        kind=kind,
        power_w=power,
        energy_wh=energy,
        deadline=deadline,
        value=float(rec.get("value", 1.0) or 0.0),
        submitted_at=arrival,
        state=JobState.PENDING,
    )
