"""Link profiles: which links a box has, when each may be used, and which to try first.

Every decision carries its reason (evcc style), so `sunbox sync status` can say why the
satellite modem stayed off: window closed, the plan could not afford its watts, budget spent,
or backing off after failures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from appliance.config import LinkConfig, SunboxConfig
from appliance.store.outbox import Priority

DEFAULT_HUB_LINK = "hub"


def effective_links(config: SunboxConfig) -> list[LinkConfig]:
    """[[links]] as configured; without any, one cellular HTTP link to [sync] hub_url."""
    if config.links:
        return list(config.links)
    if config.sync.hub_url:
        return [
            LinkConfig(
                name=DEFAULT_HUB_LINK, kind="cellular", transport="http", url=config.sync.hub_url
            )
        ]
    return []


def box_id(config: SunboxConfig) -> str:
    return config.sync.box_id or config.site.name


def max_priority(link: LinkConfig) -> Priority:
    return Priority[link.max_priority.upper()]


def _in_window(local: time, start: time, end: time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight


def window_open(link: LinkConfig, now: datetime, zone: ZoneInfo) -> bool:
    """Whether ``now`` falls in one of the link's local windows (no windows: always)."""
    if not link.windows:
        return True
    local = now.astimezone(zone).time().replace(tzinfo=None)
    return any(
        _in_window(local, time.fromisoformat(a), time.fromisoformat(b)) for a, b in link.windows
    )


def next_window_start(link: LinkConfig, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When the next window opens (None: open now or no windows)."""
    if not link.windows or window_open(link, now, zone):
        return None
    local_now = now.astimezone(zone)
    best: datetime | None = None
    for start_text, _ in link.windows:
        start = time.fromisoformat(start_text)
        for day_offset in (0, 1):
            day = local_now.date() + timedelta(days=day_offset)
            cand = datetime.combine(day, start, tzinfo=zone)
            if cand > local_now and (best is None or cand < best):
                best = cand
    return best


@dataclass(frozen=True)
class LinkDecision:
    """Whether a link may be brought up now, and why."""

    link: str
    usable: bool
    reason: str


def rank_links(links: list[LinkConfig]) -> list[LinkConfig]:
    """Cheapest first: cost per MB, then modem watts, then config order."""
    return sorted(
        (lk for lk in links if lk.enabled),
        key=lambda lk: (lk.cost_per_mb, lk.modem_power_w, links.index(lk)),
    )
