"""Where the TUI gets the box from: the daemon's API (online) or the store and the devices
directly (offline diagnostics). Both answer the same questions with the same views."""

from __future__ import annotations

from typing import Any, Protocol

from ui.tui.views import BoxState, DeviceView, EventView, JobView, LinksView, Setpoint, WriteOutcome


class BackendError(Exception):
    """A failure to show the technician: one line, no traceback."""


class Backend(Protocol):
    online: bool  # True when the daemon's API answers for this session

    def describe(self) -> str:
        """One line for the status bar: where the data comes from and as whom."""
        ...

    async def state(self) -> BoxState: ...

    async def devices(self) -> list[DeviceView]: ...

    async def events(self, limit: int = 50) -> list[EventView]: ...

    async def jobs(self, limit: int = 50) -> list[JobView]: ...

    async def links(self) -> LinksView: ...

    async def setpoints(self) -> list[Setpoint]: ...

    async def write_setpoint(
        self, device: str, point: str, value: float, reason: str
    ) -> WriteOutcome: ...

    async def set_safe_mode(self, on: bool) -> str: ...

    async def evidence(self) -> tuple[dict[str, Any] | None, str]:
        """The state document the self-test should judge (None: let it poll) and its source."""
        ...

    async def close(self) -> None: ...
