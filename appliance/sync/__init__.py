"""Store and forward: outbox policy, link profiles and budgets, compact encodings, transports
(HTTP hub, MQTT, Iridium SBD) and the hub that receives them.

The daemon builds a ``SyncService`` (or ``build_for_hub`` for ``sunbox demo --hub URL``) and
runs ``service.run(stop, energy_allows_w)``; ``sync_status`` reads the store only.
"""

from appliance.sync.ledger import SyncLedger
from appliance.sync.service import SyncReport, SyncService, build_for_hub, build_transport
from appliance.sync.status import sync_status

__all__ = [
    "SyncLedger",
    "SyncReport",
    "SyncService",
    "build_for_hub",
    "build_transport",
    "sync_status",
]
