"""Sunbox user interfaces: web dashboard (web/) and technician TUI (tui/)."""
