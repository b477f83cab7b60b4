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


# Canonical text already made, to be embedded as is in a larger document (see ``canonical_bytes``).
fragment = orjson.Fragment


def canonical_bytes(mapping: dict[str, Any]) -> bytes:
    """The canonical UTF-8 bytes of a mapping of text, small whole numbers, nulls and ``fragment``\\ s."""
    return orjson.dumps(mapping, option=_SORTED)
