"""The device layer: register maps as data, decoding, polling, bounded writes, discovery.

registers: point and model definitions loaded from the official SunSpec JSON and Victron CSV.
codec: register words <-> values (scale factors, sentinels, 32-bit and string types).
sunspec / victron: the two map families and what site channels they provide.
link: one Modbus connection (TCP or RTU) shared by the devices behind it.
readplan: coalescing points into few reads.
poller / writer / gateway: what the daemon uses.
scan: finding devices on a bus.
"""
