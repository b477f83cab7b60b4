"""The store's policy versions: each stored once by content hash on a chain of versions, and the publications
that put one in force (mixed into :class:`casework.store.Store`, the one door; see ``publications``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from casework._store import publications as published
from casework._store.publications import Publication, VersionRow
from casework._store.rows import Reader
from casework._store.transaction import Transaction
from casework.audit import AuditKey, policy_chain_hash
from casework.domain import PolicyRef
from casework.errors import StoreError, UniqueViolation


class PolicyVersions:
    """What :class:`casework.store.Store` keeps of policy versions; it needs the store's reads, transactions,
    URL (for messages), audit key (publications are MACed with it) and its cache of references."""

    url: str
    key: AuditKey | None
    _refs: dict[str, PolicyRef]
    _read: Callable[[], AbstractContextManager[Reader]]
    transaction: Callable[[], Transaction]

    def ref_of(self, policy_hash: str) -> PolicyRef:
        """The reference (label and hash) of a stored policy version."""
        found = self._refs.get(policy_hash)
        if found is not None:
            return found
        with self._read() as r:
            return r.ref_of(policy_hash)

    def policy_source(self, policy_hash: str) -> tuple[str, str] | None:
        """``(name, source text)`` of a stored policy version."""
        with self._read() as r:
            return r.policy_source(policy_hash)

    def save_policy(self, ref: PolicyRef, name: str, source: str, now: datetime,
                    personal: Sequence[str] = ()) -> None:
        """Store a policy version once (by content hash), chained to the newest version stored.

        Two processes storing versions at once may draw the same place in the chain: the loser
        draws again (and stops if the other stored this very version).
        """
        for _ in range(20):
            if self.policy_source(ref.hash) is not None:
                break
            try:
                with self.transaction() as tx:
                    last = tx.last_policy()
                    seq, prev = (last[0] + 1, last[1]) if last else (1, "0" * 64)
                    tx.save_policy(ref.hash, ref.label, name, source, now, policy_chain_hash(prev, ref.hash),
                                   personal, seq, prev)
                break
            except UniqueViolation:
                continue  # this version, or the next place in the chain, was taken meanwhile: look again
        else:  # pragma: no cover - twenty writers in a row took the same place
            raise StoreError(f"could not store policy version {ref.short} in {self.url}: the chain kept moving",
                             url=self.url)
        self._refs[ref.hash] = ref

    def policy_chain(self) -> list[tuple[int, str, str, str]]:
        """``(seq, hash, prev_hash, chain_hash)`` of every stored version, in order."""
        with self._read() as r:
            return [v[:4] for v in r.policy_versions()]

    def policy_labels(self) -> list[tuple[str, str, list[str]]]:
        """``(hash, label, personal facts)`` of every stored version, as stored."""
        with self._read() as r:
            versions = r.policy_versions()
        return [(v[1], v[6], _json_list(v[5])) for v in versions]

    def published(self) -> Publication | None:
        """The newest publication: the version in force for new cases (None when nothing was published)."""
        with self._read() as r:
            return published.latest(r)

    def publications(self) -> list[Publication]:
        with self._read() as r:
            return published.every(r)

    def publish(self, policy_hash: str, file: str, actor: str, role: str, now: datetime) -> Publication:
        """Put the stored version ``policy_hash`` in force: a publication chained to the one before (MACed with the
        audit key, if the store has one). Two publishers at once: the later draws again."""
        for _ in range(20):
            try:
                with self.transaction() as tx:
                    return published.append(tx, policy_hash, file, actor, role, now, self.key)
            except UniqueViolation:
                continue
        raise StoreError(f"could not publish policy version {policy_hash[:12]} in {self.url}: the chain kept "
                         "moving", url=self.url)  # pragma: no cover - twenty publishers in a row

    def policy_list(self) -> tuple[list[VersionRow], dict[str, tuple[int, int]]]:
        """Every stored version (oldest first) and ``{hash: (cases pinned to it, of which open)}``."""
        with self._read() as r:
            return published.versions(r), published.pinned(r)

    def policy_texts(self) -> list[tuple[str, str]]:
        """``(hash, text)`` of every stored version, as stored (whether a text still hashes to its version is
        verification's question, asked with the one content hash)."""
        with self._read() as r:
            versions = r.policy_versions()
        return [(v[1], v[4]) for v in versions]

    def personal_facts(self) -> dict[str, list[str]]:
        """The facts each stored policy version marks personal, by version hash."""
        with self._read() as r:
            versions = r.policy_versions()
        return {v[1]: sorted(_json_list(v[5])) for v in versions}


def _json_list(text: str) -> list[str]:
    try:
        found = json.loads(text)
    except (ValueError, TypeError):
        return []
    return [str(v) for v in found] if isinstance(found, list) else []
