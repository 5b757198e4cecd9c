"""The naive baseline replay compares against: a SoC threshold gate, no forecast.

Run every admitted job while SoC > ``on_above_pct`` (50 %); at the reserve stop all but
critical services; resume above ``on_above_pct`` again. Critical services pause only when the
battery is empty. It shows what the forecast and the plan are worth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from appliance.config import SunboxConfig
from appliance.energy.problem import node_range_w
from appliance.energy.shedding import ACTIVE, ControlView, slack_s
from appliance.state import Job, JobAction, JobCommand, JobKind, JobState


@dataclass
class ThresholdGate:
    config: SunboxConfig
    on_above_pct: float = 50.0
    running: bool = False
    battery_empty: bool = False

    def decide(self, view: ControlView, jobs: Sequence[Job]) -> list[JobCommand]:
        bat = self.config.battery
        soc = view.soc_pct
        if soc > self.on_above_pct:
            self.running = True
        elif soc <= bat.reserve_pct:
            self.running = False
        if soc <= bat.soc_min_pct:
            self.battery_empty = True
        elif soc > bat.soc_min_pct + self.config.planner.resume_margin_pct:
            self.battery_empty = False
        active = [j for j in jobs if j.state in ACTIVE]
        room = node_range_w(self.config)
        want: dict[str, tuple[bool, str]] = {}
        order = sorted(
            active,
            key=lambda j: (
                {JobKind.CRITICAL: 0, JobKind.DEFERRABLE: 1, JobKind.SPONGE: 2}[j.kind],
                slack_s(j, view.now),
                j.id,
            ),
        )
        for job in order:
            if job.kind is JobKind.CRITICAL:
                on = not self.battery_empty
                want[job.id] = (on, "threshold: critical on" if on else "threshold: battery empty")
            elif not self.running:
                want[job.id] = (
                    False,
                    f"threshold: SoC {soc:.0f} %, waiting for > {self.on_above_pct:.0f} %",
                )
            elif job.power_w <= room + 1e-6:
                want[job.id] = (
                    True,
                    f"threshold: SoC {soc:.0f} % > {self.on_above_pct:.0f} % or not yet at reserve",
                )
            else:
                want[job.id] = (False, "threshold: node busy")
            if want[job.id][0]:
                room -= job.power_w
        cmds: list[JobCommand] = []
        for job in active:
            on, why = want[job.id]
            if on and job.state is not JobState.RUNNING:
                action: JobAction = (
                    "start"
                    if job.state is JobState.ADMITTED and job.started_at is None
                    else "resume"
                )
                cmds.append(JobCommand(job.id, action, why))
            elif not on and job.state is JobState.RUNNING:
                cmds.append(JobCommand(job.id, "suspend", why))
        return cmds
