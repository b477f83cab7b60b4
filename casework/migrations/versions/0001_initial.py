"""The first casework schema: cases, audit entries, policy versions, idempotency keys, counters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from casework.migrations import footprint

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    fp = footprint()
    n, schema = fp.name, fp.schema
    cases_id = ".".join(filter(None, (schema, n("cases"), "id")))  # the referenced column, unquoted
    op.create_table(
        n("casework_meta"),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("value", sa.String(), nullable=False),
        schema=schema,
    )
    op.create_table(
        n("policy_versions"),
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        schema=schema,
    )
    op.create_index(n("ix_policy_versions_seq"), n("policy_versions"), schema=schema, columns=["seq"], unique=True)
    op.create_table(
        n("cases"),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(40), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("facts", sa.String(), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(200)),
        sa.Column("customer", sa.String(200)),
        sa.Column("channel", sa.String(40)),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("first_response_due", sa.DateTime()),
        sa.Column("responded_at", sa.DateTime()),
        sa.Column("due_at", sa.DateTime()),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        schema=schema,
    )
    op.create_index(n("ix_cases_order_id"), n("cases"), schema=schema, columns=["order_id"])
    op.create_index(n("ix_cases_customer"), n("cases"), schema=schema, columns=["customer"])
    op.create_index(n("ix_cases_kind_state"), n("cases"), schema=schema, columns=["kind", "state"])
    op.create_index(n("ix_cases_state_due"), n("cases"), schema=schema, columns=["state", "due_at"])
    op.create_index(n("ix_cases_open_due"), n("cases"), schema=schema, columns=["is_open", "due_at"])
    op.create_index(n("ix_cases_opened"), n("cases"), schema=schema, columns=["opened_at"])
    op.create_table(
        n("audit_entries"),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey(cases_id), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(40)),
        sa.Column("to_state", sa.String(40)),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(40)),
        sa.Column("verdicts", sa.String(), nullable=False),
        sa.Column("data", sa.String(), nullable=False),
        sa.Column("policy_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("case_id", "seq", name=n("uq_audit_case_seq")),
        schema=schema,
    )
    op.create_table(
        n("idempotency_keys"),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request", sa.String(64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        schema=schema,
    )
    op.create_table(
        n("counters"),
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
        schema=schema,
    )
    op.execute(f"INSERT INTO {fp.table('casework_meta')} (key, value) VALUES ('schema', '1')")


def downgrade() -> None:
    fp = footprint()
    for table in ("counters", "idempotency_keys", "audit_entries", "cases", "policy_versions", "casework_meta"):
        op.drop_table(fp.name(table), schema=fp.schema)
