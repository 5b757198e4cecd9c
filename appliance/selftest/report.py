"""The commissioning / self-test report: Markdown for people, JSON for machines, a line in the
outbox for the fleet manager.

Files go to ``<data dir>/reports/<UTC timestamp>.md`` and ``.json``. The outbox item is the
report in a few lines (kind ``log``, the sync log stream: the hub already stores and shows
those), trimmed so it fits the smallest message of any link that carries logs; the full
report stays on the box.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.config import SunboxConfig
from appliance.selftest.checks import CheckResult, Status
from appliance.state import Event, EventKind, Severity
from appliance.store import Store
from appliance.store.outbox import OutboxItem, Priority

REPORTS_DIR = "reports"
OUTBOX_KIND = "log"
OUTBOX_STREAM = "log"
FRAME_OVERHEAD_BYTES = 64  # frame header + batch header, generously (appliance/sync/wire.py)
ORDER = (Status.FAIL, Status.WARN, Status.PASS, Status.SKIP)


@dataclass
class Report:
    """One run of checks on one box."""

    kind: str  # "selftest" | "faults"
    box_id: str
    site: str
    tz: str
    started_at: datetime
    finished_at: datetime
    source: str
    checks: list[CheckResult] = field(default_factory=list)
    operator: str = ""

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for c in self.checks if c.status is s) for s in ORDER}

    @property
    def status(self) -> Status:
        counts = self.counts()
        if counts["fail"]:
            return Status.FAIL
        if counts["warn"]:
            return Status.WARN
        return Status.PASS if counts["pass"] else Status.SKIP

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[s.value]} {s.value}" for s in ORDER if c[s.value]]
        return f"{self.status.value.upper()} ({', '.join(parts) or 'no checks'})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "box_id": self.box_id,
            "site": self.site,
            "tz": self.tz,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "started_local": self.started_at.astimezone(_zone(self.tz)).isoformat(),
            "version": __version__,
            "source": self.source,
            "operator": self.operator,
            "status": self.status.value,
            "counts": self.counts(),
            "checks": [c.as_dict() for c in self.checks],
        }

    def markdown(self) -> str:
        local = self.started_at.astimezone(_zone(self.tz))
        title = (
            "Sunbox self-test" if self.kind == "selftest" else "Sunbox fault self-test (simulator)"
        )
        lines = [
            f"# {title}: {self.site}",
            "",
            f"- Result: **{self.summary()}**",
            f"- Box: `{self.box_id}`, sunbox {__version__}",
            f"- Started: {self.started_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({local:%Y-%m-%d %H:%M %Z} at the site)",
            f"- Finished: {self.finished_at:%Y-%m-%d %H:%M:%S} UTC",
            f"- Evidence: {self.source}",
        ]
        if self.operator:
            lines.append(f"- Technician: {self.operator}")
        lines += ["", "| Status | Check | Detail |", "|---|---|---|"]
        for c in sorted(self.checks, key=lambda c: ORDER.index(c.status)):
            detail = c.detail.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {c.status.value.upper()} | {c.title} | {detail} |")
        lines += ["", "## Figures", ""]
        for c in self.checks:
            if c.figures:
                lines.append(
                    f"- `{c.id}`: `{json.dumps(c.figures, default=str, separators=(',', ':'))}`"
                )
        return "\n".join(lines) + "\n"

    def outbox_lines(self) -> list[str]:
        head = f"{self.kind} {self.started_at:%Y-%m-%dT%H:%M:%SZ} {self.site}: {self.summary()}"
        body = [
            f"{c.status.value.upper()} {c.id}: {c.detail}"
            for c in sorted(self.checks, key=lambda c: ORDER.index(c.status))
            if c.status is not Status.SKIP
        ]
        return [head, *body]


def _zone(tz: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


@dataclass(frozen=True)
class SavedReport:
    markdown_path: Path
    json_path: Path
    outbox: OutboxItem | None


def report_stem(reports: Path, started_at: datetime) -> Path:
    """``reports/20260621T080000Z`` (suffixed -2, -3... when that second is taken)."""
    base = started_at.strftime("%Y%m%dT%H%M%SZ")
    stem, n = reports / base, 1
    while stem.with_suffix(".md").exists() or stem.with_suffix(".json").exists():
        n += 1
        stem = reports / f"{base}-{n}"
    return stem


def _write(path: Path, text: str) -> None:
    """Whole file or nothing: a report cut by a power loss must not look complete."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def log_message_limit(config: SunboxConfig) -> int | None:
    """Largest payload a log item may have to travel on every link that carries logs."""
    from appliance.sync.links import effective_links, max_priority

    sizes = [
        lk.max_message_bytes
        for lk in effective_links(config)
        if lk.enabled and max_priority(lk) >= Priority.LOG
    ]
    return min(sizes) - FRAME_OVERHEAD_BYTES if sizes else None


def outbox_payload(lines: list[str], limit: int | None) -> bytes:
    """The log payload of ``lines``, dropping trailing lines (then shortening the head) to fit."""
    from appliance.sync.messages import encode_log

    kept = list(lines)
    payload = encode_log(kept)
    while limit is not None and len(payload) > limit and len(kept) > 1:
        kept.pop()
        payload = encode_log(kept)
    if limit is not None and len(payload) > limit:
        head = kept[0].encode("utf-8")[: max(16, limit - 8)].decode("utf-8", errors="ignore")
        payload = encode_log([head])
    return payload


def save_report(
    report: Report, config: SunboxConfig, data_dir: Path, store: Store | None, enqueue: bool = True
) -> SavedReport:
    """Write the Markdown and JSON files; record an event; queue the summary for the hub."""
    reports = data_dir / REPORTS_DIR
    reports.mkdir(parents=True, exist_ok=True)
    stem = report_stem(reports, report.started_at)
    md, js = stem.with_suffix(".md"), stem.with_suffix(".json")
    _write(js, json.dumps(report.as_dict(), indent=2, default=str) + "\n")
    _write(md, report.markdown())
    item = None
    if store is not None:
        sev = {Status.FAIL: Severity.WARNING, Status.WARN: Severity.WARNING}.get(
            report.status, Severity.INFO
        )
        store.events.add(
            Event(
                report.finished_at,
                EventKind.SYSTEM,
                f"{report.kind}: {report.summary()}; report {REPORTS_DIR}/{md.name}",
                "selftest",
                sev,
                {"report": md.name, "status": report.status.value},
            )
        )
        if enqueue:
            from appliance.sync.links import box_id

            payload = outbox_payload(report.outbox_lines(), log_message_limit(config))
            item = store.outbox.put(
                OUTBOX_STREAM,
                Priority.LOG,
                OUTBOX_KIND,
                payload,
                report.finished_at,
                box_id(config),
            )
    return SavedReport(md, js, item)
