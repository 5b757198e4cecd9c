"""PV physics and forecasting with pvlib: one module per physical question.

geometry: where the sun is and where the modules face (fixed, single-axis, dual-axis).
clearsky: irradiance under a cloudless sky (Ineichen with pvlib's Linke turbidity).
pvsystem: irradiance and weather -> AC power of the configured array.
"""
