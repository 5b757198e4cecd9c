"""``sunbox jobs``: submit, list and cancel compute jobs; build job streams for replay.

Every submission is answered at once with its decision and reason (admitted with its planned
window, or rejected with what the box could give and the earliest deadline that would work).
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from appliance.clock import SystemClock, as_utc
from appliance.commands.common import CommandError, config_from, data_dir, open_store, print_json
from appliance.config import SunboxConfig
from appliance.jobs_service import JobService, JobServiceError
from appliance.snapshot import daemon_clock
from appliance.state import Job, JobState, PowerForecast
from appliance.store import Store
from appliance.workloads.requests import JobRequestError, parse_request
from appliance.workloads.streams import StreamError, StreamSpec, generate, write_jsonl

RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([mhd])$")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    jobs = sub.add_parser("jobs", help="submit, list and cancel compute jobs", parents=[common])
    jsub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    jobs.set_defaults(func=lambda args: (jobs.print_help(), 2)[1])

    s = jsub.add_parser(
        "submit", help="submit a job and get the admission decision", parents=[common]
    )
    s.add_argument("--name", required=True)
    s.add_argument("--cmd", help="shell command to run (none: the job is only planned)")
    s.add_argument("--kind", choices=["critical", "deferrable", "sponge"], default="deferrable")
    s.add_argument("--energy-wh", type=float, help="energy the job needs (Wh)")
    s.add_argument(
        "--duration", type=float, metavar="S", help="run time at full power (s), with --power-w"
    )
    s.add_argument("--power-w", type=float, help="node power above idle while it runs (W)")
    s.add_argument(
        "--deadline", help="ISO time with offset (2025-06-01T18:00+03:00) or +6h/+90m/+2d"
    )
    s.add_argument("--value", type=float, default=1.0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_submit)

    ls = jsub.add_parser("list", help="list jobs (newest first)", parents=[common])
    ls.add_argument("--state", action="append", choices=[s.value for s in JobState])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    c = jsub.add_parser("cancel", help="cancel a job (its process is stopped)", parents=[common])
    c.add_argument("id")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_cancel)

    st = jsub.add_parser(
        "stream", help="write a replay job stream built from real traces", parents=[common]
    )
    st.add_argument("--start", required=True, help="ISO time with offset")
    st.add_argument("--days", type=int, required=True)
    st.add_argument(
        "--daily-pv-wh", type=float, required=True, help="mean daily PV energy of the box"
    )
    st.add_argument("--pv-to-demand", type=float, default=1.5)
    st.add_argument("--jobs-per-day", type=float, default=6.0)
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--out", required=True, help="JSON lines file to write")
    st.set_defaults(func=cmd_stream)


def parse_deadline(text: str, now: datetime) -> datetime:
    m = RELATIVE.match(text.strip())
    if m:
        n, unit = float(m.group(1)), m.group(2)
        return now + timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: n})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--deadline '{text}': not an ISO time (2025-06-01T18:00+03:00) or +6h"
        ) from None
    if moment.tzinfo is None:
        raise CommandError(f"--deadline '{text}': needs a UTC offset, e.g. {text}+03:00")
    return as_utc(moment)


def local_forecast(config: SunboxConfig, store: Store, now: datetime) -> PowerForecast:
    """When the daemon has published no forecast: the PV forecaster as the box last saved it
    (or fresh, from climatology), run here."""
    from appliance.solar.forecaster import load_model

    return load_model(store, config).forecast(
        now, hours=config.planner.horizon_h + 0.25, step_min=config.planner.slot_min
    )


def service_from(args: argparse.Namespace) -> JobService:
    config = config_from(args)
    store = open_store(args)
    wall = SystemClock()
    clock = daemon_clock(store, wall.now()) or wall  # decide on the running daemon's time
    return JobService(
        store,
        config,
        clock,
        data_dir(args),
        forecast_provider=lambda now: local_forecast(config, store, now),
    )


def job_json(job: Job) -> dict[str, Any]:
    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {
        "id": job.id,
        "name": job.name,
        "kind": job.kind.value,
        "state": job.state.value,
        "reason": job.reason,
        "best_effort": job.best_effort,  # admitted without a promise; false once promised
        "power_w": job.power_w,
        "energy_wh": job.energy_wh,
        "deadline": iso(job.deadline),
        "value": job.value,
        "cmd": job.cmd,
        "submitted_at": iso(job.submitted_at),
        "planned_start": iso(job.planned_start),
        "planned_end": iso(job.planned_end),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "exit_code": job.exit_code,
        "energy_used_wh": round(job.energy_used_wh, 3),
        "cpu_s": round(job.cpu_s, 3),
        "cap_w": job.cap_w,
    }


def cmd_submit(args: argparse.Namespace) -> int:
    service = service_from(args)
    now = service.clock.now()
    data: dict[str, object] = {"name": args.name, "kind": args.kind, "value": args.value}
    for key, val in (
        ("cmd", args.cmd),
        ("energy_wh", args.energy_wh),
        ("duration_s", args.duration),
        ("power_w", args.power_w),
    ):
        if val is not None:
            data[key] = val
    if args.deadline is not None:
        data["deadline"] = parse_deadline(args.deadline, now)
    try:
        request = parse_request(data)
        job, decision = service.submit(request)
    except (JobRequestError, JobServiceError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        out = job_json(job)
        out["admitted"] = decision.admitted
        out["available_wh"] = decision.available_wh
        out["earliest_deadline"] = (
            None if decision.earliest_deadline is None else decision.earliest_deadline.isoformat()
        )
        print_json(out)
    else:
        print(f"{job.id}  {decision.reason}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    service = service_from(args)
    states = [JobState(s) for s in args.state] if args.state else None
    jobs = service.list(states, args.limit)
    if args.json:
        print_json([job_json(j) for j in jobs])
        return 0
    if not jobs:
        print("no jobs")
        return 0
    tz = service.config.site.zone
    print(
        f"{'ID':<11} {'NAME':<16} {'KIND':<10} {'STATE':<10} {'USED/ASKED Wh':>14}  "
        f"{'DEADLINE':<9}  REASON"
    )
    for j in jobs:
        asked = "-" if j.energy_wh is None else f"{j.energy_wh:.0f}"
        deadline = "-" if j.deadline is None else f"{j.deadline.astimezone(tz):%a %H:%M}"
        print(
            f"{j.id:<11} {j.name[:16]:<16} {j.kind.value:<10} {j.state.value:<10} "
            f"{j.energy_used_wh:>7.1f}/{asked:<6}  {deadline:<9}  {j.reason}"
        )
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    service = service_from(args)
    try:
        job = service.cancel(args.id)
    except JobServiceError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json(job_json(job))
    else:
        print(f"{job.id}  {job.reason}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    config = config_from(args)
    try:
        start = datetime.fromisoformat(args.start)
    except ValueError:
        raise CommandError(f"--start '{args.start}': not an ISO time") from None
    if start.tzinfo is None:
        raise CommandError(f"--start '{args.start}': needs a UTC offset")
    spec = StreamSpec(
        start=as_utc(start),
        days=args.days,
        daily_pv_wh=args.daily_pv_wh,
        pv_to_demand=args.pv_to_demand,
        jobs_per_day=args.jobs_per_day,
        seed=args.seed,
    )
    try:
        records = generate(spec, config)
    except StreamError as exc:
        raise CommandError(str(exc)) from None
    path = write_jsonl(records, args.out)
    kinds = {
        k: sum(1 for r in records if r["kind"] == k) for k in ("critical", "deferrable", "sponge")
    }
    energy = float(np.sum([r["energy_wh"] for r in records if r["kind"] == "deferrable"]))
    print(
        f"wrote {len(records)} jobs to {path}: {kinds['critical']} critical, "
        f"{kinds['deferrable']} deferrable ({energy / args.days:.0f} Wh/day), "
        f"{kinds['sponge']} sponge"
    )
    return 0
