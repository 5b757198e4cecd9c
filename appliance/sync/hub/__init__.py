"""The receiving side: a FastAPI + SQLite hub many boxes sync to (``sunbox hub``)."""

from appliance.sync.hub.app import create_hub_app
from appliance.sync.hub.store import HubStore

__all__ = ["HubStore", "create_hub_app"]
