"""Links and sync: from appliance/sync's own status when it is part of this build, else the
outbox alone (what is queued, by priority, and for how long) with the configured links."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from appliance.config import SunboxConfig
from appliance.store import Store


def links_view(config: SunboxConfig, store: Store, now: datetime) -> dict[str, Any]:
    status: dict[str, Any] | None = None
    try:
        from appliance.sync.status import sync_status
    except ImportError:  # a build without sync: the outbox still tells what waits
        pass
    else:
        status = sync_status(config, store, now)
    if status is not None:
        status["source"] = "sync"
        return status
    oldest = store.outbox.oldest_undelivered()
    return {
        "source": "outbox",
        "at": now.isoformat(),
        "links": [
            {
                "name": lk.name,
                "kind": lk.kind,
                "transport": lk.transport,
                "enabled": lk.enabled,
                "budget_bytes": lk.daily_budget_bytes,
            }
            for lk in config.links
        ],
        "queue": store.outbox.depth_by_priority(),
        "oldest_undelivered": None if oldest is None else oldest.isoformat(),
        "oldest_undelivered_age_s": None
        if oldest is None
        else round((now - oldest).total_seconds()),
        "inbound": [],
    }
