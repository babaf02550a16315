"""Time as a port: the system clock for production, a settable one for tests.

Every datetime in securepractice is timezone-aware UTC. The pure core never
reads a clock; services ask a `Clock` and pass ``now`` down.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from securepractice.errors import InvalidInput

__all__ = ["Clock", "FakeClock", "SystemClock", "require_utc"]


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


def require_utc(moment: datetime, *, field: str = "now") -> datetime:
    """Return ``moment`` converted to UTC; refuse a naive datetime.

    A naive datetime has no defined instant, and mixing one with aware ones
    is how expiry bugs start.
    """
    if moment.tzinfo is timezone.utc:
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{field} must be a timezone-aware datetime", field=field, code="time.naive"
        )
    return moment.astimezone(timezone.utc)


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Return the current time in UTC."""
        return datetime.now(timezone.utc)


class FakeClock:
    """A clock that moves only when told to: tests use it instead of ``sleep``."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = require_utc(start or datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the time this clock was last set or advanced to."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; return the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise InvalidInput("a clock only moves forward", field="delta", code="time.backward")
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment`` (aware, any time zone)."""
        moment = require_utc(moment, field="moment")
        with self._lock:
            self._now = moment

    def __repr__(self) -> str:
        return f"FakeClock({self.now().isoformat()})"
