"""The audit trail's integrity: canonical hashing of entries (replaying a trail is :mod:`casework.replay`).

Each entry's hash is SHA-256 over a canonical JSON serialisation of every recorded column plus the
previous entry's hash, so changing, removing or reordering any entry breaks the chain from there on.
Pure functions: the store persists, this module judges.
"""

from __future__ import annotations

import hashlib
from typing import Any

from casework.domain import AuditEntry
from casework.jsontext import canonical, canonical_bytes, fragment

GENESIS = "0" * 64
# Engine-level events that record something about a case without moving it through its machine.
META_EVENTS = frozenset({"sla_breach", "adopt_policy"})


def policy_chain_hash(prev: str, policy_hash: str) -> str:
    """The link of one policy version in the chain of every version the database has used."""
    return hashlib.sha256(f"{prev}:{policy_hash}".encode()).hexdigest()


def entry_hash(
    *, number: str, seq: int, at: str, event: str, from_state: str | None, to_state: str | None,
    outcome: str, actor: str, role: str, channel: str | None, verdicts: Any, data: Any,
    policy_hash: str, prev_hash: str, verdicts_text: str | None = None, data_text: str | None = None,
) -> str:
    """SHA-256 of the canonical JSON of every column and the previous hash.

    ``verdicts_text`` / ``data_text``, when given, are ``canonical(verdicts)`` / ``canonical(data)``
    already made (a transition serialises them once, for the hash and for the row alike).
    """
    payload = {
        "actor": actor, "at": at, "channel": channel,
        "data": fragment(data_text if data_text is not None else canonical(data)),
        "event": event, "from": from_state, "number": number, "outcome": outcome, "policy": policy_hash,
        "prev": prev_hash, "role": role, "seq": seq, "to": to_state,
        "verdicts": fragment(verdicts_text if verdicts_text is not None else canonical(verdicts)),
    }
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()


def hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        number=entry.number, seq=entry.seq, at=entry.at.isoformat(), event=entry.event,
        from_state=entry.from_state, to_state=entry.to_state, outcome=entry.outcome, actor=entry.actor,
        role=entry.role, channel=entry.channel, verdicts=entry.verdicts, data=entry.data,
        policy_hash=entry.policy.hash, prev_hash=entry.prev_hash,
    )
