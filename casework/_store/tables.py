"""The tables casework keeps, declared once (SQLModel), and the DDL their models cannot declare."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

SCHEMA_VERSION = 5
HEAD_REVISION = "0005"  # the Alembic revision that SCHEMA_VERSION corresponds to
SEAL_KEY = "audit_seal"  # the casework_meta row a PostgreSQL writer locks to seal entries into the global chain

# Partial indexes, written as DDL (same text on both backends) rather than declared on the model: a
# dialect-specific `where=` on the model would load every dialect's module on import (slower CLI).
PARTIAL_INDEX_DDL = ("CREATE INDEX IF NOT EXISTS ix_cases_open_state_due ON cases (state, due_at) "
                     "WHERE is_open AND due_at IS NOT NULL")
UNSEALED_INDEX_DDL = "CREATE INDEX IF NOT EXISTS ix_audit_unsealed ON audit_entries (id) WHERE gseq IS NULL"


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


class PublicationRow(SQLModel, table=True):
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
    breaches: str = Field(default="[]")  # the deadlines missed (JSON list)
    timer_refused: str | None = Field(default=None, max_length=200)
    is_open: bool = Field(default=True)  # not closed (a final state); settled cases may still be open
    last_seq: int
    last_hash: str = Field(max_length=64)


class AuditRow(SQLModel, table=True):
    __tablename__ = "audit_entries"
    __table_args__ = (
        sa.UniqueConstraint("case_id", "seq", name="uq_audit_case_seq"),
        sa.UniqueConstraint("gseq", name="uq_audit_gseq"),
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
    # The global chain (see casework.audit): the entry's place among all entries of the database and the
    # link that chains it to the one before; both NULL until the entry is sealed. ``mac``: the entry's hash
    # authenticated with the audit key, when it was written with one.
    gseq: int | None = Field(default=None, sa_column=Column(sa.BigInteger(), nullable=True))
    link: str | None = Field(default=None, max_length=64)
    mac: str | None = Field(default=None, max_length=64)


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    actor: str = Field(primary_key=True, max_length=200)  # whose key: keys are scoped per caller
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


METADATA = SQLModel.metadata
cases: sa.Table = CaseRow.__table__  # type: ignore[attr-defined]
audit: sa.Table = AuditRow.__table__  # type: ignore[attr-defined]
policies: sa.Table = PolicyVersionRow.__table__  # type: ignore[attr-defined]
idem: sa.Table = IdempotencyRow.__table__  # type: ignore[attr-defined]
counters: sa.Table = CounterRow.__table__  # type: ignore[attr-defined]
meta: sa.Table = Meta.__table__  # type: ignore[attr-defined]
publications: sa.Table = PublicationRow.__table__  # type: ignore[attr-defined]
TABLES = (meta, policies, cases, audit, idem, counters, publications)

_CHAIN = ("gseq", "link")
_UNSEALED_SAME = ", ".join(c.name for c in audit.columns if c.name not in _CHAIN)


def _refused(table: str, sealing: str = "") -> str:
    return f"""CREATE OR REPLACE FUNCTION casework_{table}_append_only() RETURNS trigger AS $$
    BEGIN
        {sealing}
        RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
    END;
    $$ LANGUAGE plpgsql"""


# On PostgreSQL the audit table and the policy versions refuse UPDATE, DELETE and TRUNCATE; the one update
# allowed is sealing an entry into the global chain: its gseq and link set once, nothing else changed.
_SEALING = f"""IF TG_OP = 'UPDATE' THEN
            IF OLD.gseq IS NULL AND NEW.gseq IS NOT NULL AND NEW.link IS NOT NULL
               AND ROW({', '.join(f'NEW.{c}' for c in _UNSEALED_SAME.split(', '))})
                   IS NOT DISTINCT FROM ROW({', '.join(f'OLD.{c}' for c in _UNSEALED_SAME.split(', '))}) THEN
                RETURN NEW;
            END IF;
        END IF;"""


def _append_only(table: str, sealing: str = "") -> tuple[str, ...]:
    return (
        _refused(table, sealing),
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION casework_{table}_append_only()""",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION casework_{table}_append_only()""",
    )


def _drop_append_only(*tables: str) -> tuple[str, ...]:
    return tuple(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}"
                 for table in tables for name in ("append_only", "no_truncate"))


APPEND_ONLY_DDL = _append_only("audit_entries", _SEALING) + _append_only("policy_versions")
DROP_APPEND_ONLY_DDL = _drop_append_only("audit_entries", "policy_versions")
# Publications (schema 5) are append-only too: installed by their own migration, and with a new database's.
PUBLISHED_APPEND_ONLY_DDL = _append_only("policy_publications")
DROP_PUBLISHED_APPEND_ONLY_DDL = _drop_append_only("policy_publications")
