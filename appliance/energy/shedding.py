"""Ranking and shedding rules the control cycle applies every few seconds (pure, clocked).

The cycle hands over a frozen view (SoC, PV, battery power), the jobs and the current plan;
``ShedRules.decide`` returns JobCommands, each with its reason. Order of authority, as in
OpenEMS: safety first (reserve, empty battery), then the plan's per-slot targets, then
corrections for deviations (less sun: cap, then suspend, sponges first, then the deferrable
job with the most slack; more sun than the battery can take: work with a deadline first, least
slack first, then sponges, then work that cannot finish even at full power). Hysteresis on the
reserve and on the full battery, and minimum on/off times, keep relays and jobs from flapping
(the most common complaint of evcc's users); safety overrides the minimum times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from appliance.config import SunboxConfig
from appliance.energy.problem import node_range_w
from appliance.state import Job, JobAction, JobCommand, JobKind, JobState, Plan

ACTIVE = (JobState.ADMITTED, JobState.RUNNING, JobState.SUSPENDED)
MIN_PLANNED_W = 5.0
MIN_CAP_SHARE = 0.3  # below this share of its power a job is suspended rather than capped
FULL_MARGIN_PCT = 2.0
# Once full, the battery counts as full until SoC falls this much further (or the sun is gone):
# the work a full battery lets run draws it down a little, and without this band it would be
# suspended and resumed every few minutes, all afternoon (seen in the Lyngby replay year).
FULL_RELEASE_PCT = 3.0
NO_SUN_W = 50.0
DISCHARGING_W = -50.0  # battery power under this: the battery is feeding loads, not full
URGENT_SLACK_S = 3600.0  # deferrable jobs this close to needing all remaining time are not shed
SPARE_TURN_PCT = 0.05  # per plan slot: the SoC path falls (night) or rises (sun) by more
_KIND_RANK = {JobKind.CRITICAL: 0, JobKind.DEFERRABLE: 1, JobKind.SPONGE: 2}  # shed last first


@dataclass(frozen=True)
class ControlView:
    """What the rules read from the site snapshot."""

    now: datetime
    soc_pct: float
    pv_w: float | None = None  # PV power available now (measured)
    battery_power_w: float | None = None  # positive = charging


@dataclass(frozen=True)
class _Want:
    on: bool
    cap_w: float | None
    reason: str
    forced: bool = False  # safety: ignores minimum on/off times


_ALWAYS_ON = _Want(True, None, "critical service: always on")
_WAITING = _Want(False, None, "plan: waiting for its slot")
_NO_DEADLINE = float("inf")


def slack_s(job: Job, now: datetime) -> float:
    """Seconds a deferrable job can still wait and make its deadline at full power."""
    if job.deadline is None or job.remaining_wh is None:
        return float("inf")
    need_s = job.remaining_wh / max(job.power_w, 1e-9) * 3600.0
    return (job.deadline - now).total_seconds() - need_s


@dataclass
class ShedRules:
    config: SunboxConfig
    below_reserve: bool = False
    battery_empty: bool = False
    battery_full: bool = False  # latched: see FULL_RELEASE_PCT
    battery_topped: bool = False  # full right now (not latched): sponges soak only this
    last_switch: dict[str, datetime] = field(default_factory=dict)
    # the plan's power per job in the slot of now, read once per plan and slot (the cycle runs
    # several times a slot, each time for every job): (plan, slot, job id -> W)
    _planned_now: tuple[Plan | None, int | None, dict[str, float]] = field(
        default_factory=lambda: (None, None, {}), init=False, repr=False)

    def decide(self, view: ControlView, jobs: Sequence[Job], plan: Plan | None) -> list[JobCommand]:
        active = [j for j in jobs if j.state in ACTIVE]
        self._update_latches(view.soc_pct)
        self._update_full(view)
        k = plan.slot_index(view.now) if plan is not None else None
        now = view.now
        # read many times below; only deferrable work has slack (dozens of waiting sponges in a
        # northern winter are asked every cycle)
        slack = {j.id: slack_s(j, now) if j.kind is JobKind.DEFERRABLE else _NO_DEADLINE for j in active}
        held = self._held_off(view) if self.below_reserve else None
        wants = {j.id: held if held is not None and j.kind is not JobKind.CRITICAL
                 else self._target(view, j, plan, k, slack[j.id]) for j in active}
        if plan is not None and not self.below_reserve:
            self._correct_deviation(view, active, plan, wants, k, slack)
        self._fit_node(view, active, wants, slack)
        return self._commands(view, active, wants)

    # ------------------------------------------------------------------ rules
    def _update_latches(self, soc: float) -> None:
        bat, margin = self.config.battery, self.config.planner.resume_margin_pct
        if soc <= bat.reserve_pct:
            self.below_reserve = True
        elif soc >= bat.reserve_pct + margin:
            self.below_reserve = False
        if soc <= bat.soc_min_pct:
            self.battery_empty = True
        elif soc >= bat.soc_min_pct + margin:
            self.battery_empty = False

    def _held_off(self, view: ControlView) -> _Want:
        """Under the reserve (latched): what every non-critical job is told, forced."""
        bat, soc = self.config.battery, view.soc_pct
        if soc <= bat.reserve_pct:
            why = (
                f"battery at reserve ({soc:.0f} % ≤ {bat.reserve_pct:.0f} %): "
                "only critical services run"
            )
        else:
            resume = bat.reserve_pct + self.config.planner.resume_margin_pct
            why = f"battery recovering ({soc:.0f} %): work resumes at {resume:.0f} %"
        return _Want(False, None, why, True)

    def _target(self, view: ControlView, job: Job, plan: Plan | None, k: int | None, slack: float) -> _Want:
        """What the plan wants of the job now; under the reserve ``decide`` holds every
        non-critical job off itself (``_held_off``) and asks this for critical services only."""
        if job.kind is JobKind.CRITICAL:
            if self.battery_empty:
                bat = self.config.battery
                return _Want(
                    False, None, f"battery empty ({view.soc_pct:.0f} % ≤ {bat.soc_min_pct:.0f} %)", True
                )
            return _ALWAYS_ON
        planned = self._planned_w(plan, job.id, k)
        if planned is None:
            if job.kind is JobKind.SPONGE and self.battery_topped:
                return _Want(True, None, "battery full: soaking sun that would be lost")
            on = job.state is JobState.RUNNING
            return _Want(on, job.cap_w, "no plan for this job yet: unchanged")
        step_s = plan.step_s if plan is not None else 900
        # (a property, summed: not asked of the sponges waiting for sun)
        left = job.remaining_wh if planned > 0.5 or job.kind is JobKind.DEFERRABLE else None
        if planned > 0.5 and left is not None and left <= job.power_w * step_s / 3600.0:
            return _Want(True, None, "plan: finishing now")  # the last sliver at full power
        if (
            job.kind is JobKind.DEFERRABLE
            and not job.best_effort
            and job.started_at is not None
            and 0.0 <= slack <= step_s  # (under 0 it cannot finish: nothing to force)
            and (plan is None or job.id not in plan.at_risk or self._spare(plan, k, left))
        ):
            # started promised work whose deadline now needs it at full power: the plan's
            # slot-grained timing must not cost it the last minutes (the reserve still stops it;
            # best-effort work has no promise to keep and runs only where the plan puts it).
            # Where the plan expects the job to miss, only if the critical services can spare
            # what it still needs: the plan may have given up on it to keep them up all night.
            return _Want(True, None, "deadline needs it now")
        if planned < MIN_PLANNED_W:
            return _WAITING
        cap = planned if planned < 0.95 * job.power_w else None
        return _Want(True, cap, f"plan: {planned:.0f} W now")

    def _planned_w(self, plan: Plan | None, job_id: str, k: int | None) -> float | None:
        """The plan's power for the job in slot ``k`` (the slot of now); None without one."""
        if plan is None or k is None:
            return None
        held, at, table = self._planned_now
        if held is not plan or at != k:
            table = {jid: float(series[k]) for jid, series in plan.job_power_w.items()}
            self._planned_now = (plan, k, table)
        return table.get(job_id)

    def _spare(self, plan: Plan, k: int | None, need_wh: float | None) -> bool:
        """Would the plan's SoC path, lowered by ``need_wh`` drawn now, stay above the empty
        battery (+ margin) through the coming night, until the path turns up again after it
        (the sun is back: what the draw took is then being refilled)?"""
        if k is None or need_wh is None:
            return True
        bat = self.config.battery
        ahead = plan.soc_pct[k:]
        step = np.diff(ahead)
        falling = np.flatnonzero(step < -SPARE_TURN_PCT)
        if len(falling):
            rising = np.flatnonzero(step[falling[0]:] > SPARE_TURN_PCT)
            if len(rising):
                ahead = ahead[: falling[0] + rising[0] + 1]
        need_pct = need_wh / bat.one_way_efficiency / bat.capacity_wh * 100.0
        floor = bat.soc_min_pct + self.config.planner.reserve_margin_pct
        return float(ahead.min()) - need_pct >= floor

    def _battery_taking_all(self, view: ControlView) -> bool:
        limit = self.config.battery.charge_max_w
        return view.battery_power_w is not None and view.battery_power_w >= 0.9 * limit

    def _update_full(self, view: ControlView) -> None:
        """Full: near the top and not discharging (what is left of the sun would be curtailed).
        It stays full while work it started draws the battery down a little."""
        top = self.config.battery.soc_max_pct - FULL_MARGIN_PCT
        self.battery_topped = view.soc_pct >= top and (
            view.battery_power_w is None or view.battery_power_w >= DISCHARGING_W)
        if self.battery_topped:
            self.battery_full = True
        elif view.soc_pct < top - FULL_RELEASE_PCT or (view.pv_w is not None and view.pv_w < NO_SUN_W):
            self.battery_full = False

    def _correct_deviation(
        self, view: ControlView, jobs: list[Job], plan: Plan, wants: dict[str, _Want],
        k: int | None, slack: dict[str, float],
    ) -> None:
        if k is None or view.pv_w is None:
            return
        planned_pv = float(plan.pv_w[k])
        dev = view.pv_w - planned_pv
        tol = max(50.0, 0.1 * planned_pv)
        planned_soc = float(plan.soc_pct[k - 1] if k > 0 else plan.soc_pct[0])
        # a full battery covers a passing cloud: the work it started keeps running until the
        # latch lets go (without this, SoC around the plan's 100 % - 1 switched it every cycle)
        less = dev < -tol and view.soc_pct < planned_soc - 1.0 and not self.battery_full
        full = self.battery_full
        surplus = not less and dev > tol and self._battery_taking_all(view)
        if not (less or full or surplus):
            return  # the sun is as planned: nothing to rank (most cycles, and dozens of sponges)
        sponges = sorted(
            (j for j in jobs if j.kind is JobKind.SPONGE), key=lambda j: (j.value, j.id)
        )
        deferrable = sorted(  # best-effort work first, then the promised with most slack
            (j for j in jobs if j.kind is JobKind.DEFERRABLE),
            key=lambda j: (not j.best_effort, -slack[j.id], j.id),
        )
        if less:
            short = -dev
            for job in sponges + [j for j in deferrable if j.best_effort or slack[j.id] > URGENT_SLACK_S]:
                want = wants[job.id]
                if short <= 0 or not want.on:
                    continue
                power = want.cap_w if want.cap_w is not None else job.power_w
                cut = min(power, short)
                short -= cut
                if power - cut < MIN_CAP_SHARE * job.power_w:
                    wants[job.id] = _Want(
                        False, None, f"less sun than planned ({-dev:.0f} W short): suspended"
                    )
                else:
                    wants[job.id] = _Want(
                        True, power - cut, f"less sun than planned ({-dev:.0f} W short): capped"
                    )
            return
        if full or surplus:
            # sun the battery cannot take goes to work with a deadline first (least slack first:
            # what runs now is not needed later, and unpromised work has no other sun), then to
            # sponges; under a P10 plan there is usually more sun than planned, and the battery
            # takes it before either
            extra = node_range_w(self.config) if full else dev
            why = (
                "battery full: running on sun that would be lost"
                if full
                else f"more sun than planned (+{dev:.0f} W) and the battery takes all it can"
            )
            # a sponge's contract is sun that would be lost: it follows the battery's top itself,
            # not the latch (work with a deadline may draw the latch's few % for its own sake)
            soakers = list(reversed(sponges)) if self.battery_topped or not full or surplus else []
            # a job that cannot finish even at full power (negative slack) comes last: only a
            # finished job's energy counts, so what it would draw is better soaked or stored
            by_slack = sorted(deferrable, key=lambda j: (slack[j.id], j.id))
            order = ([j for j in by_slack if slack[j.id] >= 0.0] + soakers
                     + [j for j in by_slack if slack[j.id] < 0.0])
            for job in order:
                want = wants[job.id]
                power = (want.cap_w if want.cap_w is not None else job.power_w) if want.on else 0.0
                if extra <= 0 or power >= job.power_w:
                    continue
                add = min(job.power_w - power, extra)
                new = power + add
                if new >= MIN_CAP_SHARE * job.power_w:
                    extra -= add
                    wants[job.id] = _Want(True, None if new >= 0.95 * job.power_w else new, why)

    def _fit_node(self, view: ControlView, jobs: list[Job], wants: dict[str, _Want],
                  slack: dict[str, float]) -> None:
        """Node power is finite: drop jobs that cannot finish anyway, then sponges, then the
        deferrable jobs with most slack."""
        room = node_range_w(self.config)

        def power(job: Job) -> float:
            w = wants[job.id]
            return 0.0 if not w.on else (w.cap_w if w.cap_w is not None else job.power_w)

        # Critical services come first and are never held back here. While they alone fit,
        # used power never passes the node's room, so a job wanted off (power 0) is left as it
        # is: only the jobs that draw are ranked (not the dozens of sponges waiting for sun).
        critical_w = sum(power(j) for j in jobs if j.kind is JobKind.CRITICAL)
        drawing = jobs if critical_w > room else [  # (no tolerance: a margin for the sum's order)
            j for j in jobs if j.kind is JobKind.CRITICAL or wants[j.id].on]
        rank = sorted(
            drawing,
            key=lambda j: (
                _KIND_RANK[j.kind] + 0.5 * j.best_effort
                + 1.6 * (j.kind is JobKind.DEFERRABLE and slack[j.id] < 0.0),
                slack[j.id] if j.kind is JobKind.DEFERRABLE else -j.value,
                j.id,
            ),
        )
        used = 0.0
        for job in rank:
            p = power(job)
            if used + p > room + 1e-6 and job.kind is not JobKind.CRITICAL:
                left = room - used
                busy = f"node busy ({used:.0f} of {room:.0f} W in use)"
                if left >= MIN_CAP_SHARE * job.power_w:
                    wants[job.id] = _Want(True, left, busy)
                    used += left
                else:
                    wants[job.id] = _Want(False, None, busy)
                continue
            used += p

    def _commands(
        self, view: ControlView, jobs: list[Job], wants: dict[str, _Want]
    ) -> list[JobCommand]:
        pc = self.config.planner
        offs: list[JobCommand] = []
        caps: list[JobCommand] = []
        ons: list[JobCommand] = []
        for job in jobs:
            want = wants[job.id]
            running = job.state is JobState.RUNNING
            if running == want.on:  # as wanted: at most a new cap
                if running and _cap_changed(job.cap_w, want.cap_w, pc.cap_step_w):
                    caps.append(JobCommand(job.id, "cap", want.reason, cap_w=want.cap_w))
                continue
            since = self.last_switch.get(job.id)
            held_s = None if since is None else (view.now - since).total_seconds()
            if running:  # wanted off
                if not want.forced and held_s is not None and held_s < pc.min_on_s:
                    continue
                offs.append(JobCommand(job.id, "suspend", want.reason))
            else:  # wanted on
                if not want.forced and held_s is not None and held_s < pc.min_off_s:
                    continue
                action: JobAction = (
                    "start"
                    if job.state is JobState.ADMITTED and job.started_at is None
                    else "resume"
                )
                ons.append(JobCommand(job.id, action, want.reason, cap_w=want.cap_w))
            self.last_switch[job.id] = view.now
        return offs + caps + ons


def _cap_changed(old: float | None, new: float | None, step: float) -> bool:
    if old is None and new is None:
        return False
    if old is None or new is None:
        return True
    return abs(old - new) >= step
