"""The transactional outbox: a change row written with each audit entry it publishes, read back in commit order.

A change row is keyed by its entry's (case id, seq) and holds what the entry does not: the case's kind,
version and facts as the entry left them. Its order and global id are the entry's place in the global
chain (``gseq``), so there is one ordering of the database, not two. Places are handed out by the holder
of the chain's seal, who keeps it until its commit (``casework._store.chain``): a place becomes visible
only after every smaller place has, and a reader reading ``gseq > cursor`` never skips past one that
commits later. Relays keep their cursor (the last global id the broker acknowledged) in ``relay_cursors``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from casework._store.codec import AUDIT_COLUMNS
from casework._store.tables import audit, outbox, relay_cursors
from casework.changes import Change, change_json, masked, outbox_mode
from casework.domain import AuditEntry, Case, reasons_of
from casework.errors import Unreadable
from casework.jsontext import canonical_bytes, fragment, parse, strict
from casework.privacy import mask

if TYPE_CHECKING:
    from casework._store.rows import Reader
    from casework._store.transaction import Transaction

# An entry as a transaction appends it: its case's row id, the entry, its texts when made, the case after it
# (row id and case None: an opening refused, an entry of no case, which changes no case and is no change).
Appended = tuple[int | None, AuditEntry, tuple[str, str] | None, Case | None]
# A change as the relay sends it: its global id, kind, event, case number, seq, and body (``Change.to_json()``
# as UTF-8 JSON).
Published = tuple[int, str, str, str, int, bytes]
_GSEQ = AUDIT_COLUMNS.index("gseq")
_WIDTH = len(AUDIT_COLUMNS)
_NUMBER, _SEQ, _AT, _EVENT, _FROM, _TO, _OUTCOME, _ACTOR, _ROLE, _CHANNEL, _VERDICTS, _DATA, _POLICY = map(
    AUDIT_COLUMNS.index, ("number", "seq", "at", "event", "from_state", "to_state", "outcome", "actor", "role",
                          "channel", "verdicts", "data", "policy_hash"))


class Outbox:
    """What one Store publishes: which entries get a change row (``mode``: ``applied``, ``all``, ``off``),
    who hears of the changes a transaction wrote once it committed (``after_commit``); reading the changes
    and the relays' cursors, through the store's read scope (``read``) and transactions (``transaction``)."""

    def __init__(self, read: Callable[[], AbstractContextManager[Reader]],
                 transaction: Callable[[], AbstractContextManager[Transaction]], seal: Callable[[], None], *,
                 sqlite: bool, mode: str = "applied") -> None:
        self._read, self._transaction, self._seal, self._sqlite = read, transaction, seal, sqlite
        self.mode = outbox_mode(mode)
        self.after_commit: Callable[[Sequence[Change]], None] | None = None

    def changes(self, after: int, limit: int) -> list[Change]:
        """Up to ``limit`` changes after global id ``after``, in commit order. Entries waiting for the chain's
        seal (PostgreSQL) are sealed first, if no writer holds it, so a quiet database holds none back."""
        self._sealed()
        with self._read() as r:
            return changes_page(r, after, limit)

    def published(self, after: int, limit: int, personal: Callable[[str], Sequence[str]]) -> list[Published]:
        """As :meth:`changes`, each change in the form the relay sends (see :func:`published_page`)."""
        self._sealed()
        with self._read() as r:
            return published_page(r, after, limit, personal)

    def _sealed(self) -> None:
        if not self._sqlite:
            with self._read() as r:
                waiting = any_unsealed(r)
            if waiting:
                self._seal()

    def cursor(self, name: str) -> int | None:
        """The global id relay ``name`` has published up to (None: it never ran)."""
        with self._read() as r:
            return cursor_of(r, name)

    def save_cursor(self, name: str, position: int, at: datetime, *, rewind: bool = False) -> None:
        """Move relay ``name``'s cursor to ``position`` (forward only, unless ``rewind``)."""
        with self._transaction() as tx:
            save_cursor(tx, name, position, at, rewind=rewind)

    def write(self, tx: Transaction, entries: Sequence[Appended], rows: Sequence[dict[str, Any]]) -> list[Change]:
        """Insert the change rows of ``entries`` (their audit rows, sealed or waiting, are ``rows``) that the mode
        publishes; returns every entry as a Change when someone listens after commit (else nothing)."""
        mode = self.mode
        if mode != "off":
            published = [(case_id, entry.seq, case) for case_id, entry, _, case in entries
                         if case is not None and (mode == "all" or entry.outcome == "applied")]
            if published:
                insert = tx.db.statement("insert_change", lambda: outbox.insert(),
                                         column_keys=("case_id", "seq", "kind", "version", "facts"))
                params = [insert.params({"case_id": case_id, "seq": seq, "kind": case.kind, "version": case.version,
                                         "facts": strict(case.facts)}) for case_id, seq, case in published]
                tx.send(insert.sql, params[0] if len(params) == 1 else params, many=len(params) > 1)
        if self.after_commit is None:
            return []
        return [Change(row["gseq"], case.kind, case.version, case.facts, entry)
                for (_, entry, _, case), row in zip(entries, rows, strict=True) if case is not None]


