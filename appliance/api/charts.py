"""The dashboard's four charts, drawn on the server as SVG (see svg.py for why).

- forecast: today and tomorrow (local days): P10-P90 band, P50, measured PV, now.
- soc: last 24 h measured, next 48 h planned, the reserve and the BMS minimum.
- plan: the next 48 h of the plan: PV at the planning quantile, job power, battery flows.
- heat: room and outdoor temperature over 24 h, the setpoint, when heat was wanted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from appliance.api.messages import text
from appliance.api.series import bucket_means
from appliance.api.svg import TimeChart
from appliance.api.view_forecast import ForecastWindow
from appliance.api.view_heat import room_history, wanted_spans
from appliance.config import SunboxConfig
from appliance.heat.schedule import ComfortSchedule
from appliance.state import Channel
from appliance.store import Store

CHARTS = ("forecast", "soc", "plan", "heat")


def _top(values: list[float | None], floor: float) -> float:
    known = [v for v in values if v is not None]
    top = max(known, default=0.0)
    return max(floor, top * 1.1)


def forecast_chart(config: SunboxConfig, fw: ForecastWindow, now: datetime) -> str:
    times = fw.times()
    ac_kw = config.array.ac_limit_w
    top = _top([*fw.p90_w, *(v for _, v in fw.actual)], floor=ac_kw * 0.25)
    c = TimeChart(fw.start, fw.end, 0.0, top, config.site.zone, text("chart.forecast.title"), "W")
    c.band(times, fw.p10_w, fw.p90_w, "forecast", "p10-p90", text("chart.band"))
    c.line(times, fw.p50_w, "p50", "p50", text("chart.p50"), dashed=True)
    half = timedelta(seconds=fw.step_s / 2)
    drawn = c.line(
        [t + half for t, _ in fw.actual],
        [v for _, v in fw.actual],
        "actual",
        "actual",
        text("chart.actual"),
    )
    c.vline(now, "now", text("chart.now"))
    known = any(v is not None for v in fw.p50_w) or drawn
    return c.render(None if known else text("chart.no_data"))


def _plan_times(plan: dict[str, Any]) -> list[datetime]:
    start = datetime.fromisoformat(plan["start"])
    return [
        start + timedelta(seconds=(k + 1) * int(plan["step_s"]))
        for k in range(len(plan["soc_pct"]))
    ]


def soc_chart(
    config: SunboxConfig, store: Store, plan: dict[str, Any] | None, now: datetime
) -> str:
    bat = config.battery
    start, end = now - timedelta(hours=24), now + timedelta(hours=48)
    c = TimeChart(start, end, 0.0, 100.0, config.site.zone, text("chart.soc.title"), "%")
    measured = bucket_means(
        store.telemetry.series(Channel.SOC_PCT.value, start, now + timedelta(seconds=1)),
        start,
        300.0,
    )
    drawn = c.line(
        [t for t, _ in measured], [v for _, v in measured], "soc", "soc", text("chart.soc")
    )
    if plan:
        times = _plan_times(plan)
        drawn += c.line(
            times, plan["soc_pct"], "soc-plan", "soc-plan", text("chart.soc_plan"), dashed=True
        )
    c.hline(bat.reserve_pct, "reserve", text("chart.reserve", pct=bat.reserve_pct))
    c.hline(bat.soc_min_pct, "soc-min", text("chart.soc_min", pct=bat.soc_min_pct))
    c.vline(now, "now", text("chart.now"))
    return c.render(None if drawn else text("chart.no_data"))


def plan_chart(config: SunboxConfig, plan: dict[str, Any] | None, now: datetime) -> str:
    start, end = now, now + timedelta(hours=48)
    if not plan:
        c = TimeChart(
            start,
            end,
            0.0,
            config.array.ac_limit_w,
            config.site.zone,
            text("chart.plan.title"),
            "W",
        )
        return c.render(text("chart.no_data"))
    p_start = datetime.fromisoformat(plan["start"])
    step = int(plan["step_s"])
    times = [p_start + timedelta(seconds=k * step) for k in range(len(plan["pv_w"]))]
    jobs_w = [sum(float(s[k]) for s in plan["jobs"].values()) for k in range(len(times))]
    top = _top(
        [*plan["pv_w"], *jobs_w, *plan["charge_w"], *plan["discharge_w"]],
        floor=config.compute.max_w,
    )
    c = TimeChart(start, end, 0.0, top, config.site.zone, text("chart.plan.title"), "W")
    c.line(
        times,
        plan["pv_w"],
        "pv-plan",
        "pv",
        text("chart.pv_plan", quantile=plan.get("quantile", "")),
        step=True,
    )
    c.line(times, jobs_w, "jobs", "jobs", text("chart.jobs"), step=True)
    c.line(times, plan["charge_w"], "charge", "charge", text("chart.charge"), step=True)
    c.line(
        times,
        plan["discharge_w"],
        "discharge",
        "discharge",
        text("chart.discharge"),
        step=True,
        dashed=True,
    )
    return c.render()


def heat_chart(config: SunboxConfig, store: Store, now: datetime) -> str:
    heat = config.heat
    start = now - timedelta(hours=24)
    hist = room_history(store, now)
    room = hist[Channel.ROOM_TEMP_C.value]
    outdoor = hist[Channel.OUTDOOR_TEMP_C.value]
    temps = [v for _, v in room + outdoor] + [heat.setpoint_c]
    lo = min(temps) - 2.0
    hi = max(temps) + 2.0
    c = TimeChart(start, now, lo, hi, config.site.zone, text("chart.heat.title"), "°C")
    if heat.enabled:
        schedule = ComfortSchedule.from_config(heat, config.site.tz)
        c.shade(wanted_spans(schedule, start, now), "wanted", text("chart.wanted"))
    drawn = c.line([t for t, _ in room], [v for _, v in room], "room", "room", text("chart.room"))
    c.line(
        [t for t, _ in outdoor],
        [v for _, v in outdoor],
        "outdoor",
        "outdoor",
        text("chart.outdoor"),
        dashed=True,
    )
    c.hline(heat.setpoint_c, "setpoint", text("chart.setpoint", c=heat.setpoint_c))
    return c.render(None if drawn else text("chart.no_data"))
