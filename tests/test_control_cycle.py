"""The control cycle's reserve guard, on hand-made snapshots (10 kWh battery, reserve 30 %).

A 5-min lookahead at a drain of D watts costs D / 0.9747 * 5/60 / 10000 * 100 % of SoC:
300 W -> 0.256 %, 260 W -> 0.222 %, 100 W -> 0.085 %.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from appliance.control.cycle import ControlCycle
from appliance.state import Channel, Job, JobKind, JobState, Mode, Plan, Reading, SiteState
from tests.conftest import make_config

T0 = datetime(2024, 4, 2, 5, 0, tzinfo=UTC)
CONFIG = make_config(planner={"min_on_s": 0.0, "min_off_s": 0.0})


def state(soc_pct: float, battery_w: float, pv_w: float) -> SiteState:
    values = {Channel.SOC_PCT.value: soc_pct, Channel.BATTERY_POWER_W.value: battery_w,
              Channel.PV_POWER_W.value: pv_w}
    return SiteState(at=T0, readings={k: Reading(v, T0) for k, v in values.items()})


def running(job_id: str, power_w: float, cap_w: float | None = None, best_effort: bool = False,
            deadline: datetime | None = None, energy_wh: float = 400.0) -> Job:
    return Job(id=job_id, name=job_id, kind=JobKind.DEFERRABLE, power_w=power_w, energy_wh=energy_wh,
               deadline=deadline or T0 + timedelta(hours=6), state=JobState.RUNNING,
               started_at=T0 - timedelta(hours=1), cap_w=cap_w, best_effort=best_effort)


def plan(job_w: dict[str, float]) -> Plan:
    n = 8
    return Plan(created_at=T0, start=T0, step_s=900, soc_pct=np.full(n, 40.0), pv_w=np.zeros(n),
                charge_w=np.zeros(n), discharge_w=np.zeros(n), curtail_w=np.zeros(n),
                job_power_w={k: np.full(n, v) for k, v in job_w.items()})


def cycle(period_s: float = 300.0) -> ControlCycle:
    """By default a replay's cycle: the next decision comes one 5-min step later."""
    c = ControlCycle(CONFIG, heat_routing=False, period_s=period_s)
    c.safety.mode = Mode.NORMAL
    c.safety.fresh_cycles = 5
    return c


def actions(c: ControlCycle, st: SiteState, jobs: list[Job], p: Plan) -> dict[str, tuple[str, float | None]]:
    out = c.step(st, jobs, p, compute_power_w=100.0, outdoor_c=None)
    assert out.verdict.mode is Mode.NORMAL
    return {cmd.job_id: (cmd.action, cmd.cap_w) for cmd in out.commands}


def test_a_cap_raised_near_the_reserve_counts_as_new_drain() -> None:
    job = running("d", power_w=200.0, cap_w=40.0)
    p = plan({"d": 200.0})
    # measured -100 W with the job at 40 W; uncapped it drains 260 W: 30.2 -> 29.98 % in 5 min
    assert actions(cycle(), state(30.2, -100.0, 0.0), [job], p) == {"d": ("suspend", None)}
    # with room for it (30.3 -> 30.08 %) the plan's uncap goes through
    assert actions(cycle(), state(30.3, -100.0, 0.0), [job], p) == {"d": ("cap", None)}


def test_sun_on_the_panels_is_not_counted_on_this_close_to_the_reserve() -> None:
    job = running("d", power_w=200.0)
    p = plan({"d": 200.0})
    # charging +100 W on 600 W of sun; if the sun goes the drain is 500 W: 30.4 -> 29.97 %
    assert actions(cycle(), state(30.4, 100.0, 600.0), [job], p) == {"d": ("suspend", None)}
    # on 400 W of sun the worst case is 300 W: 30.4 -> 30.14 %, the job keeps running
    assert actions(cycle(), state(30.4, 100.0, 400.0), [job], p) == {}
    # far from the reserve the sun may come and go
    assert actions(cycle(), state(35.0, 100.0, 600.0), [job], p) == {}
    # live, the next cycle comes in 2 s: the sun can go for 2 s only (0.0028 %), then it acts
    assert actions(cycle(period_s=2.0), state(30.4, 100.0, 600.0), [job], p) == {}
    # ...but the discharge it would cause still counts over the whole 5 min (as in the cap test)
    capped = running("d", power_w=200.0, cap_w=40.0)
    assert actions(cycle(period_s=2.0), state(30.2, -100.0, 0.0), [capped], p) == {"d": ("suspend", None)}


def test_only_promised_work_is_forced_on_by_its_deadline() -> None:
    deadline = T0 + timedelta(minutes=70)  # 100 Wh at 100 W: one hour of work, 10 min of slack
    promised = running("p", power_w=100.0, cap_w=40.0, deadline=deadline, energy_wh=100.0)
    best = running("b", power_w=100.0, cap_w=40.0, deadline=deadline, energy_wh=100.0, best_effort=True)
    p = plan({"p": 0.0, "b": 0.0})  # the plan lets both wait
    got = actions(cycle(), state(60.0, 0.0, 0.0), [promised, best], p)
    assert got["p"] == ("cap", None)  # uncapped: the deadline needs it now
    assert got["b"] == ("suspend", None)  # no promise: it waits where the plan put it