def changes_page(reader: Reader, after: int, limit: int) -> list[Change]:
    """Up to ``limit`` changes with global ids above ``after``, in global-id (commit) order."""
    return [_change(reader, r) for r in _page(reader, after, limit)]


def published_page(reader: Reader, after: int, limit: int, personal: Callable[[str], Sequence[str]]
                   ) -> list[Published]:
    """The changes of :func:`changes_page`, each with its body: ``Change.to_json()`` as UTF-8 JSON, the facts that
    ``personal(policy hash)`` names masked (as ``masked`` masks a Change), byte for byte.

    Why not through ``Change``: decoding an entry and its facts and encoding them again cost the relay about as
    much as publishing. The stored facts and data are canonical JSON already, the very text ``to_json`` would be
    encoded to, so they go into the body as they are; only a text that may hold a personal fact (the fact's name
    as a JSON key appears in it) is read and masked. The verdicts, which a body shows only as the reasons among
    them, are read only if they may hold one (see :func:`_reasons`; a verdicts text damaged so that it holds no
    ``false`` is not read, and its change goes out with no reasons, as it would have had: ``verify`` finds the
    damage). A row orjson cannot encode so (a whole number beyond 64 bits in a reason or a masked text) or a
    part of it that does not read (its time, its verdicts when read) goes the long way, through ``Change``
    (which says what is damaged, and stops the relay: a damaged facts or data text is read before it goes into
    a body, so no message carries a body that is not JSON).
    """
    found: list[Published] = []
    masks: dict[str, tuple[Sequence[str], re.Pattern[str] | None]] = {}  # by policy hash: personal facts, as keys
    for r in _page(reader, after, limit):
        number, seq, event, kind, policy = r[_NUMBER], r[_SEQ], r[_EVENT], r[_WIDTH], r[_POLICY]
        names, keys = masks.get(policy) or masks.setdefault(policy, _personal(personal(policy)))
        try:
            body = canonical_bytes(change_json(
                id=int(r[_GSEQ]), number=number, kind=kind, seq=seq, event=event, from_state=r[_FROM],
                to_state=r[_TO], outcome=r[_OUTCOME], at=reader.codec.time.at(r[_AT]).isoformat(), actor=r[_ACTOR],
                role=r[_ROLE], channel=r[_CHANNEL], reasons=_reasons(r[_VERDICTS]),
                data=_shown(r[_DATA], names, keys), version=int(r[_WIDTH + 1]),
                facts=_shown(r[_WIDTH + 2], names, keys), policy=reader.ref_of(policy).to_json()))
        except (ValueError, TypeError, KeyError):
            body = strict(masked(_change(reader, r), names).to_json()).encode("utf-8")
        found.append((int(r[_GSEQ]), kind, event, number, seq, body))
    return found


