"""PV physics and forecasting with pvlib: one module per question.

Physics: geometry (sun, fixed/single-axis/dual-axis mounts), clearsky (Ineichen with pvlib's
Linke turbidity), pvsystem (the one chain: POA -> cell temperature -> DC -> inverter),
weather_inputs (a weather frame -> chain inputs: cloud cover -> GHI, decomposition).

Data: weather_file (the field-data CSV format), field_readers (the raw public files),
derived_files (regenerates the converted/derived files in field_data).

Forecast: forecaster (the incremental Forecaster the daemon and replay keep), forecast (the
pure ``forecast_pv``), backtest (day-by-day replay and scores); the learned parts are
climatology, envelope (effective scale/shape), blend (per-horizon source weights), quantiles
(P10/P50/P90 from past errors), recent (last days of slots), clearsky_table (precomputed
clear-sky power), timegrid (epoch seconds and slot grids).
"""
