"""Queries on the published policy version: the chain of publications, and what the version list shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa

from casework._store.rows import Reader
from casework._store.tables import cases, policies, publications
from casework._store.transaction import Transaction
from casework.audit import GENESIS, AuditKey, publication_hash


class Publication(NamedTuple):
    """One row of the publication chain, as stored."""

    seq: int
    hash: str
    file: str
    actor: str
    role: str
    at: datetime
    prev_hash: str
    chain_hash: str
    mac: str | None


class VersionRow(NamedTuple):
    """A stored policy version as ``casework policy versions`` lists it."""

    seq: int
    hash: str
    label: str
    name: str
    loaded_at: datetime


def _publication(r: Reader, row: Any) -> Publication:
    seq, h, file, actor, role, at, prev, chain, mac = row
    return Publication(int(seq), h, file, actor, role, r.codec.time.at(at), prev, chain, mac)


def _select() -> sa.Select[Any]:
    p = publications.c
    return sa.select(p.seq, p.hash, p.file, p.actor, p.role, p.published_at, p.prev_hash, p.chain_hash, p.mac)


def latest(r: Reader) -> Publication | None:
    """The newest publication: the version in force for new cases (None: nothing was ever published)."""
    statement = r.db.statement("published_last", lambda: _select().order_by(publications.c.seq.desc()).limit(1))
    row = r.run(statement).fetchone()
    return None if row is None else _publication(r, row)


def every(r: Reader) -> list[Publication]:
    """Every publication, oldest first."""
    statement = r.db.statement("published_all", lambda: _select().order_by(publications.c.seq))
    return [_publication(r, row) for row in r.run(statement).fetchall()]


def append(tx: Transaction, policy_hash: str, file: str, actor: str, role: str, now: datetime,
           key: AuditKey | None) -> Publication:
    """Append a publication after the newest one (UniqueViolation if another writer took its place first)."""
    last = latest(tx)
    seq, prev = (last.seq + 1, last.chain_hash) if last else (1, GENESIS)
    at = now.astimezone(UTC)
    chain = publication_hash(prev, seq=seq, policy_hash=policy_hash, file=file, actor=actor, role=role,
                             at=at.isoformat())
    p = Publication(seq, policy_hash, file, actor, role, at, prev, chain,
                    key.publication_mac(chain) if key is not None else None)
    statement = tx.db.statement("published_put", lambda: publications.insert(), column_keys=(
        "seq", "hash", "file", "actor", "role", "published_at", "prev_hash", "chain_hash", "mac"))
    tx.run(statement, {"seq": p.seq, "hash": p.hash, "file": p.file, "actor": p.actor, "role": p.role,
                       "published_at": tx.codec.time.store(p.at), "prev_hash": p.prev_hash,
                       "chain_hash": p.chain_hash, "mac": p.mac})
    return p


def versions(r: Reader) -> list[VersionRow]:
    """Every stored version, oldest first, without its text."""
    c = policies.c
    statement = r.db.statement("policy_list", lambda: sa.select(c.seq, c.hash, c.label, c.name, c.loaded_at)
                               .order_by(c.seq))
    return [VersionRow(int(seq), h, label, name, r.codec.time.at(at))
            for seq, h, label, name, at in r.run(statement).fetchall()]


def pinned(r: Reader) -> dict[str, tuple[int, int]]:
    """``{version hash: (cases pinned to it, of which open)}``."""
    c = cases.c
    statement = r.db.statement("policy_pinned", lambda: sa.select(
        c.policy_hash, sa.func.count(), sa.func.sum(sa.case((c.is_open.is_(True), 1), else_=0)))
        .group_by(c.policy_hash))
    return {h: (int(n), int(o or 0)) for h, n, o in r.run(statement).fetchall()}
