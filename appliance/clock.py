"""Clocks: every part takes one, so the same code runs live, fast-forwarded, and in replay.

Inside the box time is always timezone-aware UTC. Nothing else in the package may call
``time.time()`` or ``datetime.now()``; it asks its clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the parts need from time."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on this clock's own timeline, for intervals (never goes back)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...

    @property
    def speed(self) -> float:
        """Clock seconds per wall-clock second (1 live; N in a fast demo; inf in replay)."""
        ...


def as_utc(moment: datetime) -> datetime:
    """Normalise to aware UTC; naive datetimes are rejected (they hide bugs at the edges)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: a time zone is required")
    return moment.astimezone(UTC)


def floor_time(moment: datetime, step_s: float) -> datetime:
    """Start of the slot of length ``step_s`` containing ``moment`` (UTC-aligned)."""
    ts = as_utc(moment).timestamp()
    return datetime.fromtimestamp(ts - ts % step_s, tz=UTC)


class SystemClock:
    """The wall clock."""

    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Virtual time running ``speed`` times faster than the wall clock from ``start``.

    ``sunbox demo --speed 600`` uses it so a simulated day passes in 2.4 minutes while the
    daemon, the simulator and the dashboard all see the same virtual time.
    """

    def __init__(self, start: datetime, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = as_utc(start)
        self._speed = float(speed)
        self._wall0 = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def monotonic(self) -> float:
        return (time.monotonic() - self._wall0) * self._speed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class ManualClock:
    """Time that moves only when told: replay and unit tests.

    ``sleep`` advances the clock instantly, so an asyncio loop written for live use runs
    as fast as the CPU allows.
    """

    speed = float("inf")

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._origin = self._now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._origin).total_seconds()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        moment = as_utc(moment)
        if moment < self._now:
            raise ValueError("a clock does not go back")
        self._now = moment

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
