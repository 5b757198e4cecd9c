"""The PV chain in a worker process: same numbers as in-process, and pvlib stays out of the daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from appliance.config import load_config
from appliance.paths import field_data_dir
from appliance.solar.chain import ChainSpec, ClearBlock, InProcessChain, WorkerChain
from appliance.solar.forecaster import Forecaster
from appliance.solar.pvsystem import Physics
from appliance.solar.weather_file import read_weather_file

ROOT = Path(__file__).resolve().parents[1]
LYNGBY = field_data_dir() / "replay/lyngby_box.toml"
JULY_1 = datetime(2016, 7, 1, tzinfo=UTC)


def _config():  # type: ignore[no-untyped-def]
    return load_config(LYNGBY, environ={})


def _spec() -> ChainSpec:
    cfg = _config()
    return ChainSpec.of(cfg.site, cfg.array, Physics.from_config(cfg.forecast), cfg.forecast.cloud_model)


def test_worker_chain_gives_the_in_process_numbers() -> None:
    spec, t0 = _spec(), JULY_1.timestamp()
    local = InProcessChain().clear_block(spec, t0, 96 * 3, 900.0)
    worker = WorkerChain()
    remote = worker.clear_block(spec, t0, 96 * 3, 900.0)
    assert worker.calls == 1
    np.testing.assert_allclose(remote.pv_clear_w, local.pv_clear_w)
    np.testing.assert_array_equal(remote.hour_bin, local.hour_bin)
    np.testing.assert_array_equal(remote.month, local.month)
    noon = int(np.argmax(local.pv_clear_w))
    assert 2000.0 < local.pv_clear_w[noon] < 3000.0  # a 3 kW dual-axis array under a July sky
    assert local.pv_clear_w[:8].max() == 0.0  # 00:00-02:00 UTC in Denmark: dark

    weather = read_weather_file(field_data_dir() / "solar/dtu_lyngby_2016_5min.csv.gz", capacity_w=3000.0)
    frame = weather.loc["2016-07-01":"2016-07-02"]
    first_l, k_l = InProcessChain().weather_index(spec, frame, 900.0)
    first_r, k_r = worker.weather_index(spec, frame, 900.0)
    assert first_l == first_r == int(JULY_1.timestamp() // 900)
    np.testing.assert_allclose(k_r, k_l, equal_nan=True)
    assert 0.0 < float(np.nanmean(k_l)) <= 1.5 and np.isnan(k_l).sum() > 0  # nights say nothing


def test_worker_failure_is_a_clear_error() -> None:
    good = _spec()
    bad = ChainSpec({**good.site, "lat": 500.0}, good.array, good.physics, good.cloud_model)
    try:
        WorkerChain().clear_block(bad, JULY_1.timestamp(), 4, 900.0)
    except RuntimeError as exc:
        assert "PV chain worker failed" in str(exc) and "exit 1" in str(exc)
    else:
        raise AssertionError("a broken request must fail loudly")


class CountingChain(InProcessChain):
    def __init__(self) -> None:
        self.blocks: list[tuple[float, int, float]] = []

    def clear_block(self, spec: ChainSpec, t0_s: float, n: int, step_s: float) -> ClearBlock:
        self.blocks.append((t0_s, n, step_s))
        return super().clear_block(spec, t0_s, n, step_s)


def test_tables_grown_ahead_leave_nothing_for_the_control_loop() -> None:
    """What the daemon does before each plan: compute what the tables lack, adopt it; then the
    forecast and the learning at ``now`` need no chain call (the event loop never waits)."""
    cfg = _config()
    chain = CountingChain()
    chain.in_process = False  # take the worker path through the tables
    fc = Forecaster(cfg, chain=chain)
    now = JULY_1 + timedelta(hours=9, minutes=7)
    needs = fc.table_needs(now, 48.0, 15)
    assert needs and all(n > 48 * 4 for _step, _t0, n in needs)
    for step, t0, n in needs:
        fc.adopt_block(chain.clear_block(fc.spec, t0, n, step))
    calls = len(chain.blocks)
    got = fc.forecast(now, hours=48.0, step_min=15)
    fc.observe_one(now, 1500.0)
    fc.observe_one(now + timedelta(minutes=20), 1600.0)
    assert len(chain.blocks) == calls
    assert fc.table_needs(now + timedelta(days=1), 48.0, 15) == []

    reference = Forecaster(cfg).forecast(now, hours=48.0, step_min=15)
    np.testing.assert_allclose(got.p50_w, reference.p50_w)
    np.testing.assert_allclose(got.p10_w, reference.p10_w)

    # past its two weeks ahead, the table continues where it ended (appended, not recomputed from scratch)
    later = now + timedelta(days=15)
    (step, t0, n), *_ = fc.table_needs(later, 48.0, 15)
    block = fc.table(step).block
    assert block is not None and t0 == block.end_s
    fc.adopt_block(chain.clear_block(fc.spec, t0, n, step))
    assert fc.table_needs(later, 48.0, 15) == []


SCRIPT = """
import json, sys
from datetime import datetime, UTC
from appliance.cli import build_parser
from appliance.config import load_config
from appliance.solar.chain import default_chain
from appliance.solar.forecaster import Forecaster
import appliance.daemon, appliance.starters, appliance.api.serve
build_parser()
chain = default_chain()
fc = Forecaster(load_config(sys.argv[1], environ={}), chain=chain, extend_ahead_s=0.0)
out = fc.forecast(datetime(2016, 7, 1, 6, tzinfo=UTC), hours=12, step_min=15)
print(json.dumps({"pvlib": "pvlib" in sys.modules, "scipy_optimize": "scipy.optimize" in sys.modules,
                  "chain": type(chain).__name__, "calls": chain.calls, "p50": [float(x) for x in out.p50_w]}))
