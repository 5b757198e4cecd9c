"""One control cycle: safety, then the plan's job targets, then heat — on one frozen snapshot.

Pure and synchronous: the daemon calls it between its I/O (poll before, actuate after) and the
replay calls it between plant steps, so both run exactly the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from appliance.config import SunboxConfig
from appliance.control.safety import RESERVE_LOOKAHEAD_S, SafetyMemory, SafetyVerdict, evaluate
from appliance.energy import ControlView, ShedRules, ThresholdGate
from appliance.energy.shedding import ACTIVE
from appliance.heat.router import HeatDecision, HeatRouter
from appliance.state import Channel, Job, JobAction, JobCommand, JobKind, JobState, Mode, Plan, SiteState

Policy = Literal["sunbox", "perfect", "threshold"]


@dataclass(frozen=True)
class CycleOutcome:
    verdict: SafetyVerdict
    commands: list[JobCommand]
    heat: HeatDecision | None


def hold_commands(jobs: Sequence[Job], verdict: SafetyVerdict) -> list[JobCommand]:
    """SAFE and SHED: non-critical work stops; critical services stay on unless the battery is
    about to be cut off by the BMS (then they stop gracefully, before power is lost)."""
    out: list[JobCommand] = []
    for job in jobs:
        if job.state not in ACTIVE:
            continue
        running = job.state is JobState.RUNNING
        if job.kind is JobKind.CRITICAL:
            if verdict.critical_allowed and not running:
                action: JobAction = "start" if job.started_at is None else "resume"
                out.append(JobCommand(job.id, action, f"critical service: always on ({verdict.mode} mode)"))
            elif not verdict.critical_allowed and running:
                out.append(JobCommand(job.id, "suspend", f"battery near cut-off (SoC {verdict.soc_pct:.1f} %): "
                                      "critical service paused before the BMS disconnects"))
        elif running:
            out.append(JobCommand(job.id, "suspend", f"{verdict.mode} mode: {verdict.reason}"))
    return out


LEARN_BELOW_FULL_PCT = 5.0  # above this, LiFePO4 charging tapers: the MPPT may be holding back
LEARN_CHARGE_HEADROOM = 0.9  # the battery must be taking less than 90 % of what it could


def pv_for_learning(state: SiteState, config: SunboxConfig) -> tuple[float | None, bool]:
    """Measured PV for the forecaster, and whether it may be curtailed (a lower bound only).

    An MPPT reports what it delivers, not what the sun offers: when the battery is nearly full
    or charging at its limit, the surplus is curtailed and the measurement understates the sky.
    Learning from those hours as if they were the sky would teach the forecaster that sunny days
    are dull; it would then admit less work, curtail more, and learn worse still. So they are
    marked censored, and the forecaster learns from them only what a lower bound can say.
    """
    return learning_sample(state.fresh(Channel.SOC_PCT.value), state.fresh(Channel.PV_POWER_W.value),
                           state.fresh(Channel.BATTERY_POWER_W.value),
                           state.fresh(Channel.BATTERY_CHARGE_MAX_W.value), config)


def learning_sample(soc: float | None, pv: float | None, battery_w: float | None,
                    charge_max_w: float | None, config: SunboxConfig) -> tuple[float | None, bool]:
    """``pv_for_learning`` on plain readings (the replay has them without a snapshot)."""
    if soc is None or pv is None:
        return None, False
    if pv <= 1.0:
        return pv, False
    limit = charge_max_w or config.battery.charge_max_w
    near_full = soc >= config.battery.soc_max_pct - LEARN_BELOW_FULL_PCT
    at_limit = battery_w is None or battery_w >= LEARN_CHARGE_HEADROOM * limit
    return pv, near_full or at_limit


class ControlCycle:
    """Holds the controllers' memories (mode, latches, minimum on/off, damper hysteresis)."""

    def __init__(self, config: SunboxConfig, policy: Policy = "sunbox", heat_routing: bool = True,
                 period_s: float | None = None) -> None:
        """``period_s``: time until the next cycle can act (the daemon's control period; the
        replay's step)."""
        self.config = config
        self.policy = policy
        self.period_s = config.control.period_s if period_s is None else period_s
        self.safety = SafetyMemory()
        self.rules = ShedRules(config)
        self.gate = ThresholdGate(config) if policy == "threshold" else None
        self.heat_router = (
            HeatRouter.from_config(config.heat, config.site.tz)
            if config.heat.enabled and heat_routing else None
        )

    def step(self, state: SiteState, jobs: Sequence[Job], plan: Plan | None,
             compute_power_w: float, outdoor_c: float | None) -> CycleOutcome:
        verdict = evaluate(state, self.safety, self.config)
        soc = verdict.soc_pct
        if verdict.mode is Mode.SAFE or soc is None:
            commands = hold_commands(jobs, verdict)
        elif self.gate is not None:
            # the naive baseline: its own SoC thresholds; only fail-closed safety overrides it
            commands = self.gate.decide(self._view(state, soc), jobs)
        elif verdict.mode is Mode.SHED:
            commands = hold_commands(jobs, verdict)
        else:
            commands = self.rules.decide(self._view(state, soc), jobs, plan)
            commands = self._reserve_guard(state, soc, jobs, commands)
        heat = None
        if self.heat_router is not None:
            heat = self.heat_router.decide(state.at, state.reading(Channel.ROOM_TEMP_C.value), outdoor_c,
                                           compute_power_w)
        return CycleOutcome(verdict=verdict, commands=commands, heat=heat)

    def _reserve_guard(self, state: SiteState, soc: float, jobs: Sequence[Job],
                       commands: list[JobCommand]) -> list[JobCommand]:
        """Safety narrows what the plan asked for: if the battery, with the work these commands
        leave running, would reach the reserve within the lookahead, non-critical work does not
        start and what runs is suspended (the safety layer's lookahead sees only the present
        discharge).

        The discharge ahead is the measured one, corrected by what the commands change (starts,
        resumes, caps up or down, suspends). Until the next cycle can act, the sun now on the
        panels may also go (a cloud edge takes it within seconds): that loss counts for one
        control period, which live is seconds and in a 5-min replay step is the whole step."""
        bat = self.config.battery
        battery_w = state.fresh(Channel.BATTERY_POWER_W.value)
        if battery_w is None:
            return commands
        by_id = {j.id: j for j in jobs}
        now_w, after_w = _noncritical_w(by_id, commands)
        extra_w = after_w - now_w
        pv_w = max(state.fresh(Channel.PV_POWER_W.value) or 0.0, 0.0)
        drain_w = -(battery_w - extra_w)
        sun_gone_s = min(self.period_s, RESERVE_LOOKAHEAD_S)
        drain_wh = (max(drain_w + pv_w, 0.0) * sun_gone_s
                    + max(drain_w, 0.0) * (RESERVE_LOOKAHEAD_S - sun_gone_s)) / 3600.0
        if drain_wh <= 0:
            return commands
        soc_after = soc - drain_wh / bat.one_way_efficiency / bat.capacity_wh * 100.0
        if soc_after > bat.reserve_pct:
            return commands
        why = (f"SoC {soc:.1f} % with this work would reach the reserve {bat.reserve_pct:g} % within "
               f"{RESERVE_LOOKAHEAD_S / 60:.0f} min: non-critical work waits")
        guarded = [c for c in commands
                   if by_id.get(c.job_id) is None or by_id[c.job_id].kind is JobKind.CRITICAL
                   or c.action in ("suspend", "stop")]
        stopping = {c.job_id for c in guarded if c.action in ("suspend", "stop")}
        for job in jobs:
            if job.kind is not JobKind.CRITICAL and job.state is JobState.RUNNING and job.id not in stopping:
                guarded.append(JobCommand(job.id, "suspend", why))
        return guarded

    @staticmethod
    def _view(state: SiteState, soc: float) -> ControlView:
        return ControlView(now=state.at, soc_pct=soc, pv_w=state.fresh(Channel.PV_POWER_W.value),
                           battery_power_w=state.fresh(Channel.BATTERY_POWER_W.value))


def _noncritical_w(by_id: dict[str, Job], commands: Sequence[JobCommand]) -> tuple[float, float]:
    """Non-critical power now, and once ``commands`` are applied (the runner's rules, in order)."""
    power = {j.id: (j.cap_w if j.cap_w is not None else j.power_w) for j in by_id.values()
             if j.kind is not JobKind.CRITICAL and j.state is JobState.RUNNING}
    now_w = sum(power.values())
    for cmd in commands:
        job = by_id.get(cmd.job_id)
        if job is None or job.kind is JobKind.CRITICAL:
            continue
        if cmd.action in ("suspend", "stop"):
            power.pop(job.id, None)
        elif cmd.action in ("start", "resume", "cap"):
            power[job.id] = cmd.cap_w if cmd.cap_w is not None else job.power_w
    return now_w, sum(power.values())
