"""cgroup v2 CPU limits for jobs, when the system delegates a writable cgroup to us.

A power cap becomes a CPU quota: ``cpu.max = "<quota_us> <period_us>"`` where the quota is the
node utilisation that draws ``cap_w`` above idle (the inverse power curve) times the CPU count.
Detection is careful: we need the unified hierarchy, the ``cpu`` controller, and permission to
create a child and enable ``+cpu`` for its children. Containers often give none of this (this
one runs a read-only v1/v2 hybrid); then ``ProcessExecutor`` falls back to SIGSTOP/SIGCONT duty
cycling, which holds the same average CPU share at a coarser grain.
"""

from __future__ import annotations

import os
from pathlib import Path

PERIOD_US = 100_000
BASE_NAME = "sunbox.jobs"


def own_cgroup(proc_cgroup: Path = Path("/proc/self/cgroup")) -> str | None:
    """This process's cgroup v2 path (the ``0::/path`` line), or None."""
    try:
        for line in proc_cgroup.read_text().splitlines():
            if line.startswith("0::"):
                return line[3:] or "/"
    except OSError:
        return None
    return None


def _enable_cpu(parent: Path) -> bool:
    controllers = (parent / "cgroup.controllers").read_text().split()
    if "cpu" not in controllers:
        return False
    control = parent / "cgroup.subtree_control"
    if "cpu" not in control.read_text().split():
        control.write_text("+cpu")
    return True


def find_delegated_base(root: Path | str) -> Path | None:
    """A writable cgroup directory whose children get ``cpu.max``; None when not offered."""
    root = Path(root)
    if not (root / "cgroup.controllers").is_file():
        return None  # no unified (v2) hierarchy here
    candidates = [root]
    own = own_cgroup()
    if own and own != "/":
        candidates.append(root / own.lstrip("/"))
    for parent in candidates:
        base = parent / BASE_NAME
        try:
            if not _enable_cpu(parent):
                continue
            base.mkdir(exist_ok=True)
            if not _enable_cpu(base):
                continue
            probe = base / "probe"
            probe.mkdir(exist_ok=True)
            writable = os.access(probe / "cpu.max", os.W_OK)
            probe.rmdir()
            if writable:
                return base
        except OSError:
            continue
    return None


class JobCgroup:
    """One job's cgroup: join it before exec, set or clear its CPU quota, remove it at the end."""

    def __init__(self, base: Path, job_id: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in job_id)
        self.path = base / f"job-{safe}"

    def create(self) -> None:
        self.path.mkdir(exist_ok=True)

    def join_self(self) -> None:
        """Called in the child between fork and exec, so every descendant is inside."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def set_quota(self, cpu_share: float | None, cpu_count: int) -> None:
        """``cpu_share`` of the whole node (0..1), or None for no limit."""
        if cpu_share is None:
            text = f"max {PERIOD_US}"
        else:
            quota = max(1000, int(round(cpu_share * cpu_count * PERIOD_US)))
            text = f"{quota} {PERIOD_US}"
        (self.path / "cpu.max").write_text(text)

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass
