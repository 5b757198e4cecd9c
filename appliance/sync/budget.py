"""Daily byte budget of a link: who may spend what is left, and how coarse telemetry must get.

Rules, in order (each decision comes with its reason):
1. Alarms may spend everything left today.
2. Everything else leaves ``alarm_reserve_pct`` of the budget untouched for alarms.
   Telemetry and logs also leave room for the job results and summaries expected later in
   the day (the last 24 hours' rate).
3. Telemetry expected for the rest of the day is reserved before logs, so logs never starve
   telemetry; they wait for a day with room.
4. When sending each telemetry block as it is cut would not fit, telemetry is held back to
   share requests with other traffic (at most ``telemetry_max_delay_s``) and downsampled to
   the finest step that fits (means per bucket; counters keep their last value). If even the
   coarsest step does not fit, telemetry goes as far as the budget reaches and the rest waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from appliance.config import LinkConfig
from appliance.store.outbox import Priority

# Coarser steps telemetry may fall back to (s).
DOWNSAMPLE_STEPS_S: tuple[float, ...] = (300.0, 900.0, 3600.0)


def budget_day(now: datetime, zone: ZoneInfo) -> date:
    """The carrier's day: the site's local calendar day."""
    return now.astimezone(zone).date()


def seconds_left_today(now: datetime, zone: ZoneInfo) -> float:
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return max(0.0, (midnight - local).total_seconds())


@dataclass(frozen=True)
class Allowance:
    """Bytes each class of traffic may still spend on one link today."""

    budget_bytes: int
    used_bytes: int
    alarm_reserve_bytes: int
    telemetry_future_bytes: int = 0
    urgent_future_bytes: int = 0  # job results and summaries expected later today

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.budget_bytes - self.used_bytes)

    def for_priority(self, priority: Priority) -> int:
        left = self.remaining_bytes
        if priority == Priority.ALARM:
            return left
        left -= self.alarm_reserve_bytes
        if priority >= Priority.TELEMETRY:
            left -= self.urgent_future_bytes
        if priority > Priority.TELEMETRY:
            left -= self.telemetry_future_bytes
        return max(0, left)


def allowance(
    link: LinkConfig, used_bytes: int, telemetry_future_bytes: int = 0, urgent_future_bytes: int = 0
) -> Allowance:
    return Allowance(
        budget_bytes=link.daily_budget_bytes,
        used_bytes=used_bytes,
        alarm_reserve_bytes=int(link.daily_budget_bytes * link.alarm_reserve_pct / 100.0),
        telemetry_future_bytes=telemetry_future_bytes,
        urgent_future_bytes=urgent_future_bytes,
    )


def urgent_future_bytes(
    last_day_count: int, last_day_bytes: int, per_request_bytes: int, seconds_left_s: float
) -> int:
    """Room kept for job results and summaries still to come today: the last 24 h's rate over
    the rest of the day, and at least one such item if there were any."""
    if last_day_count <= 0 or seconds_left_s <= 0:
        return 0
    per_item = last_day_bytes / last_day_count + per_request_bytes
    expected = max(1.0, last_day_count * seconds_left_s / 86400.0)
    return int(expected * per_item)


@dataclass(frozen=True)
class TelemetryChoice:
    step_s: float | None  # None: send as stored
    reason: str
    hold: bool = False  # budget short: send only with other traffic or when max_delay is reached
    future_bytes: int = 0  # reserved for telemetry still to come today (payload + requests)


def choose_telemetry_step(
    pending_bytes: int,
    future_payload_bytes: int,
    future_blocks: int,
    available_bytes: int,
    base_step_s: float,
    size_ratio: Callable[[float], float | None],
    per_request_bytes: int,
    seconds_left_s: float,
    max_delay_s: float,
) -> TelemetryChoice:
    """How telemetry goes out for the rest of the day within ``available_bytes``.

    Full resolution, one request per block, if that fits. Otherwise telemetry is held to share
    requests (at least one every ``max_delay_s``) and sent at the finest step whose volume
    fits; ``size_ratio(step)`` is the measured size of a pending block re-encoded at ``step``
    over its stored size (None if it cannot be re-encoded).
    """
    per_block = future_payload_bytes + future_blocks * per_request_bytes
    if pending_bytes + per_block + per_request_bytes <= available_bytes:
        return TelemetryChoice(
            None,
            f"full resolution fits ({pending_bytes + per_block} B of {available_bytes} B left)",
            future_bytes=per_block,
        )
    requests = int(seconds_left_s // max_delay_s) + 2
    steps = [base_step_s, *(s for s in DOWNSAMPLE_STEPS_S if s > base_step_s)]
    need_full = pending_bytes + future_payload_bytes
    for step in steps:
        ratio = 1.0 if step == base_step_s else size_ratio(step)
        if ratio is None:
            continue
        total = int(need_full * ratio) + requests * per_request_bytes
        if total <= available_bytes:
            label = "full resolution" if step == base_step_s else f"{step:g} s steps"
            return TelemetryChoice(
                None if step == base_step_s else step,
                f"budget short: telemetry at {label}, held up to {max_delay_s:g} s to share "
                f"requests ({total} B needed, {available_bytes} B left)",
                hold=True,
                future_bytes=int(future_payload_bytes * ratio) + (requests - 1) * per_request_bytes,
            )
    usable = [s for s in steps if s == base_step_s or size_ratio(s) is not None]
    coarsest = usable[-1]
    ratio = 1.0 if coarsest == base_step_s else (size_ratio(coarsest) or 1.0)
    return TelemetryChoice(
        None if coarsest == base_step_s else coarsest,
        f"budget short: telemetry at {coarsest:g} s steps and only what fits "
        f"({available_bytes} B left)",
        hold=True,
        future_bytes=int(future_payload_bytes * ratio) + (requests - 1) * per_request_bytes,
    )
