"""Benchmark: the daemon against the simulator — CPU % of one core and peak RSS.

The simulated devices run in this process; the daemon runs as `sunbox run` in a child process
(no dashboard), polling them over Modbus TCP on 127.0.0.1 every control period. After a warm-up
(imports, first forecast and plan), CPU time of the child is sampled from /proc over the
measuring window. Goals: <= 2 % of one core, <= 150 MB peak RSS. Prints JSON.

The daemon keeps pvlib out of its memory: its PV chain runs in a short-lived worker process
(appliance.solar.chain) at start, every two weeks, and when a weather feed arrives. The CPU
figure includes those workers (children's time); the worker's own peak RSS and cost per call
are measured here too, before the daemon starts, and ``worst_case_rss_mb`` adds them up (the
box's footprint at the moment a worker runs).

    python tests/bench/daemon_idle.py [--seconds 300] [--warmup 30] [--api]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from appliance.clock import SystemClock  # noqa: E402
from appliance.config import SunboxConfig, dump_config  # noqa: E402
from appliance.sim import build_simulators  # noqa: E402
from tests.conftest import free_port, make_config  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK  # utime + stime + its workers' cutime + cstime


def worker_cost(config: SunboxConfig) -> dict[str, float]:
    """One call of the PV chain worker as the daemon makes it at start (15 days of 15-min slots)."""
    import resource

    from appliance.solar.chain import ChainSpec, WorkerChain
    from appliance.solar.pvsystem import Physics

    spec = ChainSpec.of(config.site, config.array, Physics.from_config(config.forecast), config.forecast.cloud_model)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    WorkerChain().clear_block(spec, time.time() // 900 * 900, 15 * 96, 900.0)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"worker_wall_s": round(wall, 2),
            "worker_cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
            "worker_peak_rss_mb": round(after.ru_maxrss / 1024, 1)}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(seconds: float, warmup: float, api: bool = False) -> dict[str, object]:
    port = free_port()
    config = make_config(port)
    worker = worker_cost(config)  # first: no other child has been reaped yet
    sims = build_simulators(config, SystemClock(), compute_power_w=lambda: config.compute.idle_w)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "sunbox.toml"
        cfg_path.write_text(dump_config(config))
        async with sims:
            proc = subprocess.Popen(
                [sys.executable, "-m", "appliance.cli", "run", "--config", str(cfg_path), "--data-dir", tmp,
                 *(["--port", str(free_port())] if api else ["--no-api"])],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
            try:
                await asyncio.sleep(warmup)
                c0, t0 = cpu_s(proc.pid), time.monotonic()
                await asyncio.sleep(seconds)
                c1, t1 = cpu_s(proc.pid), time.monotonic()
                rss = peak_rss_mb(proc.pid)
            finally:
                proc.terminate()
                _, err = proc.communicate(timeout=30)
        from appliance.store import Store

        store = Store.open_dir(tmp)
        cycles = store.get_kv("box")
        n_cycles = cycles[0]["daemon"]["cycles"] if cycles else None
        store.close()
    return {
        "api": api,
        "measured_s": round(t1 - t0, 1),
        "warmup_s": warmup,
        "control_period_s": config.control.period_s,
        "control_cycles_total": n_cycles,
        "cpu_pct_of_one_core": round(100 * (c1 - c0) / (t1 - t0), 2),
        "cpu_goal_pct": 2.0,
        "peak_rss_mb": round(rss, 1),
        "rss_goal_mb": 150,
        **worker,
        "worst_case_rss_mb": round(rss + worker["worker_peak_rss_mb"], 1),
        "daemon_exit_code": proc.returncode,
        "daemon_stderr_tail": err.decode(errors="replace")[-300:],
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--api", action="store_true", help="serve the dashboard/API too (idle: nobody looking)")
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main(a.seconds, a.warmup, a.api)), indent=2))
