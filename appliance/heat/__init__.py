"""Waste heat into the home: room thermal model, comfort schedule, router, accounting, fit."""
