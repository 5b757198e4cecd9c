"""Fast greedy fallback: always a plan, in milliseconds, never below the floor.

Used when the LP fails or passes its time limit, and for cheap re-plans between LP solves.
Deferrable jobs are placed earliest-deadline-first: first into sun that would be curtailed,
then into slots with the most PV surplus as far as the battery's margin above the floor allows
(counted conservatively, as if all of it were discharged; a candidate under admission may not
deepen the essentials' dip, admitted work a little, see ``job_floor``). Sponge jobs take only
what would be curtailed. A final exact simulation checks the floor and trims work if rounding
crossed it.
"""

from __future__ import annotations

import numpy as np

from appliance.energy.battery import BatteryRun, simulate
from appliance.energy.problem import PlanJob, PlanningProblem
from appliance.energy.solution import Solution
from appliance.state import FloatArray, JobKind

TOL_WH = 1e-6
GREEDY_DEEPEN_PCT = 5.0
MAX_REPAIRS = 200


def solve_greedy(problem: PlanningProblem, status: str = "greedy") -> Solution:
    bat = problem.battery
    dt = problem.dt_h
    T = problem.horizon.n
    base_net = problem.pv_w - problem.essential_w
    total = np.zeros(T)
    node_free = problem.node_w.copy()
    alloc: dict[str, FloatArray] = {j.id: np.zeros(T) for j in problem.jobs}

    def run() -> BatteryRun:
        return simulate(bat, problem.soc0_wh, base_net - total, dt)

    def place(job: PlanJob, energy_wh: FloatArray) -> None:
        power = energy_wh / dt
        alloc[job.id] += power
        total[:] += power
        node_free[:] = np.maximum(node_free - power, 0.0)

    sim = run()
    deferrable = [
        j for j in problem.jobs if j.kind is JobKind.DEFERRABLE and j.remaining_wh is not None
    ]
    deferrable.sort(
        key=lambda j: (int(np.flatnonzero(j.max_w > 0)[-1]) if j.max_w.any() else -1, j.id)
    )
    for job in deferrable:
        need = float(job.remaining_wh or 0.0)
        cap_w = np.minimum(job.max_w, node_free)
        # pass 1: sun that would be curtailed, earliest first
        take = np.minimum(cap_w, sim.curtail_w) * dt
        before = np.cumsum(take) - take
        used = np.clip(need - before, 0.0, take)
        place(job, used)
        need -= float(used.sum())
        if need > TOL_WH:
            need = _from_battery(problem, sim, job, cap_w - used / dt, need, place)
        sim = run()
    sponges = sorted(
        (j for j in problem.jobs if j.kind is JobKind.SPONGE), key=lambda j: (-j.value, j.id)
    )
    for job in sponges:
        cap_w = np.minimum(job.max_w, node_free)
        take = np.minimum(cap_w, sim.curtail_w) * dt
        if job.remaining_wh is not None:
            before = np.cumsum(take) - take
            take = np.clip(job.remaining_wh - before, 0.0, take)
        place(job, take)
        sim = run()
    sim = _repair(problem, alloc, total, run, sim)
    return Solution(
        solver="greedy",
        status=status,
        soc_wh=sim.soc_wh,
        charge_w=sim.charge_w,
        discharge_w=sim.discharge_w,
        curtail_w=sim.curtail_w,
        shed_w=sim.unserved_w,
        job_w=alloc,
        miss_wh={
            j.id: max(0.0, float(j.remaining_wh or 0.0) - float((alloc[j.id] * dt).sum()))
            for j in deferrable
        },
    )


def _from_battery(
    problem: PlanningProblem,
    sim: BatteryRun,
    job: PlanJob,
    room_w: FloatArray,
    need: float,
    place: object,
) -> float:
    """Draw on the battery's margin above the floor, sunniest slots first."""
    bat = problem.battery
    dt = problem.dt_h
    margin = sim.soc_wh - job_floor(problem, job)
    power_room = bat.discharge_max_w + sim.charge_w - sim.discharge_w
    surplus = problem.pv_w - problem.essential_w
    window = np.flatnonzero(room_w > 1e-9)
    order = window[np.lexsort((window, -surplus[window]))]
    extra = np.zeros(problem.horizon.n)
    for k in order.tolist():
        if need <= TOL_WH:
            break
        headroom = float(margin[k:].min())
        if headroom <= TOL_WH:
            continue
        e = min(room_w[k] * dt[k], power_room[k] * dt[k], need, headroom * bat.eta_discharge)
        if e <= TOL_WH:
            continue
        extra[k] = e
        margin[k:] -= e / bat.eta_discharge
        need -= e
    place(job, extra)  # type: ignore[operator]
    return need


def job_floor(problem: PlanningProblem, job: PlanJob) -> FloatArray:
    """The floor one job must respect: a candidate may not deepen the essentials' dip at all,
    admitted work by at most ``GREEDY_DEEPEN_PCT`` of the battery."""
    if job.candidate:
        return problem.strict_floor_wh
    bat = problem.battery
    deepened = np.maximum(problem.dip_wh - bat.capacity_wh * GREEDY_DEEPEN_PCT / 100.0, bat.min_wh)
    return np.where(np.isnan(problem.dip_wh), problem.floor_wh, deepened)


def _repair(
    problem: PlanningProblem,
    alloc: dict[str, FloatArray],
    total: FloatArray,
    run: object,
    sim: BatteryRun,
) -> BatteryRun:
    """Trim work (sponge first, latest first) until the exact simulation respects the floor."""
    dt = problem.dt_h
    order = [j for j in problem.jobs if j.kind is JobKind.SPONGE] + [
        j for j in reversed(problem.jobs) if j.kind is JobKind.DEFERRABLE
    ]
    for _ in range(MAX_REPAIRS):
        short = problem.floor_wh - sim.soc_wh
        bad = np.flatnonzero(short > 1e-3)
        if len(bad) == 0:
            break
        t_bad = int(bad[0])
        deficit = float(short[t_bad]) + 1e-3
        for job in order:
            arr = alloc[job.id]
            for k in range(t_bad, -1, -1):
                if deficit <= 0:
                    break
                e = min(arr[k] * dt[k], deficit)
                if e > 0:
                    arr[k] -= e / dt[k]
                    total[k] -= e / dt[k]
                    deficit -= e
            if deficit <= 0:
                break
        sim = run()  # type: ignore[operator]
    return sim
