"""One control cycle, shared by the live daemon and the in-process replay.

OpenEMS-style: controllers run in a fixed order on one frozen SiteState, and a later
controller may only narrow what an earlier one allowed: safety first (safety.py), then the
plan (the energy part's follower), then opportunism (sponge jobs on surplus), then heat.
"""
