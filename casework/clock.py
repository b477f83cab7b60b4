"""Clocks. The engine asks its clock for "now", so tests and simulations can fix or move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def system_clock() -> datetime:
    """The real time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved. ``FixedClock("2026-11-22T10:00:00+08:00")``."""

    def __init__(self, at: datetime | str) -> None:
        value = datetime.fromisoformat(at) if isinstance(at, str) else at
        if value.tzinfo is None:
            raise ValueError(f"FixedClock needs a timezone-aware time, got {at!r}")
        self.now = value

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by keyword units (``days=3``, ``hours=2``)."""
        self.now = self.now + (delta if delta is not None else timedelta(**kwargs))
        return self.now

    def set(self, at: datetime | str) -> None:
        value = datetime.fromisoformat(at) if isinstance(at, str) else at
        if value.tzinfo is None:
            raise ValueError(f"FixedClock needs a timezone-aware time, got {at!r}")
        self.now = value
