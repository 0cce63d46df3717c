"""Injected time. Nothing in the supervisor reads the wall clock directly or sleeps for real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The time source every component is given."""

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait; a simulated clock advances instead of sleeping."""
        ...


class SystemClock:
    """The real clock, for the service."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(seconds)


class SimClock:
    """A manual clock: ``sleep`` and ``advance`` move time forward instantly."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(timedelta(seconds=seconds))

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot go backwards: {delta!r}")
        self._now += delta

    def set(self, when: datetime) -> None:
        if when < self._now:
            raise ValueError(f"a clock cannot go backwards: {when!r} < {self._now!r}")
        self._now = when
