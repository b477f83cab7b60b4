"""Every query on casework's tables, each written once (the writes: ``casework._store.transaction``).

A :class:`Reader` works on the cursor of an open scope: a short read transaction, or the write
transaction that :class:`~casework._store.transaction.Transaction` (a Reader that also writes) holds. ``Store.get`` and
``Transaction.get`` are therefore one query, decoded by one codec (on SQLite the write transaction's
reads the global chain's head with it: see ``Transaction.get``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from casework import facts as F
from casework._store.codec import Codec, StoredCase
from casework._store.connecting import Cursor, Statement
from casework._store.driver import Database
from casework._store.tables import SEAL_KEY, audit, cases, idem, meta, policies
from casework.audit import GENESIS
from casework.domain import AuditEntry, Case, PolicyRef
from casework.errors import InvalidInput, Unreadable

IN_CHUNK = 500  # values per IN (...) list: well under every driver's limit on bound values
Opened = tuple[Case, AuditEntry, tuple[str, str] | None]  # a new case, its opening entry, the entry's texts
# A sealed or waiting entry as the global chain sees it: gseq, row id, case id, number, seq, hash, link, mac.
ChainRow = tuple[int, int, int, str, int, str, str | None, str | None]


_AUDIT_AT = {c.name: i for i, c in enumerate(audit.columns)}  # a raw audit row's column positions


@dataclass(frozen=True)
class Filters:
    """What ``find`` narrows cases by (every given filter must hold)."""

    kind: str | None = None
    state: str | None = None
    order_id: str | None = None
    customer: str | None = None
    queue: str | None = None
    open_only: bool = False
    due_before: datetime | None = None
    assignee: str | None = None
    unassigned: bool = False  # open cases nobody is assigned to
    channel: str | None = None
    text: str | None = None  # in the order id, the customer or a note of the thread (any case)
    states: tuple[tuple[str, str], ...] | None = None  # (kind, state) pairs: in one of them


def case_key(number: str) -> str:
    """A case number as the rows hold it (numbers are read in any case: RF-… = rf-…); InvalidInput unless text."""
    if not isinstance(number, str):
        raise InvalidInput(f"case number {number!r}: expected text, like RF-20261122-000001", field="number",
                           value=number)
    return F.check_text(number, "case number", F.MAX_ID).upper()


def chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[lo:lo + IN_CHUNK] for lo in range(0, len(values), IN_CHUNK)]


class Reader:
    """Queries on one open scope's cursor."""

    def __init__(self, db: Database, codec: Codec, cursor: Cursor, refs: dict[str, PolicyRef]) -> None:
        self.db, self.codec, self.cursor, self._refs = db, codec, cursor, refs

    def run(self, statement: Statement, values: dict[str, Any] | None = None) -> Cursor:
        return self.send(statement.sql, statement.params(values))

    def send(self, sql: str, params: Any, *, many: bool = False) -> Cursor:
        """Run SQL on the scope's cursor; a database error comes out as the StoreError it means, here
        and now (a uniqueness race as UniqueViolation), not as the driver's own exception."""
        try:
            if many:
                self.cursor.executemany(sql, params)
            else:
                self.cursor.execute(sql, params)
        except self.db.driver_error as exc:
            raise self.db.failure(exc) or exc from None
        return self.cursor

    # ---- cases ------------------------------------------------------------------------------------
    def get(self, number: str) -> StoredCase | None:
        found = self.run(self.db.statement("get_case", case_by_number),
                         {"number": case_key(number)}).fetchone()
        return None if found is None else self.codec.stored_case(found, self.ref_of)

    def get_many(self, numbers: Sequence[str]) -> dict[str, StoredCase]:
        """The cases with these numbers (those that exist), by number."""
        found: dict[str, StoredCase] = {}
        for chunk in chunks(numbers):
            for values in self.run(*self._among("get_many", cases.c.number, chunk, sa.select(cases))).fetchall():
                stored = self.codec.stored_case(values, self.ref_of)
                found[stored.case.number] = stored
        return found

    def _among(self, name: str, column: Any, values: Sequence[Any], query: Any) -> tuple[Statement, dict[str, Any]]:
        """``query`` narrowed to rows whose ``column`` is one of ``values``, and its parameters: compiled once
        per number of values (a batch's statements repeat), from one expanding parameter (which SQLAlchemy
        compiles some ten times faster than as many parameters of their own)."""
        statement = self.db.statement(f"{name}:{len(values)}", lambda: query.where(
            column.in_(sa.bindparam("among", [None] * len(values), expanding=True))))
        return statement, dict(zip(statement.keys, values, strict=True))

    def numbers_like(self, number: str, limit: int = 200) -> list[str]:
        """Case numbers sharing a prefix with ``number``, in any case (candidates for "did you mean")."""
        statement = self.db.statement("numbers_like", lambda: sa.select(cases.c.number).where(
            cases.c.number.ilike(sa.bindparam("stem"))).order_by(cases.c.id.desc()).limit(sa.bindparam("limit")))
        return [r[0] for r in self.run(statement, {"stem": f"{number[:3]}%", "limit": limit}).fetchall()]

    def find(self, filters: Filters, limit: int | None = 100, offset: int = 0) -> list[Case]:
        c, f = cases.c, filters
        q = sa.select(cases)
        for column, value in ((c.kind, f.kind), (c.state, f.state), (c.order_id, f.order_id),
                              (c.customer, f.customer), (c.queue, f.queue), (c.assignee, f.assignee),
                              (c.channel, f.channel)):
            if value:
                q = q.where(column == value)
        if f.unassigned:
            q = q.where(c.assignee.is_(None))
        if f.states is not None:
            q = q.where(sa.or_(sa.false(), *(sa.and_(c.kind == k, c.state == s) for k, s in f.states)))
        if f.text:
            q = q.where(self._mentions(f.text))
        if f.open_only or f.due_before is not None or f.unassigned:
            q = q.where(c.is_open.is_(True))
        if f.due_before is not None:
            # Most overdue first: walks the (state, due_at) index of open cases instead of sorting
            # every match, so the cost stays flat however many cases there are.
            q = q.where(c.due_at.is_not(None)).where(c.due_at <= self.codec.time.store(f.due_before))
            q = q.order_by(c.due_at, c.id)
        else:
            q = q.order_by(c.id.desc())
        q = q.offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return [self.codec.stored_case(v, self.ref_of).case for v in self.run(self.db.compile(q)).fetchall()]

    def _mentions(self, text: str) -> Any:
        """Cases whose order id or customer contains ``text``, or with an applied entry whose note does (in any
        case: ILIKE; SQLite folds ASCII letters only). The note is read out of the entry's JSON data."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if self.db.name == "postgresql":
            note: Any = sa.cast(audit.c.data, JSONB)["note"].astext
        else:
            note = sa.func.json_extract(audit.c.data, "$.note")
        noted = sa.exists().where(audit.c.case_id == cases.c.id).where(audit.c.outcome == "applied").where(
            note.ilike(like, escape="\\"))
        return sa.or_(cases.c.order_id.ilike(like, escape="\\"), cases.c.customer.ilike(like, escape="\\"), noted)

    def due_numbers(self, now: datetime, limit: int | None = None) -> list[str]:
        """Numbers of open cases with a deadline at or before ``now``, most overdue first."""
        q = (sa.select(cases.c.number).where(cases.c.is_open.is_(True)).where(cases.c.due_at.is_not(None))
             .where(cases.c.due_at <= self.codec.time.store(now)).order_by(cases.c.due_at, cases.c.id))
        if limit is not None:
            q = q.limit(limit)
        return [r[0] for r in self.run(self.db.compile(q)).fetchall()]

    def count_open(self, kind: str | None = None, state: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(cases).where(cases.c.is_open.is_(True))
        if kind:
            q = q.where(cases.c.kind == kind)
        if state:
            q = q.where(cases.c.state == state)
        return int(self.run(self.db.compile(q)).fetchone()[0])

    def open_page(self, after: int, batch: int, kind: str | None, state: str | None) -> list[StoredCase]:
        """Up to ``batch`` open cases with ids above ``after``, in id order."""
        q = sa.select(cases).where(cases.c.is_open.is_(True)).where(cases.c.id > after)
        if kind:
            q = q.where(cases.c.kind == kind)
        if state:
            q = q.where(cases.c.state == state)
        rows = self.run(self.db.compile(q.order_by(cases.c.id).limit(batch))).fetchall()
        return [self.codec.stored_case(v, self.ref_of) for v in rows]

    def case_keys(self, after: int, batch: int, since: datetime | None = None, until: datetime | None = None,
                  kind: str | None = None) -> list[tuple[int, str]]:
        """``(id, number)`` of up to ``batch`` cases with ids above ``after`` (opened in ``[since, until)``)."""
        q = sa.select(cases.c.id, cases.c.number).where(cases.c.id > after)
        if since is not None:
            q = q.where(cases.c.opened_at >= self.codec.time.store(since))
        if until is not None:
            q = q.where(cases.c.opened_at < self.codec.time.store(until))
        if kind is not None:
            q = q.where(cases.c.kind == kind)
        return [(r[0], r[1]) for r in self.run(self.db.compile(q.order_by(cases.c.id).limit(batch))).fetchall()]

    def cases_by_id(self, ids: Sequence[int]) -> list[StoredCase]:
        rows = self.run(self.db.compile(sa.select(cases).where(cases.c.id.in_(list(ids))).order_by(cases.c.id)))
        return [self.codec.stored_case(v, self.ref_of) for v in rows.fetchall()]

    # ---- audit entries ----------------------------------------------------------------------------
    def history(self, number: str) -> list[AuditEntry]:
        statement = self.db.statement("history", lambda: sa.select(audit).where(
            audit.c.number == sa.bindparam("number")).order_by(audit.c.seq))
        rows = self.run(statement, {"number": case_key(number)}).fetchall()
        return [self.codec.entry(v, self.ref_of) for v in rows]

    def trails(self, ids: Sequence[int], until: datetime | None = None) -> dict[int, list[AuditEntry]]:
        """The audit entries of these cases (before ``until``), each case's in sequence order."""
        q = sa.select(audit).where(audit.c.case_id.in_(list(ids)))
        if until is not None:
            q = q.where(audit.c.at < self.codec.time.store(until))
        by_case: dict[int, list[AuditEntry]] = {i: [] for i in ids}
        for values in self.run(self.db.compile(q.order_by(audit.c.case_id, audit.c.seq))).fetchall():
            by_case[values[1]].append(self.codec.entry(values, self.ref_of))  # values[1]: case_id
        return by_case

    def last_entry_times(self, numbers: Sequence[str]) -> dict[str, datetime]:
        """The time of each of these cases' newest audit entry (applied or refused), by number."""
        found: dict[str, datetime] = {}
        for chunk in chunks(numbers):
            query = sa.select(audit.c.number, sa.func.max(audit.c.at)).group_by(audit.c.number)
            found.update((r[0], self.codec.time.at(r[1]))
                         for r in self.run(*self._among("last_entry_times", audit.c.number, chunk, query)).fetchall())
        return found

    def orphan_entries(self) -> list[tuple[str, int, int]]:
        """``(number, seq, case id)`` of the audit entries that name a case whose row does not exist."""
        statement = self.db.statement("orphans", lambda: sa.select(audit.c.number, audit.c.seq, audit.c.case_id)
                                      .where(audit.c.case_id.is_not(None))
                                      .where(~sa.exists().where(cases.c.id == audit.c.case_id))
                                      .order_by(audit.c.id))
        return [(r[0], r[1], r[2]) for r in self.run(statement).fetchall()]

    def refused_openings(self, prefix: str | None = None,
                         damaged: list[tuple[str, int | None, str]] | None = None) -> list[AuditEntry]:
        """The openings refused (entries of no case), in the order written; of one kind's series (``RF``) if given.
        With ``damaged``, a row that cannot be decoded is listed there ``(number, seq, why)`` instead of raising."""
        q = sa.select(audit).where(audit.c.case_id.is_(None))
        if prefix is not None:
            q = q.where(audit.c.number.like(f"{prefix}-%"))
        found = []
        for v in self.run(self.db.compile(q.order_by(audit.c.id))).fetchall():
            try:
                found.append(self.codec.entry(v, self.ref_of))
            except Unreadable as exc:
                if damaged is None:
                    raise
                number, seq = v[_AUDIT_AT["number"]], v[_AUDIT_AT["seq"]]
                damaged.append((str(number), seq if isinstance(seq, int) else None, str(exc)))
        return found

    # ---- the global chain ---------------------------------------------------------------------------
    def chain_key(self) -> str:
        """The id of the audit key the chain is written with ('' if none)."""
        statement = self.db.statement("chain_key", lambda: sa.select(meta.c.value).where(meta.c.key == SEAL_KEY))
        row = self.run(statement).fetchone()
        return row[0] if row else ""

    def chain_head(self) -> tuple[int, str]:
        """``(gseq, link)`` of the last sealed entry (``(0, GENESIS)`` when none is)."""
        row = self.run(self.db.statement("chain_head", chain_head_query)).fetchone()
        return head_of(row[0], row[1]) if row else head_of(None, None)

    def chain_page(self, after: int, until: int, batch: int) -> list[ChainRow]:
        """Sealed entries with places in ``(after, until]``, in place order, ``batch`` at most."""
        a = audit.c
        statement = self.db.statement("chain_page", lambda: sa.select(
            a.gseq, a.id, a.case_id, a.number, a.seq, a.hash, a.link, a.mac).where(
            a.gseq > sa.bindparam("after")).where(a.gseq <= sa.bindparam("until")).order_by(a.gseq).limit(
            sa.bindparam("batch")))
        return [tuple(r) for r in self.run(statement, {"after": after, "until": until, "batch": batch}).fetchall()]

    def unsealed(self) -> list[ChainRow]:
        """Entries not sealed yet, in id order."""
        a = audit.c
        statement = self.db.statement("unsealed", lambda: sa.select(
            a.gseq, a.id, a.case_id, a.number, a.seq, a.hash, a.link, a.mac).where(a.gseq.is_(None)).order_by(a.id))
        return [tuple(r) for r in self.run(statement).fetchall()]

    # ---- idempotency keys --------------------------------------------------------------------------
    def idempotent_result(self, actor: str, key: str, request: str) -> tuple[str, str, str] | None:
        """``(request fingerprint, description, result JSON)`` stored for ``actor``'s idempotency key.

        Keys stored before they were scoped per caller (schema 3 and older: actor '') answer only the very
        request they were stored for (its fingerprint names the actor): another caller's key is not theirs.
        """
        statement = self.db.statement("idem_get", lambda: sa.select(
            idem.c.actor, idem.c.request, idem.c.description, idem.c.result).where(
            idem.c.key == sa.bindparam("key")).where(idem.c.actor.in_([sa.bindparam("actor"), ""])))
        rows = sorted(self.run(statement, {"key": key, "actor": actor}).fetchall(), key=lambda r: r[0] == "")
        for row in rows:
            if row[0] == actor or row[1] == request:
                return row[1], row[2], row[3]
        return None

    # ---- policy versions ----------------------------------------------------------------------------
    def ref_of(self, policy_hash: str) -> PolicyRef:
        """The reference (label and hash) of a stored policy version, made once per version."""
        ref = self._refs.get(policy_hash)
        if ref is None:
            statement = self.db.statement("policy_label", lambda: sa.select(policies.c.label).where(
                policies.c.hash == sa.bindparam("hash")))
            row = self.run(statement, {"hash": policy_hash}).fetchone()
            if row is None:  # not stored (yet): a label of "?", asked again next time
                return PolicyRef("?", policy_hash)
            ref = self._refs[policy_hash] = PolicyRef(row[0], policy_hash)
        return ref

    def policy_source(self, policy_hash: str) -> tuple[str, str] | None:
        statement = self.db.statement("policy_source", lambda: sa.select(policies.c.name, policies.c.source).where(
            policies.c.hash == sa.bindparam("hash")))
        row = self.run(statement, {"hash": policy_hash}).fetchone()
        return (row[0], row[1]) if row else None

    def policy_versions(self) -> list[tuple[int, str, str, str, str, str, str]]:
        """``(seq, hash, prev_hash, chain_hash, source, personal, label)`` of every stored version, in order."""
        c = policies.c
        statement = self.db.statement("policy_versions", lambda: sa.select(
            c.seq, c.hash, c.prev_hash, c.chain_hash, c.source, c.personal, c.label).order_by(c.seq))
        return [tuple(r) for r in self.run(statement).fetchall()]

    def schema_version(self) -> str | None:
        statement = self.db.statement("schema_version", lambda: sa.select(meta.c.value).where(
            meta.c.key == "schema"))
        row = self.run(statement).fetchone()
        return row[0] if row else None


def chain_head_query() -> Any:
    """The last sealed entry's place and link (no row when none is sealed)."""
    a = audit.c
    return sa.select(a.gseq, a.link).where(a.gseq.is_not(None)).order_by(a.gseq.desc()).limit(1)


def case_by_number(with_head: bool = False) -> Any:
    """The case row with the bound ``number``; ``with_head``: followed by the chain head's place and link (NULL,
    NULL when none is sealed), as two scalar subqueries of the same statement (each one seek of the index on
    ``gseq``; a join to the head would have SQLite materialise it, which costs more than a statement of its own)."""
    query = sa.select(cases).where(cases.c.number == sa.bindparam("number"))
    if not with_head:
        return query
    head = chain_head_query()
    return query.add_columns(head.with_only_columns(audit.c.gseq).scalar_subquery(),
                             head.with_only_columns(audit.c.link).scalar_subquery())


def head_of(gseq: int | None, link: str | None) -> tuple[int, str]:
    return (int(gseq), str(link)) if gseq is not None else (0, GENESIS)
