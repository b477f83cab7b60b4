"""The functions casework adds to CEL: ``money('500.00')``, ``date('2026-11-11')``, ``days(14)``, ``latest(...)``,
``earliest(...)``; and money as whole minor units, exact.

Each refuses what it does not take with a ValueError naming what it takes, which ``policy check`` places
at the function's name in the file (a wrong number of arguments, a list of money given to ``latest``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from casework.values import parse_instant

OWN_FUNCTIONS = ("money", "date", "days", "latest", "earliest")


_CANONICAL = re.compile(r"-?[0-9]+\.[0-9]{2}")  # money as stored: a decimal string with two places


def to_minor(value: Any) -> int:
    """Money (a decimal string, an int, a Decimal) as whole minor units; exact, or ValueError."""
    if type(value) is str and _CANONICAL.fullmatch(value):  # the common case, without a Decimal
        return int(value.replace(".", "", 1))
    if isinstance(value, float | bool):
        raise ValueError(f"{value!r}: money is never a float; write it as a decimal string")
    try:
        units = Decimal(str(value).strip()).scaleb(2)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount of money; write it like '500.00'") from None
    if units != units.to_integral_value():
        raise ValueError(f"{value!r} has more than two decimal places")
    return int(units)


def from_minor(units: int) -> str:
    """Whole minor units back as the decimal string people read (``50000`` -> ``"500.00"``)."""
    whole, cents = divmod(abs(units), 100)
    return f"{'-' if units < 0 else ''}{whole}.{cents:02d}"


def _one(example: str, args: tuple[Any, ...]) -> Any:
    if len(args) != 1:
        raise ValueError(f"takes one argument, like {example}; given {len(args)}")
    return args[0]


def _days(*args: Any) -> timedelta:
    n = _one("days(14)", args)
    if not isinstance(n, int) or isinstance(n, bool):
        raise ValueError(f"takes a whole number of days, like days(14); given {n!r}")
    return timedelta(days=n)


def _dates(name: str, args: tuple[Any, ...]) -> list[datetime]:
    """The dates given to latest()/earliest(): several, or one list of them."""
    given = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not given or not all(isinstance(d, datetime) for d in given):
        raise ValueError(f"takes dates, like {name}(delivered, redelivered) or {name}([delivered, shipped])")
    return given


def latest(*dates: Any) -> datetime:
    """The latest of several dates (or of a list of dates)."""
    return max(_dates("latest", dates))


def earliest(*dates: Any) -> datetime:
    """The earliest of several dates (or of a list of dates)."""
    return min(_dates("earliest", dates))


@lru_cache(maxsize=64)
def functions(tz: tzinfo) -> dict[str, Callable[..., Any]]:
    """The functions casework adds to CEL, for a policy in zone ``tz``."""
    return {"money": lambda *a: to_minor(_one("money('500.00')", a)),
            "date": lambda *a: parse_instant(_one("date('2026-11-11')", a), "date", tz).astimezone(UTC),
            "days": _days, "latest": latest, "earliest": earliest}


# In a check, money is a CEL duration: it combines with money alone (not with numbers, dates or counts).
CHECK_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **functions(UTC), "money": lambda *a: timedelta(seconds=to_minor(_one("money('500.00')", a)))}
