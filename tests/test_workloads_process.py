"""ProcessExecutor with real processes: groups, SIGSTOP/SIGCONT, caps, graceful stop, energy."""

from __future__ import annotations

import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.clock import SystemClock
from appliance.config import ComputeConfig
from appliance.state import Job, JobKind
from appliance.workloads.cgroup import JobCgroup, find_delegated_base
from appliance.workloads.executor import ExecutorError
from appliance.workloads.process import ProcessExecutor

# the interpreter itself, not a `python3` that may be a shim forking helpers (pyenv's does)
BURN = shlex.quote(sys.executable) + " -c 'import time\nt=time.time()\nwhile time.time()-t < {s}: pass'"


def job(job_id: str, cmd: str, power_w: float = 100.0) -> Job:
    return Job(
        id=job_id,
        name=job_id,
        kind=JobKind.DEFERRABLE,
        power_w=power_w,
        energy_wh=10.0,
        deadline=datetime(2100, 1, 1, tzinfo=UTC),
        cmd=cmd,
    )


def proc_state(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return "gone"
    return raw[raw.rfind(b")") + 2 :].split()[0].decode()


def group_pids(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            if int(raw[raw.rfind(b")") + 2 :].split()[2]) == pgid:
                out.append(int(entry))
    return out


def wait_until(pred, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def executor(tmp_path: Path):  # type: ignore[no-untyped-def]
    cfg = ComputeConfig(idle_w=40, max_w=300, cpu_count=2, stop_grace_s=1.0, duty_period_s=0.2)
    ex = ProcessExecutor(cfg, tmp_path, SystemClock())
    yield ex
    ex.close()


def test_runs_in_own_group_keeps_output_and_exit_code(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    executor.start(job("a", "echo hello; echo oops >&2; exit 3"))
    wait_until(lambda: executor.poll().get("a") is None or not executor.known("a"))
    assert (tmp_path / "jobs" / "a" / "stdout").read_text() == "hello\n"
    assert (tmp_path / "jobs" / "a" / "stderr").read_text() == "oops\n"


def test_exit_code_reported_once_then_forgotten(executor: ProcessExecutor) -> None:
    executor.start(job("b", "exit 7"))
    seen = {}

    def done() -> bool:
        seen.update(executor.poll())
        return "b" in seen and seen["b"].finished

    wait_until(done)
    assert seen["b"].exit_code == 7
    assert not executor.known("b")


def test_suspend_stops_the_whole_group_and_resume_continues(executor: ProcessExecutor) -> None:
    executor.start(job("c", f"{BURN.format(s=30)} & {BURN.format(s=30)} & wait"))
    pgid = executor._procs["c"].pgid
    wait_until(lambda: len(group_pids(pgid)) >= 3)
    executor.suspend("c")
    # stopped, or already exited (a zombie waits for its stopped parent to reap it)
    wait_until(lambda: all(proc_state(p) in ("T", "Z", "gone") for p in group_pids(pgid)))
    cpu_before = executor.poll()["c"].cpu_s
    time.sleep(0.5)
    prog = executor.poll()["c"]
    assert prog.suspended and not prog.running
    assert prog.cpu_s - cpu_before < 0.1  # no CPU while stopped (a tick or two of accounting lag)
    executor.resume("c")
    wait_until(lambda: all(proc_state(p) != "T" for p in group_pids(pgid)))
    wait_until(lambda: executor.poll()["c"].cpu_s - cpu_before > 0.1)  # it computes again
    prog = executor.poll()["c"]
    assert prog.running and not prog.suspended
    assert prog.energy_used_wh > 0


def test_graceful_stop_then_kill(executor: ProcessExecutor, tmp_path: Path) -> None:
    # ignores SIGTERM: must be killed after the grace period (1 s)
    executor.start(job("d", "trap '' TERM; sleep 30 & wait; sleep 30"))
    time.sleep(0.2)
    executor.suspend("d")  # a stopped job must still be stoppable
    executor.stop("d")
    t0 = time.monotonic()
    seen = {}

    def done() -> bool:
        seen.update(executor.poll())
        return "d" in seen and seen["d"].finished

    wait_until(done, timeout=10)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 5.0
    assert seen["d"].exit_code == -9
    # a job that honours SIGTERM ends at once
    executor.start(job("e", "sleep 30"))
    time.sleep(0.1)
    executor.stop("e")
    seen.clear()
    t0 = time.monotonic()
    wait_until(lambda: seen.update(executor.poll()) or ("e" in seen and seen["e"].finished))
    assert seen["e"].exit_code == -15 and time.monotonic() - t0 < 0.9


def test_cap_by_duty_cycling_holds_the_cpu_share(executor: ProcessExecutor) -> None:
    """Without a delegated cgroup, a cap to half the job's power keeps it stopped (state T)
    about half of each period. Sampled from /proc, so other load on the host does not matter."""
    if executor.cgroup_base is not None:
        pytest.skip("cgroup v2 available: duty-cycling fallback not used")
    model = executor.model
    full_w = model.dynamic_w(0.5)  # one busy CPU of two
    executor.start(job("f", BURN.format(s=30), power_w=full_w))
    pid = executor._procs["f"].pgid
    wait_until(lambda: len(group_pids(pid)) >= 1)
    executor.cap("f", model.dynamic_w(0.25))  # the power of half a CPU: share 0.5

    def stopped_fraction(seconds: float) -> float:
        states = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            states.append(proc_state(pid) == "T")
            time.sleep(0.005)
        return sum(states) / len(states)

    assert executor._procs["f"].share == pytest.approx(0.5, abs=0.01)
    assert 0.35 <= stopped_fraction(2.0) <= 0.65
    executor.cap("f", None)
    time.sleep(0.1)
    assert stopped_fraction(0.5) == 0.0


def test_energy_is_cpu_time_through_the_power_curve(tmp_path: Path) -> None:
    cfg = ComputeConfig(idle_w=40, max_w=300, cpu_count=2)
    ex = ProcessExecutor(cfg, tmp_path, SystemClock())
    try:
        ex.start(job("g", BURN.format(s=1.0)))
        ex.poll()
        seen = {}
        wait_until(lambda: seen.update(ex.poll()) or ("g" in seen and seen["g"].finished))
        prog = seen["g"]
        assert 0.1 <= prog.cpu_s <= 1.5  # (less than 1 s when the host is busy)
        # one of two CPUs busy: 50 % load -> curve 0.5 of 260 W = 130 W while it computes
        assert prog.energy_used_wh == pytest.approx(130.0 * prog.cpu_s / 3600.0, rel=0.35)
    finally:
        ex.close()


def test_meter_power_is_split_by_cpu_share(tmp_path: Path) -> None:
    cfg = ComputeConfig(idle_w=40, max_w=300, cpu_count=2)
    ex = ProcessExecutor(cfg, tmp_path, SystemClock(), meter_w=lambda: 240.0)  # 200 W above idle
    try:
        ex.start(job("m", BURN.format(s=0.7)))
        ex.poll()
        t0 = time.monotonic()
        seen = {}
        wait_until(lambda: seen.update(ex.poll()) or ("m" in seen and seen["m"].finished))
        elapsed = time.monotonic() - t0
        # 200 W for every poll interval in which it computed: at most the whole run
        assert (
            0.3 * 200.0 * elapsed / 3600.0
            <= seen["m"].energy_used_wh
            <= 1.05 * 200.0 * elapsed / 3600.0
        )
    finally:
        ex.close()


def test_bad_starts_are_clear_errors(executor: ProcessExecutor) -> None:
    with pytest.raises(ExecutorError, match="no command"):
        executor.start(job("h", ""))
    executor.start(job("i", "sleep 5"))
    with pytest.raises(ExecutorError, match="already running"):
        executor.start(job("i", "sleep 5"))
    with pytest.raises(ExecutorError, match="not running here"):
        executor.suspend("nope")


def test_cgroup_detection_and_quota_text(tmp_path: Path) -> None:
    # this host's /sys/fs/cgroup is read-only or v1: detection must say "not offered"
    base = find_delegated_base("/sys/fs/cgroup")
    if base is None:
        assert (
            not os.access("/sys/fs/cgroup/cgroup.subtree_control", os.W_OK)
            or not Path("/sys/fs/cgroup/cgroup.controllers").is_file()
        )
    assert find_delegated_base(tmp_path) is None  # not a cgroup2 mount
    cg = JobCgroup(tmp_path, "job/1")
    cg.create()
    cg.set_quota(0.25, 4)
    assert (cg.path / "cpu.max").read_text() == "100000 100000"
    cg.set_quota(None, 4)
    assert (cg.path / "cpu.max").read_text() == "max 100000"
    assert cg.path.name == "job-job_1"
