"""`sunbox jobs` end to end: real CLI processes, a real store, real subprocess jobs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.cli import main
from appliance.clock import SystemClock, floor_time
from appliance.config import ComputeConfig
from appliance.energy.kv import FORECAST_KEY, forecast_to_kv
from appliance.state import EventKind, JobCommand, JobState, PowerForecast
from appliance.store import Store
from appliance.workloads.process import ProcessExecutor
from appliance.workloads.runner import JobRunner

BURN = "python3 -c 'import time\nt=time.time()\nwhile time.time()-t < {s}: pass'; echo finished"


def sunbox(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *args, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def submit(data: Path, *args: str) -> dict[str, Any]:
    res = sunbox(data, "jobs", "submit", "--json", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def run_cli(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    """The same CLI in this process (cheaper where no process boundary matters)."""
    code = main([*args, "--data-dir", str(data)])
    out = capsys.readouterr()
    return code, out.out, out.err


def submit_here(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> dict[str, Any]:
    code, out, err = run_cli(capsys, data, "jobs", "submit", "--json", *args)
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def publish(store: Store, pv_w: float, soc_pct: float) -> None:
    """What the daemon publishes: a flat forecast (PV = essentials) and a live SoC."""
    now = datetime.now(UTC)
    start = floor_time(now, 900)
    flat = np.full(200, pv_w)
    fc = PowerForecast(issued_at=now, start=start, step_s=900, p10_w=flat, p50_w=flat, p90_w=flat)
    store.put_kv(FORECAST_KEY, forecast_to_kv(fc), now)
    store.put_kv("box", {"readings": {"soc_pct": {"value": soc_pct}}}, now)


def proc_state(pid: int) -> str:
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()


def wait_until(pred, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_submit_run_suspend_resume_account(data: Path) -> None:
    store = Store.open_dir(data)
    publish(store, pv_w=65.0, soc_pct=50.0)
    out = submit(
        data,
        "--name",
        "burn",
        "--cmd",
        BURN.format(s=1.5),
        "--energy-wh",
        "50",
        "--power-w",
        "100",
        "--deadline",
        "+6h",
    )
    assert out["admitted"] and out["state"] == "admitted"
    assert out["reason"].startswith("admitted: planned ") and "on battery" in out["reason"]
    assert "assumed" not in out["reason"]  # the daemon's published SoC and forecast were used

    clock = SystemClock()
    ex = ProcessExecutor(ComputeConfig(cpu_count=2, stop_grace_s=1.0), data, clock)
    runner = JobRunner(store, ex, clock)
    try:
        jid = out["id"]
        runner.apply([JobCommand(jid, "start", "plan: 100 W now")])
        assert store.jobs.get(jid).state is JobState.RUNNING  # type: ignore[union-attr]
        pid = ex._procs[jid].pgid
        time.sleep(0.3)
        runner.poll()
        runner.apply([JobCommand(jid, "suspend", "battery at reserve (30 % ≤ 30 %)")])
        wait_until(lambda: proc_state(pid) == "T")
        runner.poll()  # accounts the work done up to the stop
        job = store.jobs.get(jid)
        assert job is not None and job.state is JobState.SUSPENDED
        used = job.energy_used_wh
        time.sleep(0.5)
        runner.poll()
        assert store.jobs.get(jid).energy_used_wh == pytest.approx(used, abs=1e-4)  # type: ignore[union-attr]
        runner.apply([JobCommand(jid, "resume", "battery recovered")])
        assert proc_state(pid) != "T"
        wait_until(lambda: (runner.poll() or True) and store.jobs.get(jid).state is JobState.DONE)  # type: ignore[union-attr]
        done = store.jobs.get(jid)
        assert done is not None
        assert done.exit_code == 0 and done.energy_used_wh > used > 0 and done.cpu_s > 0.2
        assert done.reason.startswith("done: used ")
        assert (data / "jobs" / jid / "stdout").read_text() == "finished\n"
        messages = [e.message for e in store.events.list(kinds=[EventKind.JOB.value], limit=20)][
            ::-1
        ]
        assert any("suspended: battery at reserve" in m for m in messages)
        assert any("resumed: battery recovered" in m for m in messages)
        listed = json.loads(sunbox(data, "jobs", "list", "--json").stdout)
        assert (
            listed[0]["id"] == jid
            and listed[0]["state"] == "done"
            and listed[0]["energy_used_wh"] > 0
            and listed[0]["best_effort"] is False
        )
    finally:
        ex.close()


def test_cancel_through_the_cli_stops_the_running_process(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open_dir(data)
    publish(store, pv_w=65.0, soc_pct=50.0)
    out = submit(
        data, "--name", "long", "--cmd", "sleep 60", "--energy-wh", "20", "--deadline", "+6h"
    )
    clock = SystemClock()
    ex = ProcessExecutor(ComputeConfig(cpu_count=2, stop_grace_s=1.0), data, clock)
    runner = JobRunner(store, ex, clock)
    try:
        runner.apply([JobCommand(out["id"], "start", "plan")])
        res = sunbox(data, "jobs", "cancel", out["id"])
        assert res.returncode == 0 and "cancelled" in res.stdout
        wait_until(lambda: (runner.poll() or True) and not ex.known(out["id"]))
        job = store.jobs.get(out["id"])
        assert job is not None and job.state is JobState.CANCELLED and job.exit_code == -15
        code, _, err = run_cli(capsys, data, "jobs", "cancel", out["id"])
        assert code == 1 and "already cancelled" in err
    finally:
        ex.close()


def test_rejection_names_what_fits_and_the_earliest_deadline(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open_dir(data)
    publish(store, pv_w=65.0, soc_pct=50.0)  # ~1950 Wh above the reserve, no extra sun
    out = submit_here(
        capsys,
        data,
        "--name",
        "big",
        "--duration",
        "36000",
        "--power-w",
        "250",
        "--deadline",
        "+4h",
    )
    assert not out["admitted"] and out["state"] == "rejected"
    assert out["reason"].startswith(
        "rejected: at P10 the box can give 1000 Wh before your deadline, you asked 2500 Wh"
    )
    assert "no deadline in the next 48 h would work" in out["reason"]
    ok = submit_here(
        capsys,
        data,
        "--name",
        "small",
        "--energy-wh",
        "900",
        "--power-w",
        "250",
        "--deadline",
        "+4h",
    )
    assert ok["admitted"]
    later = submit_here(
        capsys,
        data,
        "--name",
        "more",
        "--energy-wh",
        "1500",
        "--power-w",
        "250",
        "--deadline",
        "+3h",
    )
    assert not later["admitted"] and later["earliest_deadline"] is None


def test_concurrent_submissions_do_not_share_the_same_energy(data: Path) -> None:
    store = Store.open_dir(data)
    publish(store, pv_w=65.0, soc_pct=50.0)
    args = ["--energy-wh", "1200", "--power-w", "250", "--deadline", "+10h"]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda n: submit(data, "--name", n, *args), ["a", "b"]))
    assert sorted(r["admitted"] for r in results) == [False, True]


def test_without_a_daemon_it_says_what_it_assumed(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = submit_here(capsys, data, "--name", "x", "--kind", "sponge", "--power-w", "50")
    assert out["admitted"]
    assert "no live data: assumed battery at 60 %" in out["reason"]
    assert "forecast made here from " in out["reason"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "a", "--energy-wh", "5"], "a deferrable job needs a deadline"),
        (["--name", "a", "--duration", "60", "--deadline", "+1h"], "--duration needs --power-w"),
        (
            [
                "--name",
                "a",
                "--energy-wh",
                "5",
                "--duration",
                "9",
                "--power-w",
                "5",
                "--deadline",
                "+1h",
            ],
            "not both",
        ),
        (["--name", "a", "--kind", "critical"], "a critical service needs its power"),
        (["--name", "a", "--kind", "sponge", "--deadline", "+1h"], "a sponge job has no deadline"),
        (
            ["--name", "a", "--energy-wh", "-5", "--deadline", "+1h"],
            "energy_wh: Input should be greater than 0",
        ),
        (["--name", "a", "--energy-wh", "5", "--deadline", "tomorrow"], "not an ISO time"),
    ],
)
def test_bad_submissions_are_one_line_errors(
    data: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, data, "jobs", "submit", *args)
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    store = Store.open_dir(data)
    assert store.jobs.list() == []  # nothing half-recorded


def test_too_much_power_is_rejected_with_the_node_limit(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = submit_here(
        capsys,
        data,
        "--name",
        "huge",
        "--energy-wh",
        "100",
        "--power-w",
        "400",
        "--deadline",
        "+6h",
    )
    assert out["reason"].startswith(
        "rejected: the node can give at most 260 W above idle, you asked 400 W"
    )


def test_stream_command_writes_a_jobs_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs.jsonl"
    code, _, err = run_cli(
        capsys,
        tmp_path / "d",
        "jobs",
        "stream",
        "--start",
        "2016-01-01T00:00+00:00",
        "--days",
        "14",
        "--daily-pv-wh",
        "9000",
        "--seed",
        "3",
        "--out",
        str(path),
    )
    assert code == 0, err
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines and {"critical", "deferrable", "sponge"} == {r["kind"] for r in lines}
    start = datetime(2016, 1, 1, tzinfo=UTC)
    assert all(
        start <= datetime.fromisoformat(r["arrival"]) < start + timedelta(days=14) for r in lines
    )
    code, _, err = run_cli(
        capsys,
        tmp_path / "d",
        "jobs",
        "stream",
        "--start",
        "2016-01-01T00:00+00:00",
        "--days",
        "1",
        "--daily-pv-wh",
        "1000",
        "--out",
        str(path),
    )
    assert code == 1 and "does not even cover the base load" in err
