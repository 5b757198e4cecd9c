"""Transports move encoded batches to the hub and inbound items back: HTTP, MQTT, Iridium SBD."""

from appliance.sync.transports.base import Delivery, InboundFetch, Transport, TransportError

__all__ = ["Delivery", "InboundFetch", "Transport", "TransportError"]
