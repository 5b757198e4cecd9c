"""SQLite store (through sqlite-utils): telemetry, events, jobs, outbox, key-value state.

One database file in the data directory, in WAL mode so the daemon writes while the CLI, the
API and the TUI read. Each table family has its own small module; ``Store`` ties them to one
connection guarded by a lock, so asyncio tasks and worker threads may share it.
"""

from appliance.store.core import Store, from_ms, to_ms

__all__ = ["Store", "from_ms", "to_ms"]
