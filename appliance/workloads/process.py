"""Jobs as real processes: own process group, suspend/resume, power caps, graceful stop.

Each job runs ``/bin/sh -c <cmd>`` in a new session (its process group), with stdout and
stderr appended to ``<data_dir>/jobs/<id>/stdout`` and ``stderr``. Suspend and resume signal
the whole group (SIGSTOP/SIGCONT). A power cap uses cgroup v2 ``cpu.max`` when a delegated
cgroup is writable (``cgroup.find_delegated_base``); otherwise a background thread holds the
cap by duty cycling the group with SIGSTOP/SIGCONT every ``compute.duty_period_s`` (running the
share of each period that gives the capped power). Stop sends SIGTERM, then SIGKILL after
``compute.stop_grace_s`` (escalated by ``poll``, which never blocks).

Energy: CPU time of every process seen in the group (from /proc), turned into power by the
node's curve (``NodePowerModel.split_w``), or split from a meter's node power when one is
given. At exit the leader's rusage (which includes its reaped children) tops up the count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from appliance.clock import Clock
from appliance.config import ComputeConfig
from appliance.state import Job
from appliance.workloads.cgroup import JobCgroup, find_delegated_base
from appliance.workloads.executor import ExecutorError, JobProgress
from appliance.workloads.power_model import NodePowerModel

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class _Proc:
    job_id: str
    popen: subprocess.Popen[bytes]
    files: tuple[IO[bytes], IO[bytes]]
    power_w: float
    energy_wh: float
    cgroup: JobCgroup | None
    suspended: bool = False
    share: float | None = None  # duty share of full speed under a cap (fallback only)
    paused_by_duty: bool = False
    cpu_seen: dict[int, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    cpu_reported: float = 0.0
    last_power_w: float = 0.0
    stop_at: float | None = None  # monotonic time after which SIGKILL
    exit_code: int | None = None

    @property
    def pgid(self) -> int:
        return self.popen.pid


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_cpu_s(pgid: int) -> dict[int, float]:
    """utime + stime of every process in the group, by pid (reads /proc)."""
    out: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        rest = raw[raw.rfind(b")") + 2 :].split()
        if len(rest) < 13 or int(rest[2]) != pgid:
            continue
        out[int(entry.name)] = (int(rest[11]) + int(rest[12])) / CLK_TCK
    return out


class ProcessExecutor:
    def __init__(
        self,
        config: ComputeConfig,
        data_dir: Path | str,
        clock: Clock,
        *,
        meter_w: Callable[[], float | None] | None = None,
        use_cgroup: bool | None = None,
    ) -> None:
        self.config = config
        self.jobs_dir = Path(data_dir) / config.jobs_dir
        self.clock = clock
        self.model = NodePowerModel.from_config(config)
        self.meter_w = meter_w
        base = find_delegated_base(config.cgroup_root) if use_cgroup in (None, True) else None
        if use_cgroup and base is None:
            raise ExecutorError(
                f"no writable cgroup v2 with the cpu controller under {config.cgroup_root}"
            )
        self.cgroup_base = base
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.RLock()
        self._last_poll = clock.monotonic()
        self._stop_duty = threading.Event()
        self._duty_thread: threading.Thread | None = None

    @property
    def capping(self) -> str:
        return (
            "cgroup v2 cpu.max" if self.cgroup_base is not None else "SIGSTOP/SIGCONT duty cycling"
        )

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def known(self, job_id: str) -> bool:
        return job_id in self._procs

    # ------------------------------------------------------------------ actions
    def start(self, job: Job) -> None:
        if not job.cmd:
            raise ExecutorError(f"job {job.id} has no command")
        with self._lock:
            if job.id in self._procs and self._procs[job.id].exit_code is None:
                raise ExecutorError(f"job {job.id} is already running")
            folder = self.job_dir(job.id)
            folder.mkdir(parents=True, exist_ok=True)
            out = open(folder / "stdout", "ab")  # closed when the job ends
            err = open(folder / "stderr", "ab")
            cg = JobCgroup(self.cgroup_base, job.id) if self.cgroup_base is not None else None
            if cg is not None:
                cg.create()
            env = dict(os.environ, SUNBOX_JOB_ID=job.id)
            try:
                popen = subprocess.Popen(
                    ["/bin/sh", "-c", job.cmd],
                    cwd=folder,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    env=env,
                    preexec_fn=cg.join_self if cg is not None else None,
                )
            except OSError as exc:
                out.close()
                err.close()
                raise ExecutorError(f"job {job.id}: cannot start /bin/sh ({exc.strerror})") from exc
            self._procs[job.id] = _Proc(
                job_id=job.id,
                popen=popen,
                files=(out, err),
                power_w=job.power_w,
                energy_wh=job.energy_used_wh,
                cgroup=cg,
                cpu_reported=0.0,
            )
            if job.cap_w is not None:
                self.cap(job.id, job.cap_w)

    def _get(self, job_id: str) -> _Proc:
        proc = self._procs.get(job_id)
        if proc is None:
            raise ExecutorError(f"job {job_id} is not running here")
        return proc

    def suspend(self, job_id: str) -> None:
        with self._lock:
            proc = self._get(job_id)
            proc.suspended = True
            _signal_group(proc.pgid, signal.SIGSTOP)

    def resume(self, job_id: str) -> None:
        with self._lock:
            proc = self._get(job_id)
            proc.suspended = False
            proc.paused_by_duty = False
            _signal_group(proc.pgid, signal.SIGCONT)

    def cap(self, job_id: str, cap_w: float | None) -> None:
        with self._lock:
            proc = self._get(job_id)
            if cap_w is not None and cap_w >= proc.power_w:
                cap_w = None
            if proc.cgroup is not None:
                share = None if cap_w is None else self.model.utilisation_for(cap_w)
                proc.cgroup.set_quota(share, self.model.cpu_count)
                return
            if cap_w is None:
                proc.share = None
                if proc.paused_by_duty and not proc.suspended:
                    _signal_group(proc.pgid, signal.SIGCONT)
                proc.paused_by_duty = False
                return
            full = self.model.utilisation_for(proc.power_w)
            proc.share = (
                min(1.0, self.model.utilisation_for(max(cap_w, 0.0)) / full) if full > 0 else 1.0
            )
            self._ensure_duty_thread()

    def stop(self, job_id: str) -> None:
        with self._lock:
            proc = self._get(job_id)
            if proc.exit_code is not None or proc.stop_at is not None:
                return
            proc.share = None
            proc.stop_at = self.clock.monotonic() + self.config.stop_grace_s
            _signal_group(proc.pgid, signal.SIGTERM)
            _signal_group(proc.pgid, signal.SIGCONT)  # a stopped process must wake to die
            if self.config.stop_grace_s <= 0:
                _signal_group(proc.pgid, signal.SIGKILL)

    # ------------------------------------------------------------------ polling
    def poll(self) -> dict[str, JobProgress]:
        with self._lock:
            now = self.clock.monotonic()
            interval = max(now - self._last_poll, 1e-6)
            self._last_poll = now
            deltas: dict[str, float] = {}
            for proc in self._procs.values():
                if proc.exit_code is None:
                    self._sample_cpu(proc)
                    self._reap(proc, now)
                deltas[proc.job_id] = proc.cpu_s - proc.cpu_reported
                proc.cpu_reported = proc.cpu_s
            meter = self.meter_w() if self.meter_w is not None else None
            powers = self.model.split_w(deltas, interval, meter)
            out: dict[str, JobProgress] = {}
            for proc in self._procs.values():
                p = powers.get(proc.job_id, 0.0)
                proc.last_power_w = p
                proc.energy_wh += p * interval / 3600.0
                finished = proc.exit_code is not None
                out[proc.job_id] = JobProgress(
                    job_id=proc.job_id,
                    running=not finished and not proc.suspended,
                    suspended=proc.suspended and not finished,
                    finished=finished,
                    exit_code=proc.exit_code,
                    energy_used_wh=proc.energy_wh,
                    cpu_s=proc.cpu_s,
                    power_w=p,
                )
            for job_id in [j for j, p in self._procs.items() if p.exit_code is not None]:
                self._forget(job_id)
            return out

    def _sample_cpu(self, proc: _Proc) -> None:
        for pid, cpu in _group_cpu_s(proc.pgid).items():
            proc.cpu_seen[pid] = max(cpu, proc.cpu_seen.get(pid, 0.0))
        proc.cpu_s = max(proc.cpu_s, sum(proc.cpu_seen.values()))

    def _reap(self, proc: _Proc, now: float) -> None:
        try:
            pid, status, usage = os.wait4(proc.popen.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status, usage = proc.popen.pid, 0, None
        if pid == 0:
            if proc.stop_at is not None and now >= proc.stop_at:
                _signal_group(proc.pgid, signal.SIGKILL)
            return
        code = (
            os.waitstatus_to_exitcode(status) if usage is not None else (proc.popen.returncode or 0)
        )
        proc.popen.returncode = code
        proc.exit_code = code
        if usage is not None:
            proc.cpu_s = max(proc.cpu_s, usage.ru_utime + usage.ru_stime)
        _signal_group(proc.pgid, signal.SIGKILL)  # leftovers of the group go with the leader

    def _forget(self, job_id: str) -> None:
        proc = self._procs.pop(job_id)
        for fh in proc.files:
            fh.close()
        if proc.cgroup is not None:
            proc.cgroup.remove()

    # ------------------------------------------------------------------ duty cycling
    def _ensure_duty_thread(self) -> None:
        if self._duty_thread is not None and self._duty_thread.is_alive():
            return
        self._stop_duty.clear()
        self._duty_thread = threading.Thread(
            target=self._duty_loop, name="sunbox-duty", daemon=True
        )
        self._duty_thread.start()

    def _duty_loop(self) -> None:
        """Run each capped group for ``share`` of every period, stopped for the rest."""
        period = self.config.duty_period_s
        tick = min(0.05, period / 20.0)
        while not self._stop_duty.wait(tick):
            with self._lock:
                capped = [
                    p for p in self._procs.values() if p.share is not None and p.exit_code is None
                ]
                if not capped:
                    continue
                phase = (time.monotonic() % period) / period
                for proc in capped:
                    if proc.suspended or proc.stop_at is not None:
                        continue
                    share = proc.share if proc.share is not None else 1.0
                    should_pause = phase >= share
                    if should_pause and not proc.paused_by_duty:
                        _signal_group(proc.pgid, signal.SIGSTOP)
                        proc.paused_by_duty = True
                    elif not should_pause and proc.paused_by_duty:
                        _signal_group(proc.pgid, signal.SIGCONT)
                        proc.paused_by_duty = False

    def close(self, kill: bool = True) -> None:
        """Stop the duty thread; with ``kill``, end every job's process group now."""
        self._stop_duty.set()
        with self._lock:
            for proc in list(self._procs.values()):
                if kill and proc.exit_code is None:
                    _signal_group(proc.pgid, signal.SIGKILL)
                    _signal_group(proc.pgid, signal.SIGCONT)
                    try:
                        proc.popen.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                    proc.exit_code = proc.popen.returncode
            for job_id in list(self._procs):
                self._forget(job_id)
