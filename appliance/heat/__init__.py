"""Waste heat into the home: room thermal model, comfort schedule, router, accounting, fit.

- ``room``: 1R1C ``RoomModel`` (simulator API: ``from_config``, ``step``, ``heat_for``) and
  ``Room2R2CModel``; ``room_model_from_config``; exact ``step_state``/``heat_to_reach``/
  ``simulate_air`` for either.
- ``schedule``: ``ComfortSchedule`` — is heat wanted at t (UTC), setpoint, band.
- ``router``: ``HeatRouter.decide(now, room Reading, outdoor_c, compute_power_w)`` ->
  ``HeatDecision`` (damper_pct, reason, events; ``write_request(device)``).
- ``ledger``: ``HeatLedger`` — delivered/used/vented Wh, comfort deficit K·h, ERF.
- ``demand``: ``heat_demand``/``site_heat_demand`` — per-slot useful heat for the planner.
- ``virtual_room``: ``VirtualRoom`` — the simulated room behind the router, for replay.
- ``record``/``fit``/``config_file``: ``sunbox heat fit``; ``online``: ``OnlineRoomEstimator``.
"""
