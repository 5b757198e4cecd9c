"""``sunbox heat``: the room's thermal model.

``sunbox heat fit --data FILE [--model 1r1c|2r2c|auto] [--write CONFIG] [--json]`` fits the RC
model to measured indoor/outdoor temperature and heating power, prints parameters, one-step and
free-run RMSE and the selection criterion, and can write the fitted keys into a config.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from appliance.commands.common import CommandError, print_json
from appliance.heat.config_file import write_heat_values
from appliance.heat.record import load_record

if TYPE_CHECKING:  # the fit needs scipy.optimize: loaded by ``heat fit`` only, not by every command
    from appliance.heat.fit import FitReport


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    heat = subparsers.add_parser("heat", help="room thermal model: fit it from measurements",
                                 parents=[common])
    heat_sub = heat.add_subparsers(dest="heat_command", metavar="ACTION")
    fit = heat_sub.add_parser(
        "fit", parents=[common],
        help="fit the room's RC model (1R1C/2R2C) from indoor/outdoor temperature and heat",
        description="Fit the room's RC model. FILE is a CSV "
                    "time,indoor_temp_c,outdoor_temp_c,heat_w[,solar_w_m2] (time: ISO 8601 or "
                    "seconds) or the Armadillo layout Time,T_ext,P_hea,I_sol,T_int.")
    fit.add_argument("--data", metavar="FILE", required=True, help="measured thermal CSV")
    fit.add_argument("--model", choices=("1r1c", "2r2c", "auto"), default="auto",
                     help="model to fit; auto picks 2r2c only when its BIC is lower by > 2")
    fit.add_argument("--write", metavar="CONFIG", default=None,
                     help="write the fitted [heat] keys into this TOML config (validated first)")
    fit.add_argument("--json", action="store_true", help="print the result as JSON")
    fit.set_defaults(func=_fit)
    heat.set_defaults(func=lambda args: _usage(heat))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _fit(args: argparse.Namespace) -> int:
    try:
        from appliance.heat.fit import fit_room

        record = load_record(args.data)
        report = fit_room(record, args.model)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    changes = write_heat_values(args.write, report.config_values()) if args.write else None
    if args.json:
        payload: dict[str, Any] = report.as_dict()
        if changes is not None:
            payload["written"] = {"config": args.write,
                                  "changes": [{"key": f"heat.{k}", "old": old, "new": new}
                                              for k, old, new in changes]}
        print_json(payload)
        return 0
    _print_report(report, record.layout, float(record.time_s[-1]))
    if changes is not None:
        if not changes:
            print(f"{args.write}: [heat] already holds these values; nothing changed")
        else:
            print(f"wrote {args.write}:")
            for key, old, new in changes:
                print(f"  heat.{key}: {_fmt(old)} -> {_fmt(new)}")
    return 0


def _print_report(report: FitReport, layout: str, span_s: float) -> None:
    print(f"data: {report.samples} samples over {span_s / 3600:.1f} h ({layout} layout, "
          f"{report.dropped_rows} incomplete rows dropped, solar gain "
          f"{'fitted' if report.solar else 'absent'})")
    header = (f"{'model':6} {'R K/W':>9} {'C J/K':>10} {'R2 K/W':>9} {'C2 J/K':>10} "
              f"{'A m2':>7} {'tau h':>7} {'1-step K':>9} {'free K':>8} {'BIC':>9}")
    print(header)
    for c in report.candidates:
        v = c.model.config_values()
        print(f"{c.kind:6} {_fmt(v['room_r_k_per_w']):>9} {_fmt(v['room_c_j_per_k']):>10} "
              f"{_fmt(v['room_r2_k_per_w']):>9} {_fmt(v['room_c2_j_per_k']):>10} "
              f"{_fmt(v['room_solar_aperture_m2']):>7} {c.model.time_constant_s / 3600:7.1f} "
              f"{c.rmse_one_step_k:9.3f} {c.rmse_free_run_k:8.3f} {c.bic:9.1f}")
    print(f"constant-mean RMSE (baseline): {report.constant_mean_rmse_k:.3f} K")
    print(f"selection: {report.criterion}")
    for note in report.notes:
        print(f"note: {note}")
    print("[heat] " + ", ".join(f"{k} = {_fmt(v)}" for k, v in report.config_values().items()
                                if v is not None))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
