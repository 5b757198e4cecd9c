"""Textual terminal UI for field technicians."""
