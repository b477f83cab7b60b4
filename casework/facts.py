"""Case facts: the open-ended, JSON-shaped record of what is known about a case.

Known keys are typed and normalised on the way in (money to canonical decimal strings, dates to
ISO text, evidence to ``{"type", "ref"}`` items); any other key is kept as given if it is a JSON
scalar. Reading helpers give typed values back (``Decimal``, aware ``datetime``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

from casework.domain import SYSTEM_ONLY
from casework.errors import InvalidInput
from casework.values import money_str, normalize_date_text, parse_evidence, parse_instant, parse_money

MONEY_FACTS = frozenset({"amount", "paid", "adjustment", "paid_out"})
DATE_FACTS = frozenset({"purchased", "delivered", "shipped"})
INT_FACTS = frozenset({"refunds_last_30_days", "returns_last_30_days", "score", "priority"})
LIST_FACTS = frozenset({"flags", "breaches"})
TEXT_FACTS = frozenset(
    {"order_id", "currency", "category", "reason", "condition", "customer", "channel", "note",
     "resolution", "rejection", "locale", "comment", "queue", "timer", "timer_refused"}
)
# What a customer may add or change with an event when the policy does not say (a role's ``writes``):
# never the facts the rules judge them by.
CUSTOMER_WRITABLE = frozenset({"evidence", "note", "comment", "score", "locale", "tracking", "channel"})
# What a customer may also give when opening a case when the policy does not say (a role's ``opens``): the
# request itself, with what they paid for the order they picked; never a counter or a flag the desk keeps.
CUSTOMER_OPENS = frozenset({"order_id", "amount", "paid", "reason", "category", "condition", "delivered"})
# What money went out, written by the step that pays (the amount approved), never given by anyone.
PAID_OUT = "paid_out"
# Never in an event's data from outside the engine: the values the system keeps (SYSTEM_ONLY, see
# casework.domain), and what was paid out.
ENGINE_KEPT = SYSTEM_ONLY | {PAID_OUT}

MAX_ID = 200  # order ids, customer and actor ids, idempotency keys
MAX_TEXT = 10_000  # notes and other free text
SHORT_FACTS = {"order_id": MAX_ID, "customer": MAX_ID, "channel": 40, "currency": 3, "category": MAX_ID,
               "reason": MAX_ID, "rejection": MAX_ID, "condition": MAX_ID, "locale": 20, "queue": 40}

_CANONICAL_MONEY = re.compile(r"(0|[1-9][0-9]*)\.[0-9][0-9]\Z")

# The catch-all declaration of a policy's ``facts:``: a policy declaring it keeps the facts it does not declare by
# name (as text) instead of refusing them; expressions cannot read them.
CATCH_ALL = "*"

KNOWN_FACTS = MONEY_FACTS | DATE_FACTS | INT_FACTS | LIST_FACTS | TEXT_FACTS | {"evidence"}


def normalize(facts: Mapping[str, Any], tz: tzinfo = UTC, types: Mapping[str, str] | None = None, *,
              field: str = "facts") -> dict[str, Any]:
    """Validate and normalise facts given by a caller; raise :class:`InvalidInput` on a bad value.

    ``tz``: where a time of day written without an offset was read (the policy's zone). ``types``: the
    declared type (``money``, ``date``, ``bool``...) of facts not known by name, normalised as their type says.
    ``field``: what the caller called them (``facts``, an event's ``data``), for the error when they are not a
    mapping.
    """
    if not isinstance(facts, Mapping):
        raise InvalidInput(f"{field} {facts!r}: expected a mapping of fact names to values, like "
                           "{\"amount\": \"59.00\"}", field=field, value=facts)
    out: dict[str, Any] = {}
    for key, value in facts.items():
        if key not in KNOWN_FACTS and (not isinstance(key, str) or not key or not key.replace("_", "").isalnum()):
            raise InvalidInput(
                f"fact name {key!r} is not valid; use letters, digits and underscores", field="fact", value=key
            )
        if value is not None:
            found = _BY_NAME.get(key)
            if found is None:
                found = _BY_TYPE.get(types.get(key, ""), _scalar) if types else _scalar
            out[key] = found(key, value, tz)
    return out


def _money(key: str, value: Any, tz: tzinfo) -> str:
    if isinstance(value, str) and _CANONICAL_MONEY.match(value):
        return value  # already what money_str would give (bulk imports are mostly this)
    return money_str(parse_money(value, key))


def _date(key: str, value: Any, tz: tzinfo) -> str:
    return normalize_date_text(value, key, tz)


def _count(key: str, value: Any, tz: tzinfo) -> int:
    if isinstance(value, int | str):  # (True and False read as words, never as digits)
        text = str(value).strip()
        if text.isascii() and text.isdigit():  # (isdigit alone takes ３ and ٣)
            return int(text)
    raise InvalidInput(f"{key} {value!r} is not a non-negative whole number", field=key, value=value)


def _listed(key: str, value: Any, tz: tzinfo) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple | set | frozenset):
        raise InvalidInput(f"{key} {value!r} is not a list", field=key, value=value)
    return sorted({str(i).strip() for i in items if str(i).strip()})


def _evidence(key: str, value: Any, tz: tzinfo) -> list[dict[str, str | None]]:
    return normalize_evidence(value)


def _currency(key: str, value: Any, tz: tzinfo) -> str:
    text = str(value).strip().upper()
    if len(text) != 3 or not text.isalpha():
        raise InvalidInput(f"currency {value!r} is not a 3-letter ISO code like CNY or USD", field=key)
    return text


def _text(key: str, value: Any, tz: tzinfo) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"{key} {value!r} is not text", field=key, value=value)
    text = str(value).strip()
    if not text:
        raise InvalidInput(f"{key} is empty", field=key, value=value)
    return check_text(text, key, SHORT_FACTS.get(key, MAX_TEXT))


def _scalar(key: str, value: Any, tz: tzinfo) -> Any:
    if isinstance(value, float):
        raise InvalidInput(f"fact {key} {value!r}: floats are not accepted; pass a string", field=key)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return check_text(value, key, MAX_TEXT)
    if isinstance(value, int | bool):
        return value
    raise InvalidInput(f"fact {key} {value!r} is not a text, number or boolean", field=key, value=value)


# How each known fact is normalised, found by its name in one look-up (later groups win: currency is text too).
_BY_NAME: dict[str, Callable[[str, Any, tzinfo], Any]] = {
    **dict.fromkeys(TEXT_FACTS, _text), "currency": _currency, "evidence": _evidence,
    **dict.fromkeys(LIST_FACTS, _listed), **dict.fromkeys(INT_FACTS, _count), **dict.fromkeys(DATE_FACTS, _date),
    **dict.fromkeys(MONEY_FACTS, _money),
}


def _bool(key: str, value: Any, tz: tzinfo) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InvalidInput(f"{key} {value!r} is not true or false", field=key, value=value)


# How a fact the policy declares (and casework does not know by name) is normalised, by its declared type.
_BY_TYPE: dict[str, Callable[[str, Any, tzinfo], Any]] = {
    "money": _money, "date": _date, "datetime": _date, "int": _count, "bool": _bool, "text": _text, "enum": _text,
    "list": _listed, "evidence": _evidence,
}


def normalize_evidence(value: Any) -> list[dict[str, str | None]]:
    items = value if isinstance(value, list | tuple) else [value]
    out: list[dict[str, str | None]] = []
    for item in items:
        if isinstance(item, str):
            out.append(parse_evidence(item))
        elif isinstance(item, Mapping) and isinstance(item.get("type"), str) and item["type"]:
            ref = item.get("ref")
            out.append({"type": item["type"], "ref": None if ref is None else str(ref)})
        else:
            raise InvalidInput(
                f"evidence {item!r} is malformed; expected TYPE or TYPE=REFERENCE", field="evidence", value=item
            )
    return out


def check_whole(value: Any, field: str, low: int = 0, high: int | None = None, what: str = "a whole number") -> int:
    """``value`` if it is a whole number (an int, not a bool) from ``low`` to ``high`` (None: no bound); else
    InvalidInput naming it and what is accepted (``what``: what the number stands for, e.g. "a global id")."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f", {low} or more" if high is None else f" from {low} to {high}"
        raise InvalidInput(f"{field} {value!r}: expected {what}{bound}", field=field, value=value)
    return value


def check_text(value: str, field: str, limit: int) -> str:
    """Refuse text a database cannot store faithfully (NUL bytes) or that is absurdly long."""
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character; remove it", field=field, value=value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{field} {value!r} contains a lone surrogate, which is not a character: give valid "
                               "Unicode text", field=field, value=value.encode("utf-8", "backslashreplace").decode()
                               ) from None
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters long; at most {limit} are accepted",
                           field=field, value=value[:40] + "…")
    return value


def merge(facts: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """Facts after an event: ``data`` overrides keys, except evidence, which accumulates."""
    out = dict(facts)
    for key, value in data.items():
        if key == "evidence":
            seen = {(e["type"], e.get("ref")) for e in out.get("evidence", [])}
            merged = list(out.get("evidence", []))
            for item in value:
                if (item["type"], item.get("ref")) not in seen:
                    merged.append(item)
                    seen.add((item["type"], item.get("ref")))
            out["evidence"] = merged
        elif key in LIST_FACTS:
            out[key] = sorted(set(out.get(key, [])) | set(value))
        else:
            out[key] = value
    return out


def money(facts: Mapping[str, Any], key: str) -> Decimal | None:
    value = facts.get(key)
    return None if value is None else Decimal(str(value))


def instant(facts: Mapping[str, Any], key: str, tz: tzinfo) -> datetime | None:
    value = facts.get(key)
    return None if value is None else parse_instant(value, key, tz)


def evidence_types(facts: Mapping[str, Any]) -> set[str]:
    return {e["type"] for e in facts.get("evidence", [])}
