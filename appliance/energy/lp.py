"""The plan as a linear programme, solved by HiGHS (highspy).

Variables per slot t: charge c, discharge d, curtailment u, end-of-slot energy s, unserved
essential load e; per job j and slot in its window: power x; per deferrable job: energy that
misses its deadline m. All jobs are preemptible (SIGSTOP), so no integer variables are needed
and the solve stays in the tens of milliseconds.

    balance   d - c - u + e - sum_j x_j = essential - pv
    battery   s_t = s_{t-1} + eta_c c dt - d dt / eta_d
    node      sum_j x_j <= node power left after critical services
    sponge    sum_sponge x <= PV above the essentials (sponges soak sun; on the battery only
              where the room wants their heat)
    deadline  sum_t x_j dt + m_j = remaining energy of j
    floor     s_t >= reserve (+ margin) where jobs may run; where the essentials alone are under
              it no job runs, and s_t + deepen >= essentials-only SoC: promised work done before
              may deepen that dip at a penalty, by ``planner.deepen_share`` of its way to
              the empty battery + margin (what the critical services need to stay up)
    run-up    when promised work would miss, idle slots where that floor binds, and the idle
              slots whose SoC falls into such a slot or a dip or climbs out of it, lose the
              reserve floor too (no job runs there, so SoC under the reserve there is no
              violation) and count as dip: ``RELAX_ROUNDS`` re-solves at most

The reserve is a rule about when work may draw power, not a wall the essentials' own night
must never touch: in a 1-in-10 scenario where the file share alone would run into the reserve
tomorrow night, work today is still allowed if it runs above the reserve and leaves the
critical services enough to stay up (what it takes from them costs ``deepen`` per kWh:
promised work pays it, sponges, best-effort work and heat are worth less and do not).

Minimised: curtailment, battery throughput and unserved load, minus the value of sponge work
and of heat, minus the value of energy left in the battery, plus missed deadline energy
(candidates under admission are missed before any admitted job, best-effort work before both,
but not for a sponge or for energy kept in the battery: see ``_best_effort_penalties``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from dataclasses import dataclass
from itertools import accumulate

import highspy
import numpy as np

from appliance.energy.problem import PlanJob, PlanningProblem
from appliance.energy.solution import Solution
from appliance.state import JobKind

# Deferrable work early rather than late: what is done cannot be lost to a forecast that was
# wrong. A day's delay (0.48 per kWh) outweighs what today's sun kept in the battery is worth at
# the horizon's end (stored value 0.2 + curtailment 0.05), so work is not put off to a sunnier
# tomorrow that may not come. Measured on the replay years: 0.001 -> 0.02 took Miami's misses
# from 20 to 10 and its critical uptime from 99.667 to 99.800 %; Lyngby's misses 24 -> 20.
EARLY_PER_KWH_H = 0.02
# Among equally good slots, prefer the sunniest: there a shortfall of the forecast hurts least.
SUNNY_PER_KWH = 0.002
CANDIDATE_TIER = 0.01
BEST_EFFORT_FLOOR = 0.01  # per kWh above the best of storing or soaking it
BEST_EFFORT_EARLY_SHARE = 0.1  # of EARLY_PER_KWH_H: its lean to early slots stays under its tier
RELAX_ROUNDS = 3
# When not every promise can be kept, keep as many as possible: a missed kWh costs more the less
# of the job is left (energy spread over jobs that all miss anyway is lost), so the jobs nearest
# to done are finished first.
FEW_MISSES_WH = 250.0
COMPLETION_MAX = 10.0
HOPELESS_PER_KWH = 0.01  # a job that cannot finish: over curtailment (0.05), under a sponge (0.1)
HOPELESS_TOL_WH = 1.0
IDLE_W = 1e-3


class LPFailed(Exception):
    """The solver gave no usable answer (time limit, numerical trouble)."""


_LOCAL = threading.local()
_STDOUT_LOCK = threading.Lock()


def _highs() -> highspy.Highs:
    """This thread's solver, emptied: making a Highs and freeing it after the solve cost 0.1 ms
    a plan (a tenth of the solve on the replay's 66-slot grid); a cleared one solves the same
    model to the same bits (replay JSON identical). One model per thread at a time."""
    h: highspy.Highs | None = getattr(_LOCAL, "highs", None)
    if h is None:
        h = _quiet_highs()
        _LOCAL.highs = h
    else:
        h.clearModel()
    return h


def _quiet_highs() -> highspy.Highs:
    """A Highs that prints no banner: highspy 1.16 prints it on stdout from the C++ constructor,
    before any option can be set, and stdout carries the CLI's JSON (``sunbox jobs submit``,
    ``sunbox replay --json``) and the demo's console. Once per thread, file descriptor 1 points
    at /dev/null for the constructor alone, under a lock, so two threads cannot restore each
    other's copy."""
    with _STDOUT_LOCK, contextlib.ExitStack() as undo:
        sys.stdout.flush()
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            undo.callback(os.close, null)
            saved = os.dup(1)
            undo.callback(os.close, saved)
        except OSError:  # no stdout (a service without one), or no /dev/null: nothing to hide
            return _options_set(highspy.Highs())
        undo.callback(os.dup2, saved, 1)  # callbacks run last first: restore, then close
        undo.callback(_flush_c_stdio)
        os.dup2(null, 1)
        return _options_set(highspy.Highs())


