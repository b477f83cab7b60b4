"""Personal data in case facts: which facts are personal, and how they are shown or exported.

A policy lists its personal facts (``personal: [phone, email, address]``). ``show`` and ``history``
mask them unless asked to reveal them; ``casework export --redact`` replaces them entirely.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from casework.domain import AuditEntry

REDACTED = "[redacted]"


def mask_value(value: Any) -> Any:
    """``13800138000`` -> ``13*******00``: enough to recognise, not enough to use."""
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    text = str(value)
    if len(text) <= 4:
        return "*" * len(text)
    return text[:2] + "*" * (len(text) - 4) + text[-2:]


def mask(facts: Mapping[str, Any], personal: Iterable[str], *, redact: bool = False) -> dict[str, Any]:
    """A copy of ``facts`` with every personal fact masked (or, with ``redact``, removed from view)."""
    keys = set(personal)
    return {k: ((REDACTED if redact else mask_value(v)) if k in keys and v is not None else v)
            for k, v in facts.items()}


def personal_in(facts: Mapping[str, Any], personal: Iterable[str]) -> bool:
    """Whether ``facts`` hold any of the ``personal`` facts (nothing to mask otherwise)."""
    return any(k in facts for k in personal)


def masked_entries(entries: Sequence[AuditEntry], personal: Sequence[str]) -> list[AuditEntry]:
    """Audit entries with the ``personal`` facts in each one's data masked (the same entries when none are)."""
    if not personal:
        return list(entries)
    return [replace(e, data=mask(e.data, personal)) if personal_in(e.data, personal) else e for e in entries]
