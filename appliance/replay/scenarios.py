"""The replay scenarios shipped in field_data/replay: box config, measured weather, job stream.

    python -m appliance.replay.scenarios          # regenerate the job streams (deterministic)

A job stream is sized from the box's own mean daily PV under the scenario's weather (the
simulator's sky over the whole year), so that PV is about 1.5x the fixed and deferrable demand.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from appliance.config import SunboxConfig, load_config
from appliance.paths import field_data_dir
from appliance.sim.sky import Sky
from appliance.solar.pvsystem import Physics
from appliance.solar.weather_file import read_weather_file
from appliance.state import Job
from appliance.workloads.streams import StreamSpec, generate, read_jsonl, record_to_job, write_jsonl


@dataclass(frozen=True)
class Scenario:
    name: str
    config: str  # relative to field_data
    weather: str
    jobs: str
    seed: int

    def paths(self, root: Path | None = None) -> tuple[Path, Path, Path]:
        base = root or field_data_dir()
        return base / self.config, base / self.weather, base / self.jobs


SCENARIOS: dict[str, Scenario] = {
    "lyngby": Scenario("lyngby", "replay/lyngby_box.toml", "solar/dtu_lyngby_2016_5min.csv.gz",
                       "replay/lyngby_2016_jobs.jsonl", seed=2016),
    "miami": Scenario("miami", "replay/miami_box.toml", "solar/miami_tmy2_1h.csv.gz",
                      "replay/miami_tmy2_jobs.jsonl", seed=1962),
}


def load(name: str) -> tuple[SunboxConfig, pd.DataFrame, list[Job]]:
    sc = SCENARIOS[name]
    cfg_path, weather_path, jobs_path = sc.paths()
    config = load_config(cfg_path, environ={})
    weather = read_weather_file(weather_path, capacity_w=config.array.dc_kw * 1000)
    jobs = [record_to_job(r) for r in read_jsonl(jobs_path)]
    return config, weather, jobs


def mean_daily_pv_wh(config: SunboxConfig, weather: pd.DataFrame) -> float:
    """The array's mean daily AC energy over the weather's span, by the simulator's own sky."""
    sky = Sky(config.site, config.array, weather=weather, resolution_s=300.0,
              chunk_s=400 * 86400.0, physics=Physics.from_config(config.forecast))
    start = weather.index[0].to_pydatetime()
    end = weather.index[-1].to_pydatetime()
    sky.prepare(start, end)
    days = (end - start).total_seconds() / 86400.0
    return sky.pv_energy_j(start.timestamp(), end.timestamp()) / 3600.0 / days


def build_jobs(name: str) -> tuple[Path, int, float]:
    sc = SCENARIOS[name]
    cfg_path, weather_path, jobs_path = sc.paths()
    config = load_config(cfg_path, environ={})
    weather = read_weather_file(weather_path, capacity_w=config.array.dc_kw * 1000)
    daily = mean_daily_pv_wh(config, weather)
    start: datetime = weather.index[0].to_pydatetime()
    days = int((weather.index[-1].to_pydatetime() - start) / timedelta(days=1))
    records = generate(StreamSpec(start=start, days=days, daily_pv_wh=daily, seed=sc.seed), config)
    write_jsonl(records, jobs_path)
    return jobs_path, len(records), daily


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", default=sorted(SCENARIOS))
    args = ap.parse_args(argv)
    for name in args.names:
        path, n, daily = build_jobs(name)
        print(f"{name}: {n} jobs -> {path} (mean daily PV {daily:.0f} Wh)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