"""


def test_daemon_process_never_loads_pvlib() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(LYNGBY)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    got = json.loads(proc.stdout)
    assert got["chain"] == "WorkerChain" and got["calls"] >= 1
    assert got["pvlib"] is False and got["scipy_optimize"] is False
    reference = Forecaster(_config(), extend_ahead_s=0.0).forecast(datetime(2016, 7, 1, 6, tzinfo=UTC), hours=12,
                                                                   step_min=15)
    np.testing.assert_allclose(np.asarray(got["p50"]), reference.p50_w, rtol=1e-9, atol=1e-6)
    assert max(got["p50"]) > 500.0


def test_weather_indices_off_loop_match_set_weather() -> None:
    cfg = _config()
    weather = read_weather_file(field_data_dir() / "solar/dtu_lyngby_2016_5min.csv.gz", capacity_w=3000.0)
    frame = weather.loc["2016-07-01":"2016-07-03"].copy()
    frame.attrs["source"] = "test feed"
    a, b = Forecaster(cfg), Forecaster(cfg)
    a.set_weather(frame)
    b.set_weather(frame, b.weather_indices(frame, step_min=15))
    now = pd.Timestamp("2016-07-01T04:00Z").to_pydatetime()
    np.testing.assert_allclose(a.forecast(now, hours=24).p50_w, b.forecast(now, hours=24).p50_w)


def test_sunbox_run_plans_through_the_worker_without_loading_pvlib(tmp_path: Path) -> None:
    """The box's own process (`sunbox run`) against the simulator over Modbus TCP: it forecasts
    and makes its first plan within seconds, and pvlib never gets into its memory."""
    import asyncio
    import time

    from appliance.clock import SystemClock
    from appliance.config import dump_config
    from appliance.sim import build_simulators
    from appliance.store import Store
    from tests.conftest import free_port, make_config

    config = make_config(free_port())
    cfg_path = tmp_path / "sunbox.toml"
    cfg_path.write_text(dump_config(config))

    async def scenario() -> tuple[str, bool]:
        sims = build_simulators(config, SystemClock(), compute_power_w=lambda: config.compute.idle_w)
        async with sims:
            proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "run", "--config", str(cfg_path),
                                     "--data-dir", str(tmp_path), "--no-api"], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 60.0
                planned = False
                while time.monotonic() < deadline and not planned:
                    await asyncio.sleep(1.0)
                    store = Store.open_dir(tmp_path)
                    planned = store.get_kv("plan") is not None and store.get_kv("forecast") is not None
                    store.close()
                maps = Path(f"/proc/{proc.pid}/maps").read_text()
            finally:
                proc.terminate()
                proc.communicate(timeout=30)
        return maps, planned

    maps, planned = asyncio.run(scenario())
    assert planned, "no forecast and plan within 60 s"
    # pvlib is pure Python; what it drags in (h5py, scipy.optimize) maps shared objects
    assert "h5py" not in maps and "scipy/optimize" not in maps
    store = Store.open_dir(tmp_path)
    forecast = store.get_kv("forecast")
    store.close()
    assert forecast is not None and len(forecast[0]["p50_w"]) >= 48 * 4
    assert all(lo <= mid <= hi for lo, mid, hi in zip(forecast[0]["p10_w"], forecast[0]["p50_w"],
                                                      forecast[0]["p90_w"], strict=True))
