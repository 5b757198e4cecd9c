"""Self-test and commissioning report: checks that do not depend on any UI.

``run_selftest`` (runner.py) gathers the box's state from the daemon (API or its published
snapshot) or polls the devices itself, runs the checks (checks.py, sun.py) and returns a
``Report`` (report.py) that ``save_report`` writes as Markdown and JSON and queues for the
fleet manager. ``run_fault_selftest`` (faults.py) drives the simulator's service unit.
Used by the technician's TUI and by ``sunbox selftest``.
"""

from appliance.selftest.checks import CheckResult, Status
from appliance.selftest.report import Report, SavedReport, save_report
from appliance.selftest.runner import CHECK_TITLES, run_selftest

__all__ = [
    "CHECK_TITLES",
    "CheckResult",
    "Report",
    "SavedReport",
    "Status",
    "run_selftest",
    "save_report",
]