def _reasons(text: str) -> list[dict[str, Any]]:
    """The reasons among an entry's stored verdicts. Each verdict is stored with ``passed`` a JSON boolean
    (``Verdict.to_json``), so a text without ``false`` anywhere in it is one whose every verdict passed: it
    holds no reason, and is not read (an applied transition's verdicts, a kilobyte or more, cost more to read
    than the rest of its body to make)."""
    return [] if "false" not in text else reasons_of(parse(text))


def _shown(text: str, names: Sequence[str], keys: re.Pattern[str] | None) -> Any:
    """Stored facts or data as a change shows them: the text as it is, or read and masked if it may name one of
    the personal facts ``names`` (``keys`` finds any of them as a JSON key)."""
    value = parse(text)  # also for the text that goes in as it is: a damaged one must not reach a body
    return mask(value, names) if keys is not None and keys.search(text) else fragment(text)


def _page(reader: Reader, after: int, limit: int) -> list[Any]:
    """The rows (the audit entry's columns, then the change's kind, version and facts) of up to ``limit`` changes
    with global ids above ``after``, in global-id order."""
    o, a = outbox.c, audit.c
    statement = reader.db.statement("changes", lambda: sa.select(audit, o.kind, o.version, o.facts).select_from(
        outbox.join(audit, sa.and_(a.case_id == o.case_id, a.seq == o.seq))).where(
        a.gseq > sa.bindparam("after")).order_by(a.gseq).limit(sa.bindparam("limit")))
    rows: list[Any] = reader.run(statement, {"after": after, "limit": limit}).fetchall()
    return rows


def _personal(names: Sequence[str]) -> tuple[Sequence[str], re.Pattern[str] | None]:
    """The personal facts ``names`` and a pattern finding any of them as a JSON key (None: there are none)."""
    return names, re.compile("|".join(re.escape(strict(name) + ":") for name in names)) if names else None


def _change(reader: Reader, r: Sequence[Any]) -> Change:
    entry = reader.codec.entry(r[:_WIDTH], reader.ref_of)  # Unreadable, naming the entry, when it is damaged
    try:
        facts = parse(r[_WIDTH + 2])
    except ValueError as exc:
        raise Unreadable(f"case {entry.number}: unreadable change of audit entry {entry.seq} ({exc})") from None
    return Change(int(r[_GSEQ]), r[_WIDTH], int(r[_WIDTH + 1]), facts, entry)


def any_unsealed(reader: Reader) -> bool:
    """Whether an entry waits to be sealed into the chain (one probe of the partial index)."""
    statement = reader.db.statement("any_unsealed", lambda: sa.select(audit.c.id).where(
        audit.c.gseq.is_(None)).limit(1))
    return reader.run(statement).fetchone() is not None


def cursor_of(reader: Reader, name: str) -> int | None:
    """The position relay ``name`` has published up to (None: it never ran)."""
    statement = reader.db.statement("relay_cursor", lambda: sa.select(relay_cursors.c.position).where(
        relay_cursors.c.name == sa.bindparam("name")))
    row = reader.run(statement, {"name": name}).fetchone()
    return None if row is None else int(row[0])


def save_cursor(tx: Transaction, name: str, position: int, at: datetime, *, rewind: bool) -> None:
    """Store relay ``name``'s position; only forward unless ``rewind`` (two relays of one name never move it back)."""
    guard = "" if rewind else " WHERE r.position < excluded.position"
    statement = tx.db.statement(f"relay_cursor_put:{rewind}", lambda: sa.text(
        f"INSERT INTO {tx.db.footprint.table(relay_cursors.name)} AS r (name, position, updated_at) "
        "VALUES (:name, :position, :at) "
        "ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at" + guard))
    tx.run(statement, {"name": name, "position": position, "at": tx.codec.time.store(at)})
