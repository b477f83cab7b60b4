"""Canonical JSON text: sorted keys, no spaces, UTF-8 kept as is (what rows store and hashes cover).

``json.dumps`` with these options builds a new encoder on every call; the hot path encodes a few
small documents per transition, so the C encoder is built once here. It is checked against
``json.dumps`` on a probe at import and ``json.dumps`` is used instead when it differs or is absent
(another Python), so the text is the same either way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from json.encoder import encode_basestring
from typing import Any

Encode = Callable[[Any], str]

_PROBE = {"b": [1, -2.5, None, True, False, 'é"\\\n\u2028'], "a": {"z": "x", "y": [], "x": {}}, "c": 10**20}


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encoder(default: Callable[[Any], Any] | None = None) -> Encode:
    """A function giving ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    default=default)``."""
    plain: Encode = partial(json.dumps, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return plain
    try:
        # No circular-reference check (markers None): a value referring to itself raises RecursionError
        # rather than ValueError; what is encoded here was normalised first, which refuses such values.
        chunks = make(None, default or _refuse, encode_basestring, None, ":", ",", True, False, True)
        if "".join(chunks(_PROBE, 0)) != plain(_PROBE):
            return plain
    except Exception:  # a different C encoder signature
        return plain

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


canonical: Encode = encoder(str)  # audit hashes: anything unexpected becomes its str()
strict: Encode = encoder()  # stored facts: only JSON types