def _options_set(h: highspy.Highs) -> highspy.Highs:
    h.setOptionValue("output_flag", False)
    return h


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (HiGHS writes through them; a pipe buffers until exit)."""
    with contextlib.suppress(OSError, AttributeError):  # no C library to ask: nothing buffered
        ctypes.CDLL(None).fflush(None)


class HighsModel:
    """min cost·x s.t. row_lo <= A x <= row_hi, lb <= x <= ub, with HiGHS through highspy.

    highspy directly, not scipy's wrapper: the model goes in as arrays, and a year of replay
    (about ten thousand plans) spends its time solving rather than converting. Bounds can be
    changed and the model solved again from the last basis (the run-up relaxation). The
    thread's one solver (``_highs``): a new HighsModel in the thread ends the last one."""

    def __init__(self, cost: np.ndarray, a: _Csc, row_lo: np.ndarray, row_hi: np.ndarray,
                 lb: np.ndarray, ub: np.ndarray, time_limit_s: float) -> None:
        h = _highs()
        # HiGHS holds its time limit against the run time the object has summed over all its
        # runs: from here, this model's runs (its relaxed re-solves too) get the limit, as a
        # fresh Highs would give them
        h.setOptionValue("time_limit", h.getRunTime() + float(time_limit_s))
        # presolve costs more than it saves on these small, well-scaled LPs (measured: 2.5 ms vs
        # 4.1 ms for 10 jobs on the 66-slot grid, same optimum)
        h.setOptionValue("presolve", "off")
        # the arrays straight into HiGHS: filling a HighsLp field by field took 0.6 ms a model,
        # this 0.1 ms (a 10-job, 192-slot model); replay builds one every few minutes of its year
        n_col = int(cost.shape[0])
        status = h.passModel(
            n_col, a.n_rows, int(a.indices.shape[0]), int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize), 0.0,
            np.asarray(cost, dtype=float), np.asarray(lb, dtype=float), np.asarray(ub, dtype=float),
            np.asarray(row_lo, dtype=float), np.asarray(row_hi, dtype=float),
            a.indptr, a.indices, a.data,
            np.zeros(n_col, dtype=np.int32))  # integrality: every column continuous
        if status == highspy.HighsStatus.kError:
            raise LPFailed(f"HiGHS: the model was refused ({status})")
        self._h = h

    def solve(self) -> np.ndarray:
        h = self._h
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise LPFailed(f"HiGHS: {h.modelStatusToString(status)}")
        return np.asarray(h.getSolution().col_value, dtype=float)

    def set_col_bounds(self, idx: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        i = np.asarray(idx, dtype=np.int32)
        self._h.changeColsBounds(len(i), i, np.asarray(lower, dtype=float), np.asarray(upper, dtype=float))

    def set_row_bounds(self, idx: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        i = np.asarray(idx, dtype=np.int32)
        # in highspy since 1.7, missing from its type stubs
        self._h.changeRowsBounds(  # type: ignore[attr-defined]
            len(i), i, np.asarray(lower, dtype=float), np.asarray(upper, dtype=float))


def solve_lp(problem: PlanningProblem, time_limit_s: float) -> Solution:
    pc = problem.config.planner
    bat = problem.battery
    T = problem.horizon.n
    dt = problem.dt_h
    kwh = 1.0  # per-kWh costs applied per Wh: a factor 1000 keeps them above solver tolerances

    jobs = problem.jobs
    blocks = _column_blocks(problem)
    sizes = [len(blk.slots) for blk in blocks]
    x_off = list(accumulate(sizes, initial=0))
    n_x = x_off[-1]
    deferrable = [
        i for i, j in enumerate(jobs) if j.kind is JobKind.DEFERRABLE and j.remaining_wh is not None
    ]
    n_def = len(deferrable)
    base = 5 * T
    m_base = base + n_x
    deep = m_base + n_def  # how far admitted work deepens the essentials' dip (Wh)
    n_var = deep + 1
    dips = np.flatnonzero(~np.isnan(problem.dip_wh))
    C, D, U, S, E = (k * T for k in range(5))
    # the power columns, one per block and slot where it may draw, block by block
    slot_of = np.concatenate([blk.slots for blk in blocks]) if n_x else np.zeros(0, dtype=np.int64)
    firsts = [jobs[blk.members[0]] for blk in blocks]
    sponge_x = np.repeat(np.array([blk.sponge for blk in blocks], dtype=bool), sizes)
    dt_x = dt[slot_of]

    # ---- objective
    cost = np.zeros(n_var)
    cost[D : D + T] = pc.battery_cycle_cost_per_kwh * dt * kwh
    cost[U : U + T] = pc.curtailment_penalty_per_kwh * dt * kwh
    cost[E : E + T] = pc.shed_penalty_per_kwh * dt * kwh
    cost[S : S + T] = -pc.soc_hold_value_per_kwh_h * dt * kwh
    cost[S + T - 1] -= pc.stored_value_per_kwh * kwh
    mid_h = (problem.horizon.bounds_s[:-1] + problem.horizon.bounds_s[1:]) / 7200.0
    sunny = problem.pv_w / max(float(problem.pv_w.max()), 1.0)
    own_pen = {
        i: pc.miss_penalty_per_kwh * (1.0 + jobs[i].value) * _few_misses(jobs[i].remaining_wh)
        * _completion(jobs[i])
        for i in deferrable
    }
    # accepted work that cannot finish even at full power: its energy is worth no more than sun
    # that would be curtailed (a sponge or the battery gets it first). The job under admission
    # keeps its cost: the solve then says how much the box could give it.
    hopeless = {i for i in deferrable if (jobs[i].best_effort or not jobs[i].candidate)
                and _hopeless(jobs[i], dt)}
    floor_pen = min((p for i, p in own_pen.items() if not jobs[i].candidate),
                    default=pc.miss_penalty_per_kwh)
    cost[deep] = pc.deepen_penalty_per_kwh * kwh
    # per kWh: the heat, plus the sponges' value, or minus the lean to early slots (best-effort
    # work leans early only within its tier, see _best_effort_penalties); all blocks at once
    heat_x = problem.heat_value[slot_of]
    soak_x = np.repeat([pc.sponge_value_per_kwh * job.value for job in firsts], sizes)
    lean_x = np.repeat([EARLY_PER_KWH_H * (BEST_EFFORT_EARLY_SHARE if job.best_effort else 1.0)
                        for job in firsts], sizes)
    per_kwh = np.where(sponge_x, heat_x + soak_x, heat_x - lean_x * mid_h[slot_of])
    per_kwh += SUNNY_PER_KWH * sunny[slot_of]
    cost[base:m_base] = -per_kwh * dt_x * kwh
    be_pen = _best_effort_penalties(problem, {i: own_pen[i] for i in deferrable if jobs[i].best_effort})
    for k, i in enumerate(deferrable):
        pen = own_pen[i]
        if jobs[i].best_effort:
            pen = be_pen[i]
        elif jobs[i].candidate:  # missed before any admitted job
            pen = min(pen * CANDIDATE_TIER, floor_pen * CANDIDATE_TIER)
        if i in hopeless:
            pen = HOPELESS_PER_KWH
        cost[m_base + k] = pen * kwh

    # ---- bounds
    remaining = np.array([jobs[i].remaining_wh for i in deferrable], dtype=float)
    lb = np.zeros(n_var)
    ub = np.empty(n_var)
    ub[C : C + T] = bat.charge_max_w
    ub[D : D + T] = bat.discharge_max_w
    ub[U : U + T] = problem.pv_w
    lb[S : S + T] = problem.floor_wh
    ub[S : S + T] = np.maximum(bat.max_wh, problem.floor_wh)
    ub[E : E + T] = problem.essential_w
    if n_x:
        ub[base:m_base] = np.concatenate([blk.max_w for blk in blocks])
    ub[m_base:deep] = remaining
    ub[deep] = bat.capacity_wh

    # ---- constraints, straight into compressed columns (see _ColumnTable)
    r_dip = 4 * T + n_def
    r_run = r_dip + len(dips)  # one per slot, free until its run-up is relaxed
    r_sponge = r_run + T  # sponge blocks: no more energy than their sponges have left
    sized = [b for b, blk in enumerate(blocks) if blk.sponge and np.isfinite(blk.energy_wh)]
    n_rows = r_sponge + len(sized)
    t_idx = np.arange(T)
    row_of_def = {i: 4 * T + k for k, i in enumerate(deferrable)}
    row_of_sized = {b: r_sponge + r for r, b in enumerate(sized)}
    deadline_x = np.repeat(np.array([row_of_def.get(blk.members[0], -1) for blk in blocks], dtype=np.int64),
                           sizes)
    sized_x = np.repeat(np.array([row_of_sized.get(b, -1) for b in range(len(blocks))], dtype=np.int64), sizes)
    dip_row = np.full(T, -1)
    dip_row[dips] = r_dip + np.arange(len(dips))
    # balance rows 0..T-1, battery rows T..2T-1, node rows 2T..3T-1, sponge rows 3T..4T-1,
    # deadline rows 4T.., dip rows r_dip.., run-up rows r_run.., sponge energy rows r_sponge..
    # (in that order, so each column lists its rows increasing)
    cols = _ColumnTable(deep, 5)  # every column but the last (deepening): up to 5 entries
    # the column ranges of charge, discharge, curtailment, SoC, unserved load, power, missed energy
    in_c, in_d, in_u, in_s, in_e = (slice(k, k + T) for k in (C, D, U, S, E))
    in_x, in_m = slice(base, m_base), slice(m_base, deep)
    cols.put(in_c, 0, t_idx, -1.0)
    cols.put(in_c, 1, T + t_idx, -bat.eta_charge * dt)
    cols.put(in_d, 0, t_idx, 1.0)
    cols.put(in_d, 1, T + t_idx, dt / bat.eta_discharge)
    cols.put(in_u, 0, t_idx, -1.0)
    cols.put(in_s, 0, T + t_idx, 1.0)
    cols.put(in_s, 1, T + t_idx + 1, -1.0, t_idx < T - 1)
    cols.put(in_s, 2, dip_row, 1.0, dip_row >= 0)
    cols.put(in_s, 3, r_run + t_idx, 1.0)
    cols.put(in_e, 0, t_idx, 1.0)
    cols.put(in_x, 0, slot_of, -1.0)
    cols.put(in_x, 1, 2 * T + slot_of, 1.0)
    cols.put(in_x, 2, 3 * T + slot_of, 1.0, sponge_x)
    cols.put(in_x, 3, deadline_x, dt_x, deadline_x >= 0)
    cols.put(in_x, 4, sized_x, dt_x, sized_x >= 0)
    cols.put(in_m, 0, 4 * T + np.arange(n_def), 1.0)
    matrix = cols.compressed(n_rows, last_rows=np.arange(r_dip, r_run + T))
    rhs = problem.essential_w - problem.pv_w
    c_lo = np.empty(n_rows)
    c_hi = np.empty(n_rows)
    c_lo[:T] = rhs
    c_hi[:T] = rhs
    c_lo[T : 2 * T] = 0.0
    c_hi[T : 2 * T] = 0.0
    c_lo[T] = c_hi[T] = problem.soc0_wh
    c_lo[2 * T : 3 * T] = 0.0
    c_hi[2 * T : 3 * T] = problem.node_w
    c_lo[3 * T : 4 * T] = 0.0
    # sponges soak sun; where the room wants heat they may also run on the battery (the heat
    # value in the objective decides how much, the reserve floor how far)
    heat_allow = np.where(problem.heat_value > 0.0, problem.node_w, 0.0)
    c_hi[3 * T : 4 * T] = np.maximum(problem.pv_w - problem.essential_w, 0.0) + heat_allow
    c_lo[4 * T : r_dip] = remaining
    c_hi[4 * T : r_dip] = remaining
    c_lo[r_dip:r_run] = problem.dip_wh[dips]
    c_hi[r_dip:] = np.inf
    c_lo[r_run:] = -np.inf
    c_lo[r_sponge:] = 0.0
    c_hi[r_sponge:] = [blocks[b].energy_wh for b in sized]

    model = HighsModel(cost, matrix, c_lo, c_hi, lb, ub, time_limit_s)
    x = model.solve()
    promised = [k for k, i in enumerate(deferrable) if not jobs[i].best_effort]
    relaxable: np.ndarray | None = None  # worked out once needed: most plans keep every promise
    for _ in range(RELAX_ROUNDS):
        if not any(x[m_base + k] > pc.admission_tolerance_wh for k in promised):
            break
        if relaxable is None:
            above = np.isnan(problem.dip_wh)
            relaxable = above & (problem.floor_wh > problem.idle_floor_wh)
            keep_wh = float(np.max(problem.floor_wh[above])) if above.any() else bat.max_wh
            deepest = keep_wh - float(np.min(problem.idle_floor_wh))
        work = np.bincount(slot_of, weights=np.maximum(x[base:m_base], 0.0), minlength=T)
        soc = x[S : S + T]
        binding = soc <= problem.floor_wh + 1.0
        runup = _runup(work <= IDLE_W, relaxable, binding, soc, bat.max_wh, keep_wh + deepest)
        if not runup.any():
            break
        relaxable &= ~runup
        slots_r = np.flatnonzero(runup)
        model.set_col_bounds(S + slots_r, problem.idle_floor_wh[slots_r], ub[S + slots_r])
        model.set_row_bounds(r_run + slots_r, lb[S + slots_r], np.full(len(slots_r), np.inf))
        # no work in a relaxed slot, nor in the slot after it (it may start under the reserve)
        closed = runup | np.concatenate(([False], runup[:-1]))
        shut = base + np.flatnonzero(closed[slot_of])
        if len(shut):
            model.set_col_bounds(shut, lb[shut], np.zeros(len(shut)))
        x = model.solve()
    job_w: dict[str, np.ndarray] = {}
    for b, blk in enumerate(blocks):
        arr = np.zeros(T)
        arr[blk.slots] = np.maximum(x[base + x_off[b] : base + x_off[b + 1]], 0.0)
        if blk.sponge:
            job_w.update(_share_out(arr, [jobs[i] for i in blk.members], dt))
        else:
            job_w[jobs[blk.members[0]].id] = arr
    miss = {jobs[i].id: max(0.0, float(x[m_base + k])) for k, i in enumerate(deferrable)}
    return Solution(
        solver="milp",
        status="optimal",
        soc_wh=x[S : S + T].copy(),
        charge_w=np.maximum(x[C : C + T], 0.0),
        discharge_w=np.maximum(x[D : D + T], 0.0),
        curtail_w=np.maximum(x[U : U + T], 0.0),
        shed_w=np.maximum(x[E : E + T], 0.0),
        job_w=job_w,
        miss_wh=miss,
    )


@dataclass(frozen=True)
class _Csc:
    """A constraint matrix in compressed columns, as HiGHS takes it (rows sorted per column)."""

    n_rows: int
    indptr: np.ndarray  # int32, one more than columns
    indices: np.ndarray  # int32 row of each entry
    data: np.ndarray  # float64


class _ColumnTable:
    """The constraint matrix column by column: column c's k-th entry is at row ``rows[c, k]``
    with value ``vals[c, k]`` where ``present[c, k]``; rows increase along k. Filled so, the
    compressed columns HiGHS takes come out in order without a COO sort (triplets converted
    through scipy cost more than the rest of the model)."""

    def __init__(self, n_cols: int, width: int) -> None:
        self.rows = np.empty((n_cols, width), dtype=np.int64)
        self.vals = np.empty((n_cols, width))
        self.present = np.zeros((n_cols, width), dtype=bool)

    def put(self, cols: slice, k: int, rows: np.ndarray, vals: np.ndarray | float,
            where: np.ndarray | bool = True) -> None:
        """Entry k of the columns ``cols``: its rows, values (or one for all) and presence."""
        self.rows[cols, k] = rows
        self.vals[cols, k] = vals
        self.present[cols, k] = where

    def compressed(self, n_rows: int, last_rows: np.ndarray) -> _Csc:
        """The table's columns, then one more with ones at ``last_rows`` (increasing)."""
        present = self.present.ravel()  # entry by entry, column after column
        width = self.present.shape[1]
        upto = np.cumsum(present, dtype=np.int32)  # entries up to each one, at each column's end
        m, n_last = int(upto[-1]) if upto.shape[0] else 0, last_rows.shape[0]
        indptr = np.empty(self.present.shape[0] + 2, dtype=np.int32)
        indptr[0] = 0
        indptr[1:-1] = upto[width - 1 :: width]
        indptr[-1] = m + n_last
        at = np.flatnonzero(present)
        indices = np.empty(m + n_last, dtype=np.int32)
        indices[:m] = self.rows.ravel().take(at)
        indices[m:] = last_rows
        data = np.empty(m + n_last)
        data[:m] = self.vals.ravel().take(at)
        data[m:] = 1.0
        return _Csc(n_rows, indptr, indices, data)


@dataclass(frozen=True)
class _Block:
    """One block of power columns: a deferrable job, or all sponges of one value. Sponges of
    equal value are interchangeable to the LP (same price per kWh, no deadline row), so they
    share one column per slot and are shared out after the solve (``_share_out``): with a few
    dozen sponges waiting for a winter's sun, the model stays the size of a summer's."""

    members: list[int]  # indices into problem.jobs; sponges in the order they get the sun
    slots: np.ndarray  # slots where the block may draw
    max_w: np.ndarray  # its power bound in those slots
    sponge: bool = False
    energy_wh: float = np.inf  # sponges: what they have left between them


def _column_blocks(problem: PlanningProblem) -> list[_Block]:
    blocks: list[_Block] = []
    sponges: dict[float, list[int]] = {}
    for i, job in enumerate(problem.jobs):
        if job.kind is JobKind.SPONGE:
            sponges.setdefault(job.value, []).append(i)
            continue
        slots = np.flatnonzero(job.max_w > 1e-9)
        blocks.append(_Block([i], slots, job.max_w[slots]))
    for members in sponges.values():
        members.sort(key=lambda i: problem.jobs[i].fill_rank)
        total = np.minimum(sum((problem.jobs[i].max_w for i in members), np.zeros(problem.horizon.n)),
                           problem.node_w)
        slots = np.flatnonzero(total > 1e-9)
        left = [problem.jobs[i].remaining_wh for i in members]
        energy = np.inf if any(e is None for e in left) else float(sum(e for e in left if e is not None))
        blocks.append(_Block(members, slots, total[slots], sponge=True, energy_wh=energy))
    return blocks


def _share_out(total_w: np.ndarray, sponges: list[PlanJob], dt_h: np.ndarray) -> dict[str, np.ndarray]:
    """Split a block's planned power among its sponges: each in turn takes what it can (its
    power, and no more energy than it has left), so the running one keeps running and the
    oldest finishes first."""
    left = total_w.copy()
    out: dict[str, np.ndarray] = {}
    for n, job in enumerate(sponges):
        if not left.any():  # all shared out (a winter's dozens of waiting sponges): none for the rest
            none = np.zeros_like(left)
            none.flags.writeable = False  # one array for them all: read only
            out.update((rest.id, none) for rest in sponges[n:])
            break
        take = np.minimum(left, job.max_w)
        if job.remaining_wh is not None:
            done_before = np.concatenate(([0.0], np.cumsum(take * dt_h)[:-1]))
            room_wh = np.maximum(job.remaining_wh - done_before, 0.0)
            take = np.minimum(take, room_wh / dt_h)
        out[job.id] = take
        left = np.maximum(left - take, 0.0)
    return out


def _best_effort_penalties(problem: PlanningProblem, own: dict[int, float]) -> dict[int, float]:
    """Missed-kWh cost of work accepted without a promise.

    Under the job being decided (a promise may take its sun), above what a kWh kept in the
    battery or soaked by a sponge is worth (a user's job with a deadline beats both: it may run
    on battery the promised work does not need), below deepening the critical services' dip
    (unpromised work never takes their night). Among themselves, by value and nearness to done.
    For the best-effort check (``candidate_last``) they stand with the promised work instead:
    the job under admission may then use only what accepted work leaves."""
    if not own:
        return {}
    if problem.candidate_last:
        return dict(own)
    pc = problem.config.planner
    kept = (pc.stored_value_per_kwh + pc.battery_cycle_cost_per_kwh) / problem.battery.eta_discharge
    soaked = pc.sponge_value_per_kwh * max(
        (j.value for j in problem.jobs if j.kind is JobKind.SPONGE), default=0.0)
    late = EARLY_PER_KWH_H * BEST_EFFORT_EARLY_SHARE * float(problem.horizon.bounds_s[-1]) / 3600.0
    lo = max(kept, soaked) + late + BEST_EFFORT_FLOOR
    hi = max(pc.deepen_penalty_per_kwh, lo)
    top = max(own.values())
    return {i: lo + (hi - lo) * 0.9 * p / top for i, p in own.items()}


def _few_misses(remaining_wh: float | None) -> float:
    return 1.0 + FEW_MISSES_WH / max(remaining_wh or 0.0, 50.0)


def _hopeless(job: PlanJob, dt_h: np.ndarray) -> bool:
    """More energy left than the job can draw before its deadline at full power (a deadline
    beyond the horizon is never hopeless: the time after the horizon counts too)."""
    if job.frac.size == 0 or job.frac[-1] >= 1.0:
        return False
    return (job.remaining_wh or 0.0) > float((job.power_w * job.frac * dt_h).sum()) + HOPELESS_TOL_WH


def _completion(job: PlanJob) -> float:
    """What a kWh of the job's remaining work brings: only a finished job's energy counts, so a
    job with a tenth left turns each kWh into ten (capped at ``COMPLETION_MAX``)."""
    left = job.remaining_wh or 0.0
    whole = job.energy_wh if job.energy_wh is not None else left
    return min(COMPLETION_MAX, max(1.0, whole / max(left, 1e-9)))


def _runup(idle: np.ndarray, relaxable: np.ndarray, binding: np.ndarray, soc_wh: np.ndarray,
           full_wh: float, climb_below_wh: float) -> np.ndarray:
    """The idle slots whose reserve floor keeps promised work from being done: idle slots where
    the floor binds, and around each of them and each dip (or slot already relaxed) the evening
    descent before it (walking back while the SoC falls towards it) and the morning climb after
    it (walking on while the SoC rises but is still under ``climb_below_wh``: the reserve plus
    the deepest a dip may be made). A full battery ends either walk: there work runs on sun."""
    n = idle.shape[0]
    out = idle & relaxable & binding
    anchor = ~relaxable | out
    t = 0
    while t < n:
        if not anchor[t]:
            t += 1
            continue
        a = t
        while t < n and anchor[t]:
            t += 1
        b = t - 1  # [a, b]: a run of anchors
        k = a - 1
        while (k >= 0 and relaxable[k] and idle[k] and soc_wh[k] < full_wh - 1.0
               and soc_wh[k] >= soc_wh[k + 1] - 1e-6):
            out[k] = True
            k -= 1
        k = b + 1
        while (k < n and relaxable[k] and idle[k] and soc_wh[k] < climb_below_wh
               and soc_wh[k] >= soc_wh[k - 1] - 1e-6):
            out[k] = True
            k += 1
        t = max(t, k)
    return out
