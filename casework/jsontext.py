"""Canonical JSON text: sorted keys, no spaces, UTF-8 kept as is (what rows store and hashes cover).

The text is, by definition, ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``. orjson (a maintained C library) produces exactly that text for every value
casework writes: text, whole numbers, booleans, nulls, lists and objects with text keys. For the
few values orjson refuses (whole numbers beyond 64 bits, non-text keys) the standard library writes
it instead. Floats are not part of casework's data (facts refuse them; verdicts carry whole numbers
and decimal strings), and orjson spells some of them differently (``1e-7`` for ``1e-07``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS
# Times and dataclasses go through ``default`` (as json.dumps would send them) instead of orjson's own forms.
_AS_JSON_WOULD = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _stdlib(value: Any, default: Callable[[Any], Any] | None) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)


def canonical(value: Any) -> str:
    """The canonical text of ``value``; anything JSON has no type for is written as its ``str()``.

    >>> canonical({"b": [1, None], "a": "退款"})
    '{"a":"退款","b":[1,null]}'
    """
    try:
        return orjson.dumps(value, default=str, option=_AS_JSON_WOULD).decode()
    except TypeError:  # beyond orjson: whole numbers over 64 bits, non-text keys
        return _stdlib(value, str)


def strict(value: Any) -> str:
    """The canonical text of a value made only of JSON types (stored facts); TypeError otherwise."""
    try:
        return orjson.dumps(value, option=_SORTED).decode()
    except TypeError:
        return _stdlib(value, None)


# A whole number orjson reads as a float (beyond 64 bits) has 19 digits or more in a row: a text is searched
# for such a run with its digits made "0" and every other byte " " (a table lookup a byte, at C speed).
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG = b"0" * 19


def parse(text: str | bytes) -> Any:
    """The value of a JSON text, exactly as ``json.loads`` reads it, read by orjson (several times faster) where
    that gives the same value: not for a text holding a run of 19 digits (orjson reads a whole number beyond
    64 bits as a float) nor one orjson refuses (NaN, a lone surrogate), which the standard library reads.

    >>> parse('{"n": 123456789012345678901234567890, "a": "59.00"}')
    {'n': 123456789012345678901234567890, 'a': '59.00'}
    """
    if _LONG not in (text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text).translate(_DIGITS):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


# Canonical text already made, to be embedded as is in a larger document (see ``canonical_bytes``).
fragment = orjson.Fragment


def canonical_bytes(mapping: dict[str, Any]) -> bytes:
    """The canonical UTF-8 bytes of a mapping of text, small whole numbers, nulls and ``fragment``\\ s."""
    return orjson.dumps(mapping, option=_SORTED)
