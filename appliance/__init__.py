"""Sunbox: the operating stack of an off-grid solar micro-datacentre."""

__version__ = "0.1.0"
