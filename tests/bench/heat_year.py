"""Benchmark: a year of heat replay (router + room + ledger) on measured Lyngby air, and the fit.

Prints JSON: replay steps per second for the 1R1C and 2R2C rooms at 5-minute steps over 2016,
the ratio between them (same run), the year's heat figures, and the Armadillo fit time.
Run: .venv/bin/python tests/bench/heat_year.py
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from appliance.config import HeatConfig
from appliance.heat.fit import fit_room
from appliance.heat.record import load_record
from appliance.heat.virtual_room import VirtualRoom

FIELD = Path(__file__).resolve().parents[2] / "field_data"
STEP_S = 300.0


def lyngby_air_5min() -> list[float]:
    frame = pd.read_csv(FIELD / "solar" / "dtu_lyngby_2016_1min.csv.gz",
                        usecols=["Time(utc)", "air_temperature"])
    series = frame.set_index(pd.to_datetime(frame["Time(utc)"], utc=True))["air_temperature"]
    return [float(v) for v in series.resample("5min").mean().interpolate(limit_direction="both")]


def year(heat: HeatConfig, air: list[float], routing: bool) -> tuple[float, dict[str, float]]:
    room = VirtualRoom(heat, "Europe/Copenhagen", routing=routing, outdoor_c=air[0])
    start = datetime(2016, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    for k, outdoor in enumerate(air):
        room.step(start + timedelta(seconds=k * STEP_S), STEP_S, 300.0, outdoor)
    return time.perf_counter() - t0, room.summary()


def main() -> None:
    air = lyngby_air_5min()
    one = HeatConfig(enabled=True, room_r_k_per_w=0.05, room_c_j_per_k=3e6)
    two = HeatConfig(enabled=True, room_r_k_per_w=0.05, room_c_j_per_k=1e6,
                     room_r2_k_per_w=0.01, room_c2_j_per_k=2e6)
    s1, on1 = year(one, air, True)
    s2, on2 = year(two, air, True)
    _, off1 = year(one, air, False)
    t0 = time.perf_counter()
    fit_room(load_record(FIELD / "thermal" / "pysip_armadillo_data_H2.csv"), "auto")
    fit_s = time.perf_counter() - t0
    keys = ("heat_used_wh", "heat_vented_wh", "comfort_deficit_kh", "erf")
    print(json.dumps({
        "steps": len(air),
        "replay_1r1c_steps_per_s": round(len(air) / s1),
        "replay_2r2c_steps_per_s": round(len(air) / s2),
        "ratio_2r2c_to_1r1c_time": round(s2 / s1, 2),
        "year_1r1c_routing_on": {k: round(on1[k], 3) for k in keys},
        "year_1r1c_routing_off": {k: round(off1[k], 3) for k in keys},
        "year_2r2c_routing_on": {k: round(on2[k], 3) for k in keys},
        "armadillo_fit_auto_s": round(fit_s, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
