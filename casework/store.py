"""Persistence: the only module that speaks SQL.

Tables are declared with SQLModel; the hot path (read a case, compare-and-set it, append an audit
entry) runs as prebuilt SQLAlchemy Core statements on one long-lived connection, so a transition
costs one short transaction and no ORM or pool overhead. SQLite (WAL) is the embedded default;
PostgreSQL is used by giving a ``postgresql+psycopg://`` URL.

Concurrency: every write is a compare-and-set on ``cases.version`` (applied transitions) or on
``cases.last_seq`` (refused attempts, which only extend the audit trail). On SQLite a write
transaction starts with ``BEGIN IMMEDIATE`` so two writers queue on the database lock instead of
deadlocking on a lock upgrade.
"""

from __future__ import annotations

import json
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import Column, Field, SQLModel

from casework import jsontext
from casework.domain import AuditEntry, Case, PolicyRef
from casework.errors import SchemaOutOfDate, StoreError

SCHEMA_VERSION = 2
HEAD_REVISION = "0002"  # the Alembic revision that SCHEMA_VERSION corresponds to

# On PostgreSQL the audit table refuses UPDATE and DELETE outright (installed by migration 0002).
APPEND_ONLY_DDL = (
    """CREATE OR REPLACE FUNCTION casework_audit_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP;
    END;
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",
    """CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION casework_audit_append_only()""",
)
# A partial index, written as DDL (same text on both backends) rather than declared on the model: a
# dialect-specific `where=` on the model would load every dialect's module on import (slower CLI).
PARTIAL_INDEX_DDL = ("CREATE INDEX IF NOT EXISTS ix_cases_open_state_due ON cases (state, due_at) "
                     "WHERE is_open AND due_at IS NOT NULL")
DROP_APPEND_ONLY_DDL = ("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: casework stores only timezone-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _dt(nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Meta(SQLModel, table=True):
    __tablename__ = "casework_meta"
    key: str = Field(primary_key=True)
    value: str


class PolicyVersionRow(SQLModel, table=True):
    __tablename__ = "policy_versions"
    hash: str = Field(primary_key=True, max_length=64)
    label: str
    name: str
    source: str
    loaded_at: datetime = _dt()
    seq: int = Field(index=True, unique=True)
    prev_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)
    personal: str = Field(default="[]")  # the version's personal facts (JSON), readable without parsing it


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        sa.Index("ix_cases_kind_state", "kind", "state"),
        sa.Index("ix_cases_state_due", "state", "due_at"),
        sa.Index("ix_cases_open_due", "is_open", "due_at"),
        sa.Index("ix_cases_opened", "opened_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, max_length=40)
    kind: str = Field(max_length=20)
    state: str = Field(max_length=40)
    version: int
    facts: str
    policy_hash: str = Field(max_length=64)
    order_id: str | None = Field(default=None, index=True, max_length=200)
    customer: str | None = Field(default=None, index=True, max_length=200)
    channel: str | None = Field(default=None, max_length=40)
    opened_at: datetime = _dt()
    updated_at: datetime = _dt()
    first_response_due: datetime | None = _dt(nullable=True)
    responded_at: datetime | None = _dt(nullable=True)
    due_at: datetime | None = _dt(nullable=True)
    resolution_due: datetime | None = _dt(nullable=True)
    timer_due: datetime | None = _dt(nullable=True)
    state_since: datetime | None = _dt(nullable=True)
    priority: int = Field(default=1)
    queue: str | None = Field(default=None, max_length=40, index=True)
    is_open: bool = Field(default=True)
    last_seq: int
    last_hash: str = Field(max_length=64)


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "seq", name="uq_audit_case_seq"),
        sa.Index("ix_audit_number_seq", "number", "seq"),
        sa.Index("ix_audit_at", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    number: str = Field(max_length=40)
    seq: int
    at: datetime = _dt()
    event: str = Field(max_length=40)
    from_state: str | None = Field(default=None, max_length=40)
    to_state: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=10)
    actor: str = Field(max_length=200)
    role: str = Field(max_length=40)
    channel: str | None = Field(default=None, max_length=40)
    verdicts: str
    data: str
    policy_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    key: str = Field(primary_key=True, max_length=200)
    request: str = Field(max_length=64)
    description: str
    number: str = Field(max_length=40)
    result: str
    created_at: datetime = _dt()


class CounterRow(SQLModel, table=True):
    __tablename__ = "counters"
    name: str = Field(primary_key=True, max_length=40)
    value: int


cases = CaseRow.__table__  # type: ignore[attr-defined]
audit = AuditRow.__table__  # type: ignore[attr-defined]
policies = PolicyVersionRow.__table__  # type: ignore[attr-defined]
idem = IdempotencyRow.__table__  # type: ignore[attr-defined]
counters = CounterRow.__table__  # type: ignore[attr-defined]
meta = Meta.__table__  # type: ignore[attr-defined]

_GET_CASE = sa.select(cases).where(cases.c.number == sa.bindparam("number"))
_CAS_APPLY = (
    cases.update()
    .where(cases.c.id == sa.bindparam("b_id"))
    .where(cases.c.version == sa.bindparam("b_version"))
    .where(cases.c.last_seq == sa.bindparam("b_last_seq"))
)
_CAS_REFUSE = (
    cases.update()
    .where(cases.c.id == sa.bindparam("b_id"))
    .where(cases.c.last_seq == sa.bindparam("b_last_seq"))
)
_INSERT_AUDIT = audit.insert()


@dataclass(frozen=True)
class StoredCase:
    """A case row with the bookkeeping the engine needs to write it back."""

    id: int
    case: Case
    last_seq: int
    last_hash: str


_dumps = jsontext.strict  # sorted keys, no spaces: one stored text per value


def _row_to_case(row: Any, ref: PolicyRef) -> StoredCase:
    try:
        return _decode_case(row, ref)
    except (ValueError, TypeError, KeyError) as exc:
        raise Unreadable(f"case {row.number}: unreadable row ({exc})") from None


def _row_to_entry(row: Any, ref: PolicyRef) -> AuditEntry:
    try:
        return _decode_entry(row, ref)
    except (ValueError, TypeError, KeyError) as exc:
        raise Unreadable(f"case {row.number}: unreadable audit entry {row.seq} ({exc})") from None


def _as_is(value: Any) -> Any:
    return value


def _decode_case(row: Any, ref: PolicyRef, time: Callable[[Any], Any] = _as_is) -> StoredCase:
    """A case from a row with the ``cases`` columns as attributes; ``time`` reads a stored time
    (SQLAlchemy's column type already has, the hot path's driver rows have not)."""
    case = Case(
        number=row.number, kind=row.kind, state=row.state, version=row.version,
        facts=json.loads(row.facts), policy=ref,
        opened_at=time(row.opened_at), updated_at=time(row.updated_at),
        first_response_due=time(row.first_response_due), responded_at=time(row.responded_at),
        due_at=time(row.due_at), closed=not row.is_open, resolution_due=time(row.resolution_due),
        timer_due=time(row.timer_due), state_since=time(row.state_since),
    )
    return StoredCase(row.id, case, row.last_seq, row.last_hash)


def _decode_entry(row: Any, ref: PolicyRef) -> AuditEntry:
    return AuditEntry(
        number=row.number, seq=row.seq, at=row.at, event=row.event, from_state=row.from_state,
        to_state=row.to_state, outcome=row.outcome, actor=row.actor, role=row.role, channel=row.channel,
        verdicts=json.loads(row.verdicts), data=json.loads(row.data),
        policy=ref,
        prev_hash=row.prev_hash, hash=row.hash,
    )


class Unreadable(StoreError):
    """A stored row cannot be decoded (damaged or edited by hand)."""


class Lost(Exception):
    """A compare-and-set found the row changed (internal; the engine turns it into ConcurrentUpdate)."""

    version: int | None = None  # the version the loser had read


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


class Store:
    """Cases, audit entries and policy versions in one database.

    One long-lived connection serves every call (guarded by a lock, so a Store may be shared by
    threads; for parallel writes use one Store per process or thread).
    """

    def __init__(self, url: str, *, create: bool = True, synchronous: str = "NORMAL", check: bool = True) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._write_intent = False
        self._in_driver_txn = False
        self._labels: dict[str, str] = {}
        self._refs: dict[str, PolicyRef] = {}
        try:
            self.engine: Engine = sa.create_engine(url, poolclass=NullPool)
        except Exception as exc:
            raise StoreError(f"cannot use database {describe_url(url)}: {exc}", url=url) from None
        self.dialect = self.engine.dialect.name
        self.hot = HotPath(self.dialect)
        self._driver_error: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        if self.dialect == "sqlite":
            self._setup_sqlite(synchronous.upper())
        try:
            self._conn: Connection = self.engine.connect()
        except (OperationalError, DBAPIError) as exc:
            raise StoreError(f"cannot open database {describe_url(url)}: {_one_line(exc)}", url=url) from None
        if create:
            self.create_schema()
        if check:
            self._check_schema()

    # ---- connection setup ------------------------------------------------------------------------
    def _setup_sqlite(self, synchronous: str) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"synchronous {synchronous!r}: expected NORMAL, FULL or EXTRA", url=self.url)

        @sa.event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute(f"PRAGMA synchronous = {synchronous}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @sa.event.listens_for(self.engine, "begin")
        def _begin(conn: Connection) -> None:
            if self._in_driver_txn:
                return  # SQLAlchemy joins the transaction the write path began on the driver
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self._write_intent else "BEGIN")

    def create_schema(self) -> None:
        """Create the tables if they do not exist (cheap when they do)."""
        with self._lock:
            try:
                insp = sa.inspect(self._conn)
                if insp.has_table("casework_meta"):  # the usual case: nothing to create, one query
                    if self._conn.in_transaction():
                        self._conn.rollback()
                    return
                ours = [t for t in SQLModel.metadata.tables if insp.has_table(t)]
                if self._conn.in_transaction():
                    self._conn.rollback()
                if "casework_meta" in ours:
                    return
                if ours:
                    raise StoreError(f"{describe_url(self.url)} is not a casework database: it has tables named "
                                     f"{', '.join(ours)} but no casework_meta; refusing to write into it",
                                     url=self.url)
                with self._write():
                    # A new database gets today's schema in one go, stamped with the Alembic head,
                    # exactly as if every migration had run (a test keeps the two in step).
                    SQLModel.metadata.create_all(self._conn)
                    self._conn.exec_driver_sql(PARTIAL_INDEX_DDL)
                    self._conn.execute(meta.insert().values(key="schema", value=str(SCHEMA_VERSION)))
                    self._conn.exec_driver_sql(
                        "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL "
                        "CONSTRAINT alembic_version_pkc PRIMARY KEY)")
                    self._conn.exec_driver_sql("DELETE FROM alembic_version")  # a stale stamp of dropped tables
                    self._conn.exec_driver_sql(f"INSERT INTO alembic_version (version_num) VALUES ('{HEAD_REVISION}')")
                    if self.dialect == "postgresql":
                        for statement in APPEND_ONLY_DDL:
                            self._conn.execute(sa.text(statement))
            except (OperationalError, DBAPIError) as exc:
                raise StoreError(f"cannot create tables in {describe_url(self.url)}: {_one_line(exc)}",
                                 url=self.url) from None

    def schema_version(self) -> str | None:
        """The schema version recorded in the database (None if it has none)."""
        with self._read() as conn:
            row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).first()
        return row.value if row else None

    def upgrade(self) -> tuple[str | None, str]:
        """Run every pending Alembic migration; returns ``(version before, version after)``."""
        from alembic import command
        from alembic.config import Config

        before = None
        with self._lock:
            insp = sa.inspect(self._conn)
            has_meta = insp.has_table("casework_meta")
            if self._conn.in_transaction():
                self._conn.rollback()
        if has_meta:
            before = self.schema_version()
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        try:
            with self._lock:
                self._write_intent = True
                try:
                    with self._conn.begin():
                        self._write_intent = False
                        cfg.attributes["connection"] = self._conn
                        command.upgrade(cfg, "head")
                finally:
                    self._write_intent = False
        except DBAPIError as exc:
            raise StoreError(f"migration failed on {describe_url(self.url)}: {_one_line(exc)}", url=self.url) from None
        return before, self.schema_version() or "?"

    def _check_schema(self) -> None:
        try:
            with self._read() as conn:
                row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).first()
        except (OperationalError, DBAPIError) as exc:
            raise StoreError(f"{describe_url(self.url)} is not a casework database: {_one_line(exc)}",
                             url=self.url) from None
        if row is None:
            raise StoreError(f"{describe_url(self.url)} is not a casework database (no schema version)",
                             url=self.url)
        found = row.value
        if found != str(SCHEMA_VERSION):
            newer = found.isdigit() and int(found) > SCHEMA_VERSION
            hint = ("it was written by a newer casework; upgrade casework" if newer
                    else "run 'casework db upgrade' to bring it up to date")
            raise SchemaOutOfDate(f"{describe_url(self.url)} has schema version {found!r}, this casework needs "
                                  f"{SCHEMA_VERSION}: {hint}", url=self.url)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self.engine.dispose()

    # ---- transactions ----------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._lock:
            self._write_intent = True
            try:
                with self._conn.begin():
                    self._write_intent = False
                    yield self._conn
            finally:
                self._write_intent = False

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._lock:
            try:
                if self._conn.in_transaction() or self._in_driver_txn:
                    yield self._conn
                    return
                with self._conn.begin():
                    yield self._conn
            except IntegrityError:
                raise
            except DBAPIError as exc:
                raise StoreError(f"database error on {describe_url(self.url)}: {_one_line(exc)}",
                                 url=self.url) from None
            except (ValueError, TypeError) as exc:  # a stored value the column type cannot read
                raise Unreadable(f"unreadable row in {describe_url(self.url)}: {exc}", url=self.url) from None

    def transaction(self) -> WriteScope:
        """One write transaction: everything in ``with store.transaction() as tx`` commits together or not at all."""
        return WriteScope(self)

    def _db_failure(self, exc: BaseException) -> StoreError | None:
        """The StoreError a database failure becomes; None for anything else and for uniqueness races
        (an idempotency key used twice at once), which the engine resolves."""
        if isinstance(exc, IntegrityError):
            return None
        if isinstance(exc, DBAPIError) or (isinstance(exc, self._driver_error) and not is_unique_violation(exc)):
            return StoreError(f"database error on {describe_url(self.url)}: {_one_line(exc)}", url=self.url)
        return None

    # ---- policy versions -------------------------------------------------------------------------
    def ref_of(self, policy_hash: str) -> PolicyRef:
        """The reference (label and hash) of a stored policy version, made once per version."""
        ref = self._refs.get(policy_hash)
        if ref is None:
            ref = self._refs[policy_hash] = PolicyRef(self.label_of(policy_hash), policy_hash)
        return ref

    def label_of(self, policy_hash: str) -> str:
        label = self._labels.get(policy_hash)
        if label is None:
            with self._read() as conn:
                row = conn.execute(sa.select(policies.c.label).where(policies.c.hash == policy_hash)).first()
            label = row.label if row else "?"
            self._labels[policy_hash] = label
        return label

    def policy_source(self, policy_hash: str) -> tuple[str, str] | None:
        """``(name, source text)`` of a stored policy version."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(policies.c.name, policies.c.source).where(policies.c.hash == policy_hash)).first()
        return (row.name, row.source) if row else None

    def save_policy(self, ref: PolicyRef, name: str, source: str, now: datetime,
                    chain: Any, personal: list[str] | None = None) -> None:
        """Store a policy version once (by content hash), chained to the previous version."""
        with self._read() as conn:
            exists = conn.execute(sa.select(policies.c.hash).where(policies.c.hash == ref.hash)).first()
        if exists:
            self._labels[ref.hash] = ref.label
            self._refs.pop(ref.hash, None)
            return
        try:
            with self._write() as conn:
                if conn.execute(sa.select(policies.c.hash).where(policies.c.hash == ref.hash)).first():
                    return
                last = conn.execute(sa.select(policies.c.seq, policies.c.chain_hash)
                                    .order_by(policies.c.seq.desc()).limit(1)).first()
                seq = (last.seq + 1) if last else 1
                prev = last.chain_hash if last else "0" * 64
                conn.execute(policies.insert().values(
                    hash=ref.hash, label=ref.label, name=name, source=source, loaded_at=now, seq=seq,
                    prev_hash=prev, chain_hash=chain(prev, ref.hash), personal=_dumps(sorted(personal or []))))
        except IntegrityError:
            pass  # another process stored the same version (or took the same seq) first
        self._labels[ref.hash] = ref.label
        self._refs.pop(ref.hash, None)

    def altered_policies(self) -> list[str]:
        """Hashes of stored policy versions whose text no longer hashes to them."""
        import hashlib

        with self._read() as conn:
            rows = conn.execute(sa.select(policies.c.hash, policies.c.source)).all()
        return [r.hash for r in rows if hashlib.sha256(r.source.encode("utf-8")).hexdigest() != r.hash]

    def personal_facts(self) -> list[str]:
        """Every fact any stored policy version marks personal (masking errs on the side of privacy)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(policies.c.personal)).all()
        found: set[str] = set()
        for r in rows:
            try:
                found.update(json.loads(r.personal))
            except (ValueError, TypeError):
                continue
        return sorted(found)

    def policy_chain(self) -> list[tuple[int, str, str, str]]:
        """``(seq, hash, prev_hash, chain_hash)`` of every stored version, in order."""
        with self._read() as conn:
            rows = conn.execute(sa.select(policies.c.seq, policies.c.hash, policies.c.prev_hash,
                                          policies.c.chain_hash).order_by(policies.c.seq)).all()
        return [(r.seq, r.hash, r.prev_hash, r.chain_hash) for r in rows]

    # ---- reads ------------------------------------------------------------------------------------
    def get(self, number: str) -> StoredCase | None:
        with self._read() as conn:
            row = conn.execute(_GET_CASE, {"number": number}).first()
            if row is None:
                return None
            return _row_to_case(row, self.ref_of(row.policy_hash))

    def numbers_like(self, number: str, limit: int = 200) -> list[str]:
        """Case numbers sharing a prefix with ``number`` (candidates for "did you mean")."""
        stem = number[:3]
        with self._read() as conn:
            rows = conn.execute(sa.select(cases.c.number).where(cases.c.number.like(f"{stem}%"))
                                .order_by(cases.c.id.desc()).limit(limit)).all()
        return [r.number for r in rows]

    def history(self, number: str) -> list[AuditEntry]:
        with self._read() as conn:
            rows = conn.execute(sa.select(audit).where(audit.c.number == number).order_by(audit.c.seq)).all()
        return [_row_to_entry(r, self.ref_of(r.policy_hash)) for r in rows]

    def find(self, *, kind: str | None = None, state: str | None = None, order_id: str | None = None,
             customer: str | None = None, open_only: bool = False, due_before: datetime | None = None,
             queue: str | None = None,
             limit: int | None = 100, offset: int = 0) -> list[Case]:
        q = sa.select(cases)
        if kind:
            q = q.where(cases.c.kind == kind)
        if state:
            q = q.where(cases.c.state == state)
        if order_id:
            q = q.where(cases.c.order_id == order_id)
        if customer:
            q = q.where(cases.c.customer == customer)
        if queue:
            q = q.where(cases.c.queue == queue)
        if open_only or due_before is not None:
            q = q.where(cases.c.is_open.is_(True))
        if due_before is not None:
            # Most overdue first: walks the (state, due_at) index of open cases instead of sorting
            # every match, so the cost stays flat however many cases there are.
            q = q.where(cases.c.due_at.is_not(None)).where(cases.c.due_at <= due_before)
            q = q.order_by(cases.c.due_at, cases.c.id).offset(offset)
        else:
            q = q.order_by(cases.c.id.desc()).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [_row_to_case(r, self.ref_of(r.policy_hash)).case for r in rows]

    def due_numbers(self, now: datetime, limit: int | None = None) -> list[str]:
        """Numbers of open cases with a deadline at or before ``now``, most overdue first."""
        q = (sa.select(cases.c.number).where(cases.c.is_open.is_(True)).where(cases.c.due_at.is_not(None))
             .where(cases.c.due_at <= now).order_by(cases.c.due_at, cases.c.id))
        if limit is not None:
            q = q.limit(limit)
        with self._read() as conn:
            return [r.number for r in conn.execute(q).all()]

    def audit_between(self, since: datetime | None, until: datetime | None, kind: str | None = None,
                      batch: int = 500) -> Iterator[tuple[str, str | None, datetime, AuditEntry]]:
        """The audit trails of the cases opened in ``[since, until)`` (``None``: no bound), for reports.

        Yields ``(case kind, case channel, case opened_at, entry)`` case by case (in case order), each
        case's entries in sequence order; entries at or after ``until`` are left out. Cases are read
        ``batch`` at a time, keyset-paginated, each batch in its own short read transaction.
        """
        last_id = 0
        while True:
            q = sa.select(cases.c.id).where(cases.c.id > last_id)
            if since is not None:
                q = q.where(cases.c.opened_at >= since)
            if until is not None:
                q = q.where(cases.c.opened_at < until)
            if kind is not None:
                q = q.where(cases.c.kind == kind)
            with self._read() as conn:
                ids = [r.id for r in conn.execute(q.order_by(cases.c.id).limit(batch)).all()]
                if not ids:
                    return
                e = (sa.select(audit, cases.c.kind.label("case_kind"), cases.c.channel.label("case_channel"),
                               cases.c.opened_at.label("case_opened_at"))
                     .join_from(audit, cases, audit.c.case_id == cases.c.id).where(audit.c.case_id.in_(ids)))
                if until is not None:
                    e = e.where(audit.c.at < until)
                rows = conn.execute(e.order_by(audit.c.case_id, audit.c.seq)).all()
            for r in rows:
                yield (r.case_kind, r.case_channel, r.case_opened_at,
                       _row_to_entry(r, self.ref_of(r.policy_hash)))
            last_id = ids[-1]

    def count_open(self, kind: str | None = None, state: str | None = None) -> int:
        """How many open (not closed) cases there are, optionally of one kind and in one state."""
        q = sa.select(sa.func.count()).select_from(cases).where(cases.c.is_open.is_(True))
        if kind:
            q = q.where(cases.c.kind == kind)
        if state:
            q = q.where(cases.c.state == state)
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def iter_open(self, kind: str | None = None, state: str | None = None, batch: int = 2000) -> Iterator[Case]:
        """Every open (not closed) case, oldest first, read ``batch`` rows at a time (for simulations).

        Keyset-paginated on the primary key, each batch in its own short read: a scan of 100,000 cases
        never holds a transaction open, and a case opened during the scan may or may not be seen.
        """
        last_id = 0
        while True:
            q = sa.select(cases).where(cases.c.is_open.is_(True)).where(cases.c.id > last_id)
            if kind:
                q = q.where(cases.c.kind == kind)
            if state:
                q = q.where(cases.c.state == state)
            with self._read() as conn:
                rows = conn.execute(q.order_by(cases.c.id).limit(batch)).all()
            if not rows:
                return
            for r in rows:
                yield _row_to_case(r, self.ref_of(r.policy_hash)).case
            last_id = rows[-1].id

    def iter_all(self, batch: int = 500) -> Iterator[tuple[str, StoredCase | None, list[AuditEntry], str | None]]:
        """Every case with its whole audit trail, in batches (for verify).

        Yields ``(number, stored case, entries, problem)``; a row that cannot be read is yielded with
        ``stored=None`` and the problem, so one damaged row never hides the others.
        """
        last_id = 0
        while True:
            with self._read() as conn:
                keys = conn.execute(sa.select(cases.c.id, cases.c.number).where(cases.c.id > last_id)
                                    .order_by(cases.c.id).limit(batch)).all()
            if not keys:
                return
            try:
                yield from self._load_batch([(k.id, k.number) for k in keys])
            except Unreadable:
                for key in keys:  # find the damaged rows one by one
                    try:
                        yield from self._load_batch([(key.id, key.number)])
                    except Unreadable as exc:
                        yield key.number, None, [], str(exc)
            last_id = keys[-1].id

    def _load_batch(self, keys: list[tuple[int, str]]
                    ) -> list[tuple[str, StoredCase | None, list[AuditEntry], str | None]]:
        ids = [k[0] for k in keys]
        with self._read() as conn:
            rows = conn.execute(sa.select(cases).where(cases.c.id.in_(ids)).order_by(cases.c.id)).all()
            entries = conn.execute(sa.select(audit).where(audit.c.case_id.in_(ids))
                                   .order_by(audit.c.case_id, audit.c.seq)).all()
        by_case: dict[int, list[AuditEntry]] = {i: [] for i in ids}
        for e in entries:
            by_case[e.case_id].append(_row_to_entry(e, self.ref_of(e.policy_hash)))
        return [(r.number, _row_to_case(r, self.ref_of(r.policy_hash)), by_case[r.id], None)
                for r in rows]

    def idempotent_result(self, key: str) -> tuple[str, str, str] | None:
        """``(request fingerprint, description, result JSON)`` stored for an idempotency key."""
        with self._read() as conn:
            row = conn.execute(sa.select(idem.c.request, idem.c.description, idem.c.result)
                               .where(idem.c.key == key)).first()
        return (row.request, row.description, row.result) if row else None



# ---- the hot path ------------------------------------------------------------------------------------
# Reading a case, compare-and-setting it and appending its audit entry run on every transition, so
# they go straight to the driver's cursor with SQL rendered once per dialect (inside the transaction
# SQLAlchemy began): no statement compilation, result wrapping or type processing per call. The
# values written are exactly those SQLAlchemy would write (a test reads them back through SQLAlchemy).
_CASE_COLUMNS = ("id", "number", "kind", "state", "version", "facts", "policy_hash", "opened_at", "updated_at",
                 "first_response_due", "responded_at", "due_at", "is_open", "resolution_due", "timer_due",
                 "state_since", "last_seq", "last_hash")
_HotCase = namedtuple("_HotCase", _CASE_COLUMNS)  # type: ignore[misc]  # the hot path's case row
_SET_COLUMNS = ("state", "version", "facts", "updated_at", "first_response_due", "responded_at", "due_at",
                "is_open", "resolution_due", "timer_due", "state_since", "priority", "queue", "last_seq",
                "last_hash", "policy_hash")
_AUDIT_COLUMNS = ("case_id", "number", "seq", "at", "event", "from_state", "to_state", "outcome", "actor", "role",
                  "channel", "verdicts", "data", "policy_hash", "prev_hash", "hash")
# Every column of a new case row (as Transaction.insert_case writes it), for bulk imports.
_INSERT_CASE_COLUMNS = ("number", "kind", "state", "version", "facts", "policy_hash", "order_id", "customer", "channel",
                        "opened_at", "updated_at", "first_response_due", "responded_at", "due_at", "resolution_due",
                        "timer_due", "state_since", "priority", "queue", "is_open", "last_seq", "last_hash")


def _sqlite_time_form(text: str) -> bool:
    """``YYYY-MM-DD HH:MM:SS.ffffff``: how a time is stored on SQLite (``fromisoformat`` accepts more)."""
    return (len(text) == 26 and text[4] == "-" and text[7] == "-" and text[10] == " " and text[13] == ":"
            and text[16] == ":" and text[19] == "." and text[:4].isdigit())


class HotPath:
    """Pre-rendered SQL and value codecs of one dialect, for the per-transition statements."""

    def __init__(self, dialect: str) -> None:
        mark = "?" if dialect == "sqlite" else "%s"
        self.sqlite = dialect == "sqlite"
        self.select_cases = f"SELECT {', '.join(_CASE_COLUMNS)} FROM cases"
        self.get_case = f"{self.select_cases} WHERE number = {mark}"
        sets = ", ".join(f"{c} = {mark}" for c in _SET_COLUMNS)
        self.apply = f"UPDATE cases SET {sets} WHERE id = {mark} AND version = {mark} AND last_seq = {mark}"
        self.refuse = (f"UPDATE cases SET last_seq = {mark}, last_hash = {mark} "
                       f"WHERE id = {mark} AND last_seq = {mark}")
        self.append = (f"INSERT INTO audit_entries ({', '.join(_AUDIT_COLUMNS)}) "
                       f"VALUES ({', '.join([mark] * len(_AUDIT_COLUMNS))})")
        self.insert_case = (f"INSERT INTO cases ({', '.join(_INSERT_CASE_COLUMNS)}) "
                            f"VALUES ({', '.join([mark] * len(_INSERT_CASE_COLUMNS))})")
        self.mark = mark

    def bind_time(self, value: datetime | None) -> Any:
        if value is None:
            return None
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLAlchemy's SQLite DateTime stores this exact text; PostgreSQL takes the naive UTC value.
        return naive.isoformat(" ", "microseconds") if self.sqlite else naive

    def canonical_time(self, stored: Any) -> bool:
        """Whether a stored time is exactly what ``bind_time`` writes (so it can be written back as is)."""
        if not self.sqlite:
            return True  # the driver hands back the naive UTC datetime it was given
        return type(stored) is str and _sqlite_time_form(stored)

    def read_time(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            if self.canonical_time(value):
                return datetime.fromisoformat(value + "+00:00")  # aware in one step (replace() is slow)
            value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise ValueError(f"{value!r} is not a time")
        return value.replace(tzinfo=UTC)


class WriteScope:
    """``with store.transaction() as tx``: begun on the driver; committed, or rolled back on any exception.

    Statements sent through SQLAlchemy meanwhile join the same transaction. (A class rather than a
    generator context manager: it is on every transition's path.)
    """

    __slots__ = ("_raw", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> Transaction:
        store = self._store
        store._lock.acquire()
        try:
            tx = Transaction(store, store._conn)
            self._raw = raw = store._conn.connection.driver_connection
            if store.dialect == "sqlite":
                raw.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            store._in_driver_txn = True
            return tx
        except BaseException as exc:
            store._lock.release()
            failure = store._db_failure(exc)
            if failure is not None:
                raise failure from None
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        store = self._store
        ending: BaseException | None = None  # a failure of the commit or the rollback itself
        try:
            if exc is None:
                try:
                    if store._conn.in_transaction():
                        store._conn.commit()
                    else:
                        self._raw.commit()  # type: ignore[union-attr]
                except BaseException:
                    with suppress(Exception):
                        self._rollback()  # do not leave the connection inside a failed transaction
                    raise
            else:
                self._rollback()
        except BaseException as failed:
            ending = failed
        finally:
            store._in_driver_txn = False
            store._lock.release()
        problem = ending if ending is not None else exc
        if problem is not None:
            failure = store._db_failure(problem)
            if failure is not None:
                raise failure from None
            if ending is not None:
                raise ending

    def _rollback(self) -> None:
        if self._store._conn.in_transaction():
            self._store._conn.rollback()
        else:
            self._raw.rollback()  # type: ignore[union-attr]


class Transaction:
    """The writes of one engine command, inside one database transaction."""

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store = store
        self.conn = conn
        self.hot = store.hot
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        # Times already in their stored form: those just read (written back unchanged by the
        # update) and those bound once in this transaction (``now`` recurs in a row and its entry).
        self._bound: dict[datetime, Any] = {}
        self._parsed: dict[Any, datetime] = {}  # and the other way round, for the times read

    def get(self, number: str) -> StoredCase | None:
        self.cursor.execute(self.hot.get_case, (number,))
        found = self.cursor.fetchone()
        return None if found is None else self._decode(found)

    def get_many(self, numbers: Sequence[str]) -> dict[str, StoredCase]:
        """The cases with these numbers (those that exist), read in one statement."""
        found: dict[str, StoredCase] = {}
        for lo in range(0, len(numbers), 500):  # well under every driver's limit on bound values
            chunk = list(numbers[lo:lo + 500])
            self.cursor.execute(f"{self.hot.select_cases} WHERE number IN ({', '.join([self.hot.mark] * len(chunk))})",
                                chunk)
            for values in self.cursor.fetchall():
                stored = self._decode(values)
                found[stored.case.number] = stored
        return found

    def _decode(self, values: Sequence[Any]) -> StoredCase:
        row: Any = _HotCase._make(values)
        try:
            return _decode_case(row, self.store.ref_of(row.policy_hash), self._read_time)
        except (ValueError, TypeError, KeyError) as exc:
            raise Unreadable(f"case {row.number}: unreadable row ({exc})") from None

    def _read_time(self, stored_form: Any) -> datetime | None:
        """A stored time as an aware datetime; remembered in its stored form, to be written back as is."""
        if stored_form is None:
            return None
        known = self._parsed.get(stored_form)  # a case's times often coincide (opened = updated = state since)
        if known is not None:
            return known
        value = self.hot.read_time(stored_form)
        if value is not None and self.hot.canonical_time(stored_form):
            self._bound[value] = stored_form
            self._parsed[stored_form] = value
        return value

    def next_number(self, name: str) -> int:
        """The next value of a named counter; safe across processes sharing the database."""
        row = self.conn.execute(
            sa.text("INSERT INTO counters (name, value) VALUES (:name, 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value"),
            {"name": name},
        ).first()
        assert row is not None
        return int(row[0])

    def next_numbers(self, name: str, count: int) -> range:
        """The next ``count`` values of a named counter, in one update (contiguous, never shared)."""
        row = self.conn.execute(
            sa.text("INSERT INTO counters (name, value) VALUES (:name, :n) "
                    "ON CONFLICT (name) DO UPDATE SET value = counters.value + :n RETURNING value"),
            {"name": name, "n": count},
        ).first()
        assert row is not None
        last = int(row[0])
        return range(last - count + 1, last + 1)

    def insert_opened(self, opened: Sequence[tuple[Case, AuditEntry, tuple[str, str] | None]]) -> None:
        """Insert new cases (each with its opening entry) with two ``executemany`` and one id lookup."""
        if not opened:
            return
        bound: dict[datetime | None, Any] = {}  # most times of a batch are equal: render each once

        def t(value: datetime | None) -> Any:
            if value not in bound:
                bound[value] = self.hot.bind_time(value)
            return bound[value]

        self.cursor.executemany(self.hot.insert_case, [(
            c.number, c.kind, c.state, c.version,
            texts[1] if texts is not None and e.data is c.facts else _dumps(c.facts),  # the same facts, serialised once
            c.policy.hash, c.order_id, c.customer,
            c.facts.get("channel"), t(c.opened_at), t(c.updated_at), t(c.first_response_due), t(c.responded_at),
            t(c.due_at), t(c.resolution_due), t(c.timer_due), t(c.state_since), c.priority, c.queue,
            not c.closed, e.seq, e.hash) for c, e, texts in opened])
        numbers = [c.number for c, _, _ in opened]
        self.cursor.execute(f"SELECT id, number FROM cases WHERE number IN "
                            f"({', '.join([self.hot.mark] * len(numbers))})", numbers)
        ids = {number: case_id for case_id, number in self.cursor.fetchall()}
        rows = []
        for _, e, texts in opened:
            verdicts, data = texts if texts is not None else (_dumps(e.verdicts), _dumps(e.data))
            rows.append((ids[e.number], e.number, e.seq, t(e.at), e.event, e.from_state, e.to_state, e.outcome,
                         e.actor, e.role, e.channel, verdicts, data, e.policy.hash, e.prev_hash, e.hash))
        self.cursor.executemany(self.hot.append, rows)

    def insert_case(self, case: Case, *, last_hash: str) -> int:
        result = self.conn.execute(cases.insert().values(
            number=case.number, kind=case.kind, state=case.state, version=case.version,
            facts=_dumps(case.facts), policy_hash=case.policy.hash, order_id=case.order_id,
            customer=case.customer, channel=case.facts.get("channel"), opened_at=case.opened_at,
            updated_at=case.updated_at, first_response_due=case.first_response_due,
            responded_at=case.responded_at, due_at=case.due_at, is_open=not case.closed,
            resolution_due=case.resolution_due, timer_due=case.timer_due, state_since=case.state_since,
            priority=case.priority, queue=case.queue, last_seq=1, last_hash=last_hash))
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def apply(self, stored: StoredCase, new: Case, entry: AuditEntry,
              texts: tuple[str, str] | None = None) -> None:
        """Compare-and-set the case row on its version and append the entry; raise Lost if beaten."""
        self.update_case(stored, new, entry.seq, entry.hash)
        self.append(stored.id, entry, texts)

    def update_case(self, stored: StoredCase, new: Case, last_seq: int, last_hash: str) -> None:
        """Compare-and-set the case row (on the version and sequence read); raise Lost if beaten.

        ``last_seq``/``last_hash`` are those of the newest entry appended with it (in this transaction).
        """
        t = self._time
        facts = _dumps(new.facts)
        self.cursor.execute(self.hot.apply, (
            new.state, new.version, facts, t(new.updated_at), t(new.first_response_due), t(new.responded_at),
            t(new.due_at), not new.closed, t(new.resolution_due), t(new.timer_due), t(new.state_since),
            new.priority, new.queue, last_seq, last_hash,
            new.policy.hash,  # changes only when a case is re-pinned (Engine.adopt)
            stored.id, stored.case.version, stored.last_seq))
        if self.cursor.rowcount != 1:
            raise Lost()

    def _time(self, value: datetime | None) -> Any:
        """``value`` in its stored form (equal instants have the same stored form)."""
        if value is None:
            return None
        if value.tzinfo is not UTC:  # e.g. two local times a fold apart compare equal: bind such directly
            return self.hot.bind_time(value)
        bound = self._bound.get(value)
        if bound is None:
            bound = self._bound[value] = self.hot.bind_time(value)
        return bound

    def refuse(self, stored: StoredCase, entry: AuditEntry, texts: tuple[str, str] | None = None) -> None:
        """Record a refused attempt: extend the trail, leave the case itself untouched."""
        self.cursor.execute(self.hot.refuse, (entry.seq, entry.hash, stored.id, stored.last_seq))
        if self.cursor.rowcount != 1:
            raise Lost()
        self.append(stored.id, entry, texts)

    def append(self, case_id: int, e: AuditEntry, texts: tuple[str, str] | None = None) -> None:
        """Insert an audit entry; ``texts`` is its (verdicts, data) JSON when already serialised."""
        self.cursor.execute(self.hot.append, self._entry_values(case_id, e, texts))

    def append_many(self, entries: Sequence[tuple[int, AuditEntry, tuple[str, str] | None]]) -> None:
        """Insert audit entries ``(case id, entry, texts)`` with one ``executemany``."""
        if entries:
            self.cursor.executemany(self.hot.append, [self._entry_values(*item) for item in entries])

    def _entry_values(self, case_id: int, e: AuditEntry, texts: tuple[str, str] | None) -> tuple[Any, ...]:
        verdicts, data = texts if texts is not None else (_dumps(e.verdicts), _dumps(e.data))
        return (case_id, e.number, e.seq, self._time(e.at), e.event, e.from_state, e.to_state, e.outcome,
                e.actor, e.role, e.channel, verdicts, data, e.policy.hash, e.prev_hash, e.hash)

    def remember(self, key: str, request: str, description: str, number: str, result: Any,
                 now: datetime) -> None:
        self.conn.execute(idem.insert().values(key=key, request=request, description=description,
                                               number=number, result=_dumps(result), created_at=now))


def is_unique_violation(exc: BaseException) -> bool:
    """A uniqueness race, whether SQLAlchemy wrapped the driver's error or the hot path raised it raw."""
    return isinstance(exc, IntegrityError) or any(c.__name__ == "IntegrityError" for c in type(exc).__mro__)


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
