"""Parsing of the values people type: money, dates, durations, evidence, and "did you mean"."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.errors import InvalidInput

_MONEY = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
_DURATION = re.compile(r"^\s*([0-9]+)\s*(m|min|h|d|w)\s*$")
MAX_DURATION_DAYS = 36_600  # a century: anything longer is a typo, and would overflow dates
_DURATION_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def suggest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Close matches of ``word`` among ``choices``, best first."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean X?)`` when a close match exists, else the empty string (always, for a ``word`` that is
    not text: ``Engine.open(5, ...)`` is refused as an unknown kind, not crashed on)."""
    if not isinstance(word, str):
        return ""
    close = suggest(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def one_of(word: str, choices: Collection[str], what: str, field: str | None = None) -> str:
    """Return ``word`` if it is one of ``choices``; else raise InvalidInput naming them all."""
    if isinstance(word, str) and word in choices:  # no copy of the choices: intake asks for every named fact
        return word
    options = list(choices)
    raise InvalidInput(
        f"unknown {what} {word!r}{did_you_mean(word, options)}; expected one of: {', '.join(options)}",
        field=field or what,
        value=word,
    )


def parse_money(value: object, field: str = "amount") -> Decimal:
    """A non-negative amount with at most two decimals, from a decimal string or int.

    Floats are refused: money never passes through binary floating point.

    >>> parse_money("59.00")
    Decimal('59.00')
    """
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, bool | float):
        raise InvalidInput(
            f"{field} {value!r} is not a decimal string; write money as a string like \"59.00\"",
            field=field,
            value=value,
        )
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidInput(f"{field} {value!r} is not an amount; expected a decimal like 59.00", field=field)
    if not _MONEY.match(text):
        if text.startswith("-"):
            why = "amounts cannot be negative"
        elif re.match(r"^[0-9]+\.[0-9]{3,}$", text):
            why = "at most 2 decimal places"
        else:
            why = "expected a decimal like 59.00"
        raise InvalidInput(f"{field} {value!r} is not a valid amount: {why}", field=field, value=value)
    return Decimal(text)  # the pattern above admits only what Decimal reads


def money_str(amount: Decimal) -> str:
    """Canonical decimal string with two places: ``Decimal('5') -> '5.00'``."""
    return str(amount.quantize(Decimal("0.01")))


def parse_instant(value: object, field: str = "date", tz: tzinfo = UTC) -> datetime:
    """An ISO date or datetime as an aware datetime; a bare date is midnight in ``tz``."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    if not isinstance(value, str):
        raise InvalidInput(
            f"{field} {value!r} is not a date; expected an ISO date (2026-11-02) or datetime "
            "(2026-11-02T14:30:00+08:00)",
            field=field,
            value=value,
        )
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=tz)
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(
            f"{field} {value!r} is not a date; expected an ISO date (2026-11-02) or datetime "
            "(2026-11-02T14:30:00+08:00)",
            field=field,
            value=value,
        ) from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def normalize_date_text(value: object, field: str, tz: tzinfo = UTC) -> str:
    """Validate an ISO date/datetime and return it as canonical text (dates stay dates; a time of day
    without an offset is read in ``tz``)."""
    if isinstance(value, datetime):
        return parse_instant(value, field, tz).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and len(value.strip()) == 10:
        parse_instant(value, field)
        return value.strip()
    return parse_instant(value, field, tz).isoformat()


def parse_zone(name: object, field: str = "timezone") -> ZoneInfo:
    """An IANA time zone by name (``Asia/Shanghai``, ``UTC``); InvalidInput naming it otherwise."""
    try:
        if isinstance(name, str) and name.strip():
            return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise InvalidInput(f"unknown time zone {name!r}; use an IANA name like Asia/Shanghai or UTC", field=field,
                       value=name)


def parse_duration(text: object, field: str = "duration") -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w`` as a timedelta (never a bare number)."""
    if not isinstance(text, str) or not (m := _DURATION.match(text)):
        raise InvalidInput(
            f"{field} {text!r} is not a duration; write a whole number and a unit, like 30m, 24h, 7d, 2w",
            field=field,
            value=text,
        )
    seconds = int(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds > MAX_DURATION_DAYS * 86400:
        raise InvalidInput(f"{field} {text!r} is too long; at most {MAX_DURATION_DAYS} days", field=field, value=text)
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """``7 days``, ``7 days 2 hours``, ``3 hours 5 minutes``: the two largest units that are not zero."""
    seconds = max(0, int(delta.total_seconds()))
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 minutes"


def parse_evidence(text: str) -> dict[str, str | None]:
    """``TYPE`` or ``TYPE=REFERENCE`` as ``{"type": TYPE, "ref": REFERENCE or None}``."""
    kind, sep, ref = text.partition("=")
    kind = kind.strip()
    if not kind or (sep and not ref.strip()):
        raise InvalidInput(
            f"evidence {text!r} is malformed; expected TYPE or TYPE=REFERENCE, like photo=IMG_0042.jpg",
            field="evidence",
            value=text,
        )
    return {"type": kind, "ref": ref.strip() or None}
