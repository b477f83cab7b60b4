"""The audit trail's integrity: canonical hashing of entries (replaying a trail is :mod:`casework.replay`).

Each entry's hash is SHA-256 over a canonical JSON serialisation of every recorded column plus the
previous entry's hash, so changing, removing or reordering any entry breaks the chain from there on.
Pure functions: the store persists, this module judges.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from casework.domain import AuditEntry
from casework.jsontext import canonical, canonical_bytes, fragment

GENESIS = "0" * 64
KEY_MIN_BYTES = 16  # an audit key shorter than this could be guessed offline from its published id
# Engine-level events that record something about a case without moving it through its machine (the desk's
# notes and assignments among them, see casework.desk).
META_EVENTS = frozenset({"sla_breach", "adopt_policy", "note", "assign", "prioritize"})


def policy_chain_hash(prev: str, policy_hash: str) -> str:
    """The link of one policy version in the chain of every version the database has used."""
    return hashlib.sha256(f"{prev}:{policy_hash}".encode()).hexdigest()


def publication_hash(prev: str, *, seq: int, policy_hash: str, file: str, actor: str, role: str, at: str) -> str:
    """The link of one publication (a version put in force for new cases) in the chain of every publication:
    SHA-256 of the canonical JSON of what it records and the link before it."""
    return hashlib.sha256(canonical_bytes({"actor": actor, "at": at, "file": file, "policy": policy_hash,
                                           "prev": prev, "role": role, "seq": seq})).hexdigest()


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


class AuditKey:
    """A secret held outside the database that authenticates the audit trail (HMAC-SHA256).

    Whoever can write the database but cannot read the key cannot make an entry, or a link of the
    global chain, that verifies under it. ``id`` names the key without revealing it (an HMAC of a
    fixed text), so a database can say which key wrote it.

    >>> AuditKey("correct horse battery staple").id
    'd7331546a1800b5a'
    """

    __slots__ = ("_mac", "id")

    def __init__(self, secret: bytes | str) -> None:
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        if len(raw.strip()) < KEY_MIN_BYTES:
            raise ValueError(f"an audit key must be at least {KEY_MIN_BYTES} bytes long; got {len(raw.strip())}")
        self._mac = hmac.new(raw.strip(), digestmod=hashlib.sha256)
        self.id = self._digest(b"casework audit key id")[:16]

    def _digest(self, message: bytes) -> str:
        mac = self._mac.copy()  # the key's inner and outer pads, computed once
        mac.update(message)
        return mac.hexdigest()

    def entry_mac(self, entry_hash: str) -> str:
        """Authenticates one entry (its hash covers every column) wherever it ends up in the chain."""
        return self._digest(f"entry:{entry_hash}".encode())

    def publication_mac(self, chain_hash: str) -> str:
        """Authenticates one publication of a policy version (its chain hash covers what it records)."""
        return self._digest(f"publication:{chain_hash}".encode())

    def link(self, prev: str, gseq: int, entry_hash: str) -> str:
        return self._digest(_link_text(prev, gseq, entry_hash))

    def __repr__(self) -> str:
        return f"AuditKey(id={self.id!r})"


def _link_text(prev: str, gseq: int, entry_hash: str) -> bytes:
    return f"{prev}:{gseq}:{entry_hash}".encode()


def chain_link(prev: str, gseq: int, entry_hash: str, key: AuditKey | None = None) -> str:
    """The link of the entry at place ``gseq`` of the global chain: SHA-256 (HMAC under ``key`` for an entry
    written with one) of the previous link, the place and the entry's own hash. Each link covers every link
    before it, so removing, reordering or changing any entry breaks the chain from there to its head."""
    if key is not None:
        return key.link(prev, gseq, entry_hash)
    return hashlib.sha256(_link_text(prev, gseq, entry_hash)).hexdigest()
