"""The tables casework keeps, declared once (SQLModel models on casework's own MetaData) under their base names.

Where they live in one database (a schema, a prefix) is :mod:`casework._store.footprint`'s business;
it also writes the DDL the models cannot declare (partial indexes, PostgreSQL's append-only triggers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Column, Field, SQLModel

SCHEMA_VERSION = 8
HEAD_REVISION = "0008"  # the Alembic revision that SCHEMA_VERSION corresponds to
SEAL_KEY = "audit_seal"  # the casework_meta row a PostgreSQL writer locks to seal entries into the global chain

class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes, stored as naive UTC on every backend (the column type Alembic and DDL see).

    Rows are read and written through ``codec.TimeCodec``, which stores exactly what this type
    would; the type is used where SQLAlchemy itself binds a time (DDL defaults, ad hoc tools).
    """

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


class Declared(SQLModel, registry=registry()):
    """The base of casework's models: their own registry and MetaData, never SQLModel's global one."""


class Meta(Declared, table=True):
    __tablename__ = "casework_meta"
    key: str = Field(primary_key=True)
    value: str


class PolicyVersionRow(Declared, table=True):
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


class PublicationRow(Declared, table=True):
    """One publication of a stored policy version: from then on it is the one in force for new cases.

    Chained like the versions (``casework.audit.publication_hash``); ``mac`` authenticates the link
    with the audit key when the store has one."""

    __tablename__ = "policy_publications"
    seq: int = Field(sa_column=Column(sa.Integer(), primary_key=True, autoincrement=False))
    hash: str = Field(max_length=64)  # the version published
    file: str  # the file it was published from, as given
    actor: str = Field(max_length=200)
    role: str = Field(max_length=40)
    published_at: datetime = _dt()
    prev_hash: str = Field(max_length=64)
    chain_hash: str = Field(max_length=64)
    mac: str | None = Field(default=None, max_length=64)


class CaseRow(Declared, table=True):
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
    breaches: str = Field(default="[]")  # the deadlines missed (JSON list)
    timer_refused: str | None = Field(default=None, max_length=200)
    assignee: str | None = Field(default=None, max_length=200, index=True)
    is_open: bool = Field(default=True)  # not closed (a final state); settled cases may still be open
    last_seq: int
    last_hash: str = Field(max_length=64)


class AuditRow(Declared, table=True):
    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "seq", name="uq_audit_case_seq"),
        sa.UniqueConstraint("gseq", name="uq_audit_gseq"),
        sa.Index("ix_audit_number_seq", "number", "seq"),
        sa.Index("ix_audit_at", "at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = None  # references cases.id (FOREIGN_KEYS); None: an opening refused (no case)
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
    # The global chain (see casework.audit): the entry's place among all entries of the database and the
    # link that chains it to the one before; both NULL until the entry is sealed. ``mac``: the entry's hash
    # authenticated with the audit key, when it was written with one.
    gseq: int | None = Field(default=None, sa_column=Column(sa.BigInteger(), nullable=True))
    link: str | None = Field(default=None, max_length=64)
    mac: str | None = Field(default=None, max_length=64)


class IdempotencyRow(Declared, table=True):
    __tablename__ = "idempotency_keys"
    actor: str = Field(primary_key=True, max_length=200)  # whose key: keys are scoped per caller
    key: str = Field(primary_key=True, max_length=200)
    request: str = Field(max_length=64)
    description: str
    number: str = Field(max_length=40)
    result: str
    created_at: datetime = _dt()


class CounterRow(Declared, table=True):
    __tablename__ = "counters"
    name: str = Field(primary_key=True, max_length=40)
    value: int


class OutboxRow(Declared, table=True):
    """An audit entry published as a change (see ``casework.changes``), written with it in its transaction.

    Keyed by the entry's (case id, seq); its order and global id are the entry's place in the global chain
    (``audit_entries.gseq``). ``version`` and ``facts``: the case as that entry left it.
    """

    __tablename__ = "outbox"
    case_id: int = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    kind: str = Field(max_length=20)
    version: int
    facts: str


class RelayCursorRow(Declared, table=True):
    """How far a relay has published the changes: the global id of the last one the broker acknowledged."""

    __tablename__ = "relay_cursors"
    name: str = Field(primary_key=True, max_length=200)
    position: int = Field(sa_column=Column(sa.BigInteger(), nullable=False))
    updated_at: datetime = _dt()


cases: sa.Table = CaseRow.__table__  # type: ignore[attr-defined]
audit: sa.Table = AuditRow.__table__  # type: ignore[attr-defined]
policies: sa.Table = PolicyVersionRow.__table__  # type: ignore[attr-defined]
idem: sa.Table = IdempotencyRow.__table__  # type: ignore[attr-defined]
counters: sa.Table = CounterRow.__table__  # type: ignore[attr-defined]
meta: sa.Table = Meta.__table__  # type: ignore[attr-defined]
publications: sa.Table = PublicationRow.__table__  # type: ignore[attr-defined]
outbox: sa.Table = OutboxRow.__table__  # type: ignore[attr-defined]
relay_cursors: sa.Table = RelayCursorRow.__table__  # type: ignore[attr-defined]
# Every table, in creation order (a new table: declare its model above and add it here), and the references
# between them by base name (table, column, referenced table, its column), added by each Footprint.
TABLES = (meta, policies, cases, audit, idem, counters, publications, outbox, relay_cursors)
FOREIGN_KEYS = (("audit_entries", "case_id", "cases", "id"),)  # an outbox row names an entry (case id, seq)
# The tables PostgreSQL keeps append-only (UPDATE, DELETE and TRUNCATE refused; audit entries may be sealed).
APPEND_ONLY = ("audit_entries", "policy_versions", "policy_publications")
