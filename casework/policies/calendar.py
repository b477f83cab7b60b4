"""The service calendar: when the desk works, and deadlines on wall-clock or service time.

``24h`` is elapsed time: exactly 24 hours later, whatever the desk's hours. ``8 service hours`` counts
only time inside opening hours: a request arriving outside hours waits for the next opening, and
holidays are skipped. All arithmetic is done in UTC, so DST changes in the policy's time zone are
handled exactly (a service day that is 23 or 25 hours long counts its real opening hours).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from casework.errors import InvalidInput
from casework.values import MAX_DURATION_DAYS

_DEADLINE = re.compile(r"^\s*([0-9]+)\s*(m|min|h|d|w)\s*$|^\s*([0-9]+)\s+service\s+(hours?|minutes?)\s*$")
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DAYS = 3 * 366  # a calendar closed for longer than this has no next opening


@dataclass(frozen=True)
class Deadline:
    """A span of wall-clock time, or of service time (``service=True``)."""

    span: timedelta
    service: bool = False

    @classmethod
    def parse(cls, text: object, field: str = "deadline") -> Deadline:
        """``24h``, ``7d`` (wall clock) or ``8 service hours``, ``90 service minutes``."""
        m = _DEADLINE.match(text) if isinstance(text, str) else None
        if m is None:
            raise InvalidInput(
                f"{field} {text!r} is not a deadline; write 30m, 24h, 7d or '8 service hours'",
                field=field, value=text)
        if m.group(1):
            seconds, service = int(m.group(1)) * _UNITS[m.group(2)], False
        else:
            seconds, service = int(m.group(3)) * (3600 if m.group(4).startswith("hour") else 60), True
        if seconds > MAX_DURATION_DAYS * 86400:
            raise InvalidInput(f"{field} {text!r} is too long; at most {MAX_DURATION_DAYS} days", field=field,
                               value=text)
        return cls(timedelta(seconds=seconds), service=service)

    def __str__(self) -> str:
        """As a policy writes it, read back the same: ``24h``, ``90m``, ``8 service hours``, ``90 service minutes``."""
        minutes, unit = int(self.span.total_seconds()) // 60, ("service minutes", "m")
        if minutes % 60 == 0:
            minutes, unit = minutes // 60, ("service hours", "h")
        return f"{minutes} {unit[0]}" if self.service else f"{minutes}{unit[1]}"


@dataclass(frozen=True)
class ServiceCalendar:
    """Opening hours per day in one time zone, with holidays and special days.

    ``hours`` is ``None`` for a desk that never closes. ``special`` maps a date to other hours that
    day (``None``: closed). ``weekdays`` maps 0=Monday..6=Sunday to other hours (``None``: closed).
    """

    tz: ZoneInfo
    hours: tuple[time, time] | None
    holidays: frozenset[date] = frozenset()
    special: Mapping[date, tuple[time, time] | None] = field(default_factory=dict)
    weekdays: Mapping[int, tuple[time, time] | None] = field(default_factory=dict)

    @classmethod
    def always_open(cls, tz: ZoneInfo | None = None) -> ServiceCalendar:
        return cls(tz or ZoneInfo("UTC"), None)

    def hours_on(self, day: date) -> tuple[time, time] | None:
        """Opening and closing time that day (closing <= opening means past midnight), or None."""
        if day in self.special:
            return self.special[day]
        if day in self.holidays:
            return None
        if day.weekday() in self.weekdays:
            return self.weekdays[day.weekday()]
        return self.hours if self.hours is not None else (time(0), time(0))

    def opening(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's open period as UTC datetimes, or None if closed."""
        hours = self.hours_on(day)
        if hours is None:
            return None
        opens, closes = hours
        end_day = day + timedelta(days=1) if closes <= opens else day
        start = datetime.combine(day, opens, self.tz).astimezone(UTC)
        return start, datetime.combine(end_day, closes, self.tz).astimezone(UTC)

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz).date()
        for day in (local - timedelta(days=1), local):
            period = self.opening(day)
            if period and period[0] <= at.astimezone(UTC) < period[1]:
                return True
        return False

    def _periods_from(self, start: datetime) -> Iterable[tuple[datetime, datetime]]:
        day = start.astimezone(self.tz).date() - timedelta(days=1)  # (the day before: a night shift begun then)
        for _ in range(MAX_DAYS + 2):  # up to MAX_DAYS days after start's own
            period = self.opening(day)
            if period is not None and period[1] > start:
                yield max(period[0], start), period[1]
            day += timedelta(days=1)

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself if the desk is open then, else the next opening."""
        for begin, _end in self._periods_from(at.astimezone(UTC)):
            return begin
        raise InvalidInput(f"the service calendar has no opening within {MAX_DAYS} days of {at.isoformat()}")

    def add_service_time(self, start: datetime, span: timedelta) -> datetime:
        """The instant when ``span`` of open time has passed after ``start``."""
        remaining = span
        cursor = start.astimezone(UTC)
        for begin, end in self._periods_from(cursor):
            available = end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise InvalidInput(f"the service calendar has no opening within {MAX_DAYS} days of {start.isoformat()}")

    def service_between(self, start: datetime, end: datetime) -> timedelta:
        """How much open time lies between ``start`` and ``end`` (nothing if ``end`` is not after ``start``)."""
        total = timedelta(0)
        stop = end.astimezone(UTC)
        for begin, close in self._periods_from(start.astimezone(UTC)):
            if begin >= stop:
                break
            total += min(close, stop) - begin
        return total

    def elapsed(self, start: datetime, end: datetime, deadline: Deadline) -> timedelta:
        """The time between ``start`` and ``end`` as ``deadline`` counts it: open time for a deadline in service
        time, else wall-clock time (never negative)."""
        if deadline.service:
            return self.service_between(start, end)
        return max(timedelta(0), end.astimezone(UTC) - start.astimezone(UTC))

    def extend(self, due: datetime, span: timedelta, deadline: Deadline) -> datetime:
        """``due`` pushed by ``span`` counted as ``deadline`` counts (open time, or wall-clock time)."""
        if span <= timedelta(0):
            return due
        return self.deadline(due, Deadline(span, deadline.service))

    def deadline(self, start: datetime, deadline: Deadline) -> datetime:
        """When ``deadline`` runs out for something that started at ``start`` (UTC result)."""
        if deadline.service:
            return self.add_service_time(start, deadline.span)
        return start.astimezone(UTC) + deadline.span
