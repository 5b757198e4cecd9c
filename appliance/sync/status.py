"""What `sunbox sync status` shows, read from the store only (with or without a daemon running)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from appliance.config import SunboxConfig
from appliance.store import Store
from appliance.sync.budget import budget_day
from appliance.sync.ledger import SyncLedger
from appliance.sync.links import box_id, effective_links, window_open


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def sync_status(config: SunboxConfig, store: Store, now: datetime) -> dict[str, Any]:
    """Per link: bytes today vs budget, last success, why it is (not) used; queue by priority."""
    ledger = SyncLedger(store)
    zone = config.site.zone
    day = budget_day(now, zone)
    links = []
    for link in effective_links(config):
        usage = ledger.usage(link.name, day)
        state = ledger.state(link.name)
        used = usage.bytes_total
        links.append(
            {
                "name": link.name,
                "kind": link.kind,
                "transport": link.transport,
                "enabled": link.enabled,
                "window_open": window_open(link, now, zone),
                "day": day.isoformat(),
                "bytes_used_today": used,
                "bytes_up_today": usage.bytes_up,
                "bytes_down_today": usage.bytes_down,
                "budget_bytes": link.daily_budget_bytes,
                "budget_used_pct": round(100.0 * used / link.daily_budget_bytes, 1)
                if link.daily_budget_bytes
                else None,
                "cost_today": round(used / 1e6 * link.cost_per_mb, 4),
                "items_today": usage.items,
                "requests_today": usage.requests,
                "modem_on_s_today": round(usage.modem_on_s, 1),
                "modem_energy_wh_today": round(usage.modem_on_s * link.modem_power_w / 3600.0, 2),
                "last_success": _iso(state.last_success),
                "last_attempt": _iso(state.last_attempt),
                "last_error": state.last_error,
                "failures": state.failures,
                "backoff_until": _iso(state.backoff_until),
                "decision": state.decision,
            }
        )
    oldest = store.outbox.oldest_undelivered()
    return {
        "box": box_id(config),
        "at": now.isoformat(),
        "links": links,
        "queue": store.outbox.depth_by_priority(),
        "oldest_undelivered": _iso(oldest),
        "oldest_undelivered_age_s": None
        if oldest is None
        else round((now - oldest).total_seconds()),
        "inbound": [{k: v for k, v in row.items()} for row in ledger.inbound_log(10)],
    }


def format_status(status: dict[str, Any], zone_name: str) -> str:
    """Human text: one block per link, then the queue."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)

    def local(text: str | None) -> str:
        if not text:
            return "never"
        return datetime.fromisoformat(text).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    lines = [f"box {status['box']}"]
    if not status["links"]:
        lines.append("no links configured ([[links]] or [sync] hub_url)")
    for lk in status["links"]:
        budget = lk["budget_bytes"]
        pct = f" ({lk['budget_used_pct']:g} %)" if lk["budget_used_pct"] is not None else ""
        off = "" if lk["enabled"] else ", disabled"
        lines.append(
            f"link {lk['name']} ({lk['kind']}/{lk['transport']}{off}): "
            f"{lk['bytes_used_today']:,} of {budget:,} B today{pct}, "
            f"last success {local(lk['last_success'])}"
        )
        if lk["last_error"]:
            lines.append(f"  last error: {lk['last_error']} ({lk['failures']} failure(s))")
        if lk["decision"]:
            lines.append(f"  decision: {lk['decision']}")
    q = status["queue"]
    lines.append(
        "queue: " + ", ".join(f"{k} {v}" for k, v in q.items()) + f" (total {sum(q.values())})"
    )
    oldest = status["oldest_undelivered"]
    lines.append(
        f"oldest undelivered: {local(oldest)} ({status['oldest_undelivered_age_s']} s ago)"
        if oldest
        else "oldest undelivered: none"
    )
    return "\n".join(lines)
