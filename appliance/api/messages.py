"""Every sentence the API says to a person, in one place, ready for translation.

English first; Swahili and Dutch are the likely next catalogues. An error answer carries both
the text and its key (``{"detail": ..., "code": ...}``) so a client may show its own wording.
Decision reasons (admission, safety, heat) come from the parts themselves and are passed on
verbatim: the web page and the CLI must say the same words.
"""

from __future__ import annotations

from typing import Any

EN: dict[str, str] = {
    # auth
    "auth.required": "log in first",
    "auth.forbidden": "your role ({role}) may not do this; it needs {needed} or higher",
    "auth.csrf": "missing or wrong X-CSRF-Token header: reload the page and try again",
    "auth.cross_site": "cross-site request refused",
    "auth.bad_credentials": "wrong user name or password",
    "auth.rate_limited": "too many failed logins: try again in {seconds} s",
    "auth.setup_done": "the box is set up already: log in",
    "auth.logged_out": "logged out",
    "auth.current_password": "the current password is wrong",
    # users
    "user.name_rule": "user name must be 1-32 lower-case letters, digits, '.', '_' or '-'",
    "user.exists": "user '{name}' exists already",
    "user.unknown": "no user named '{name}'",
    "user.last_admin": "'{name}' is the last admin; make another admin first",
    "user.password_short": "password must be at least {n} characters",
    "user.password_long": "password must be at most {n} characters",
    "user.password_name": "password must not contain the user name",
    "user.password_simple": "password needs at least {n} different characters",
    "user.setup_hint": "no users yet: open the dashboard to create the admin",
    "user.count_hint": "{n} dashboard user(s); a forgotten password: sunbox users passwd NAME",
    # requests
    "request.invalid": "{field}: {msg}",
    "request.invalid_body": "the request body is not valid JSON",
    "job.unknown": "no job with id '{job_id}'",
    "job.cmd_role": "a job with a shell command needs the {needed} role",
    "job.waits_slot": "waits for its planned slot from {start}",
    "job.waits_plan": "admitted; waits for the planner to give it a slot",
    "job.waits_sun": "suspended: {reason}",
    "history.unknown_channel": "no telemetry channel '{channel}'",
    "chart.unknown": "no chart named '{name}'",
    "setpoint.unknown": "no writable point '{point}' on device '{device}' "
    "(only points with limits in the config can be written)",
    "stream.full": "too many live connections; try again later",
    "daemon.starting": "the box is starting: no measurements yet",
    # the event log (what the box did for whom)
    "event.setup": "first-run setup: admin '{user}' created from {client}",
    "event.demo_admin": "first run: demo admin '{user}' created with a generated password",
    "event.login": "{user} ({role}) logged in from {client}",
    "event.locked": "logins locked for '{user}' from {client}: too many failures",
    "event.own_password": "{user} changed their password",
    "event.user_added": "user '{user}' added as {role} (by {by})",
    "event.password_reset": "password of '{user}' reset (by {by})",
    "event.role_changed": "user '{user}' is now {role} (by {by})",
    "event.user_removed": "user '{user}' removed (by {by})",
    "job.cancel_by": "by {who}",
    "job.cancel_said": "{said} (by {who})",
    "who": "{user} ({role})",
    # charts
    "chart.forecast.title": "PV forecast and measured power, today and tomorrow",
    "chart.soc.title": "Battery state of charge: last 24 h and planned",
    "chart.plan.title": "Plan for the next 48 h",
    "chart.heat.title": "Room temperature and setpoint",
    "chart.band": "P10-P90",
    "chart.p50": "forecast P50",
    "chart.actual": "measured",
    "chart.soc": "SoC",
    "chart.soc_plan": "planned SoC",
    "chart.reserve": "reserve {pct:g} %",
    "chart.soc_min": "BMS minimum {pct:g} %",
    "chart.pv_plan": "PV ({quantile})",
    "chart.jobs": "jobs",
    "chart.charge": "battery charge",
    "chart.discharge": "battery discharge",
    "chart.room": "room",
    "chart.outdoor": "outdoor",
    "chart.setpoint": "setpoint {c:g} °C",
    "chart.wanted": "heat wanted",
    "chart.now": "now",
    "chart.no_data": "no data yet",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN}


def text(key: str, lang: str = "en", **values: Any) -> str:
    """The sentence for ``key`` in ``lang`` (English when missing), filled with ``values``."""
    template = CATALOGUES.get(lang.split("-")[0], EN).get(key) or EN[key]
    return template.format(**values) if values else template
