"""Bytes per telemetry point: the compact codec against JSON+gzip, on a simulated day.

Data: the simulator's plant (appliance.sim.plant.Plant: PV, LiFePO4 pack, loads, room) at the
DTU Lyngby station's location, driven by the station's measured 1-minute irradiance, air
temperature and wind (field_data/solar, 2016), with the compute node following a measured
PlanetLab VM CPU trace (field_data/compute). The plant is stepped every minute; its outputs
fill the 21 channels of appliance.state.Channel, with the meters' jitter applied as the
simulator's register images apply it (relative Gaussian: 0.4 % on power and current, 0.1 % on
DC voltage, 0.2 % on temperatures), so values look as the box records them.

Printed (JSON): bytes_per_point for a whole day in one block (the goal is <= 1.5), the same in
5-, 15- (the outbox default) and 60-minute blocks, lossless mode, and
JSON+gzip of the same data both with raw floats and with values rounded to the codec's
resolution, all measured in one run.

usage: .venv/bin/python tests/bench/telemetry_codec.py [--days 2016-06-14,2016-03-21,2016-11-02]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from appliance.config import parse_config  # noqa: E402
from appliance.paths import field_data_dir  # noqa: E402
from appliance.sim.plant import Plant  # noqa: E402
from appliance.solar.field_readers import read_dtu_lyngby  # noqa: E402
from appliance.sync.codec import (  # noqa: E402
    Series,
    TelemetryBlock,
    default_resolution,
    encode_block,
    resolution_from,
)

DTU = {"lat": 55.79064, "lon": 12.52505, "altitude_m": 50.0, "tz": "Europe/Copenhagen"}
NOISE = {  # relative sd, as the simulator's register images jitter readings
    "_w": 0.004,
    "_a": 0.004,
    "_v": 0.001,
    "_c": 0.002,
}
DEFAULT_DAYS = "2016-06-14,2016-03-21,2016-11-02"


def _noise(channel: str) -> float:
    if channel.endswith("_wh") or channel.endswith("_pct") or channel.endswith("_state"):
        return 0.0
    for suffix, sd in NOISE.items():
        if channel.endswith(suffix):
            return sd
    return 0.0


def _compute_trace(day: date) -> np.ndarray:
    """CPU utilisation (0..1) per minute from one PlanetLab VM-day (5-min, held per minute)."""
    frame = pd.read_csv(
        field_data_dir() / "compute" / "planetlab_vm_cpu_util_5min_10days_2011.csv.gz", nrows=400
    )
    row = frame.iloc[day.toordinal() % len(frame)]
    util = row[[c for c in frame.columns if c.startswith("t")]].to_numpy(dtype=float) / 100.0
    return np.repeat(util, 5)[:1440]


def simulate_day(
    day: date, weather: pd.DataFrame, seed: int
) -> dict[str, tuple[list[int], list[float]]]:
    config = parse_config(
        {
            "site": {"name": "dtu-lyngby", **DTU},
            "array": {"dc_kw": 3.0, "tracker": "dual_axis"},
            "heat": {"enabled": True},
        }
    )
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(
        hours=1
    )  # local midnight CET
    plant = Plant(config, start, weather)
    plant.sky.prepare(start, start + timedelta(days=1, minutes=1))
    util = _compute_trace(day)
    curve = config.compute.power_curve
    idle, peak = config.compute.idle_w, config.compute.max_w
    rng = random.Random(seed)
    out: dict[str, tuple[list[int], list[float]]] = {}
    for minute in range(1440):
        u = float(util[minute]) * (len(curve) - 1)
        i = min(int(u), len(curve) - 2)
        frac = curve[i] + (curve[i + 1] - curve[i]) * (u - i)
        hour_local = minute / 60.0
        plant.set_damper_pct(100.0 if hour_local >= 18 or hour_local < 7 else 0.0)
        snap = plant.step(start + timedelta(minutes=minute), 60.0, idle + frac * (peak - idle))
        ts = int((start + timedelta(minutes=minute + 1)).timestamp() * 1000)
        values: dict[str, float] = {
            "soc_pct": snap.soc_pct,
            "battery_power_w": snap.battery_power_w,
            "battery_voltage_v": snap.battery_voltage_v,
            "battery_current_a": snap.battery_current_a,
            "battery_temp_c": snap.battery_temp_c,
            "battery_soh_pct": 100.0,
            "battery_reserve_pct": snap.reserve_pct,
            "battery_charge_max_w": snap.charge_limit_w,
            "battery_discharge_max_w": snap.discharge_limit_w,
            "pv_power_w": snap.pv_power_w,
            "pv_voltage_v": snap.pv_voltage_v,
            "pv_energy_wh": snap.counters.pv_wh,
            "ac_load_power_w": snap.load_power_w,
            "inverter_power_w": snap.load_power_w + snap.inverter_loss_w,
            "inverter_temp_c": snap.inverter_temp_c,
            "inverter_state": 4.0 if snap.inverter_on else 1.0,
            "ac_energy_wh": snap.counters.load_wh,
            "compute_power_w": snap.compute_power_w,
            "room_temp_c": snap.room_temp_c,
            "outdoor_temp_c": snap.outdoor_temp_c,
            "damper_pct": snap.damper_pct,
        }
        for name, value in values.items():
            sd = _noise(name)
            noisy = value * (1.0 + rng.gauss(0.0, sd)) if sd and value else value
            ts_list, v_list = out.setdefault(name, ([], []))
            ts_list.append(ts)
            v_list.append(float(noisy))
    return out


def _block(data: dict[str, tuple[list[int], list[float]]], lo: int, hi: int) -> TelemetryBlock:
    series = []
    for name, (ts, vs) in data.items():
        pairs = [(t, v) for t, v in zip(ts, vs, strict=True) if lo <= t < hi]
        if pairs:
            series.append(Series(name, tuple(t for t, _ in pairs), tuple(v for _, v in pairs)))
    return TelemetryBlock(tuple(series), 60.0)


def _json_gzip(data: dict[str, tuple[list[int], list[float]]], rounded: bool) -> int:
    doc: dict[str, Any] = {}
    for name, (ts, vs) in data.items():
        step = default_resolution(name)
        if rounded and step is not None:
            digits = max(0, -int(np.floor(np.log10(step))))
            vals: list[float] = [round(round(v / step) * step, digits) for v in vs]
        else:
            vals = vs
        doc[name] = [[t, v] for t, v in zip(ts, vals, strict=True)]
    return len(gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), 9))


def measure(day: date, weather: pd.DataFrame) -> dict[str, Any]:
    data = simulate_day(day, weather, seed=day.toordinal())
    first = min(ts[0] for ts, _ in data.values())
    whole = _block(data, first, first + 86_400_000)
    points = whole.points
    t0 = time.perf_counter()
    day_bytes = len(encode_block(whole))
    encode_ms = (time.perf_counter() - t0) * 1000

    def in_blocks(span_ms: int) -> int:
        total = 0
        for lo in range(first - first % span_ms, first + 86_400_000, span_ms):
            block = _block(data, lo, lo + span_ms)
            if block.points:
                total += len(encode_block(block))
        return total

    five_min = in_blocks(300_000)
    quarter = in_blocks(900_000)
    hourly = in_blocks(3_600_000)
    lossless = len(encode_block(whole, resolution_from({}, lossless=True)))
    json_raw = _json_gzip(data, rounded=False)
    json_rounded = _json_gzip(data, rounded=True)
    pv = data["pv_power_w"][1]
    return {
        "day": day.isoformat(),
        "channels": len(whole.series),
        "points": points,
        "pv_energy_kwh": round(sum(pv) / 60_000, 2),
        "bytes": day_bytes,
        "bytes_per_point": round(day_bytes / points, 3),
        "bytes_per_point_5min_blocks": round(five_min / points, 3),
        "bytes_per_point_15min_blocks": round(quarter / points, 3),
        "bytes_per_point_1h_blocks": round(hourly / points, 3),
        "bytes_per_point_lossless": round(lossless / points, 3),
        "json_gzip_bytes_per_point": round(json_raw / points, 3),
        "json_gzip_rounded_bytes_per_point": round(json_rounded / points, 3),
        "ratio_json_gzip_rounded_to_codec": round(json_rounded / day_bytes, 2),
        "encode_ms": round(encode_ms, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", default=DEFAULT_DAYS, help="comma-separated 2016 dates")
    args = parser.parse_args()
    days = [date.fromisoformat(d) for d in args.days.split(",")]
    weather = read_dtu_lyngby(
        field_data_dir() / "solar" / "dtu_lyngby_2016_1min.csv.gz", step_min=1
    )
    results = [measure(d, weather) for d in days]
    worst = max(results, key=lambda r: r["bytes_per_point"])
    print(
        json.dumps(
            {
                "bench": "telemetry_codec",
                "source": "appliance.sim.plant.Plant driven by DTU Lyngby 2016 1-min irradiance; "
                "compute power from a PlanetLab VM CPU trace; simulator-level meter jitter",
                "goal_bytes_per_point": 1.5,
                "bytes_per_point": worst["bytes_per_point"],
                "json_gzip_bytes_per_point": worst["json_gzip_bytes_per_point"],
                "days": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
