"""Year-long replay on field data with a virtual clock: the box's real planner and control code
against the simulator's physics, in-process (no sockets).

weather: resampling, interpolating short gaps, skipping long ones.
metrics: what a replay reports (energy, jobs, reserve, heat).
run: the loop itself, for the three policies (sunbox, perfect, threshold).
"""

from appliance.replay.run import ReplayError, ReplayOptions, run_replay

__all__ = ["ReplayError", "ReplayOptions", "run_replay"]
