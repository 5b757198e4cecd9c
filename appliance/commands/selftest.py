"""``sunbox selftest``: the TUI's self-test and commissioning report, from a shell.

Judges the daemon's published state when it runs (else polls the devices once), saves the
report to ``<data dir>/reports/<UTC time>.md`` and ``.json`` and queues its summary for the
fleet manager. ``--faults`` runs the fault self-test against the simulator instead. Exit
status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from appliance.clock import SystemClock
from appliance.commands.common import CommandError, config_from, data_dir, open_store, print_json
from appliance.selftest import Report, run_selftest, save_report


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("selftest", parents=[common], help="self-test and commissioning report")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.add_argument("--no-save", action="store_true", help="do not write the report or queue it")
    p.add_argument(
        "--faults",
        action="store_true",
        help="fault self-test: make the local SIMULATOR's devices fail and check the box notices",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    ddir = data_dir(args)
    store = open_store(args)
    clock = SystemClock()
    try:
        if args.faults:
            from appliance.selftest.faults import FaultTestRefused, run_fault_selftest

            try:
                report: Report = asyncio.run(run_fault_selftest(config, clock))
            except FaultTestRefused as exc:
                raise CommandError(str(exc)) from None
        else:
            report = asyncio.run(run_selftest(config, store, ddir, clock))
        saved = None if args.no_save else save_report(report, config, ddir, store)
    finally:
        store.close()
    if args.json:
        doc = report.as_dict()
        if saved is not None:
            doc["saved"] = {
                "markdown": str(saved.markdown_path),
                "json": str(saved.json_path),
                "outbox_id": saved.outbox.id if saved.outbox else None,
            }
        print_json(doc)
    else:
        print(f"{report.kind} of {report.site}: {report.summary()}  (evidence: {report.source})")
        for c in report.checks:
            print(f"  {c.status.value.upper():<5} {c.title:<42} {c.detail}")
        if saved is not None:
            print(
                f"report: {saved.markdown_path} (+ .json)"
                + (
                    f"; queued for the fleet manager (outbox #{saved.outbox.id})"
                    if saved.outbox
                    else ""
                )
            )
    return 1 if report.status.value == "fail" else 0
