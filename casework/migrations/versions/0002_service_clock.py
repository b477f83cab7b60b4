"""Service clock columns on cases, audit and due-date indexes, personal facts per policy version, and
an append-only audit table on PostgreSQL.

The new columns hold what each case's audit trail derives (``casework.migrations.derive``, the
replay ``casework verify`` compares rows with), and each version's personal facts what its text says.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

from casework.migrations import derive, footprint
from casework.migrations.ddl import schema2_append_only, schema2_drop_append_only

if TYPE_CHECKING:
    from casework.store import Footprint

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    fp = footprint()
    n, schema = fp.name, fp.schema
    with op.batch_alter_table(n("cases"), schema=schema) as batch:
        batch.add_column(sa.Column("resolution_due", sa.DateTime()))
        batch.add_column(sa.Column("timer_due", sa.DateTime()))
        batch.add_column(sa.Column("state_since", sa.DateTime()))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("queue", sa.String(40)))
    _derive(op.get_bind(), fp)
    op.create_index(n("ix_cases_queue"), n("cases"), ["queue"], schema=schema)
    op.execute(fp.open_due_index())
    with op.batch_alter_table(n("policy_versions"), schema=schema) as batch:
        batch.add_column(sa.Column("personal", sa.String(), nullable=False, server_default="[]"))
    for policy_hash, policy in derive.policies(op.get_bind(), fp).items():
        if policy is not None:
            op.get_bind().execute(sa.text(f"UPDATE {fp.table('policy_versions')} SET personal = :p WHERE hash = :h"),
                                  {"p": json.dumps(sorted(policy.document.personal)), "h": policy_hash})
    op.create_index(n("ix_audit_number_seq"), n("audit_entries"), ["number", "seq"], schema=schema)
    op.create_index(n("ix_audit_at"), n("audit_entries"), ["at"], schema=schema)
    if op.get_bind().dialect.name == "postgresql":
        for statement in schema2_append_only(fp):
            op.execute(statement)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '2' WHERE key = 'schema'")


def _derive(conn: sa.Connection, fp: Footprint) -> None:
    """The service clock's columns of every case, from its trail (what verify derives)."""
    update = sa.text(f"UPDATE {fp.table('cases')} SET resolution_due = :resolution_due, timer_due = :timer_due, "
                     "state_since = :state_since WHERE id = :id")
    rows = [{"id": case_id, **{name: derive.stored_time(conn, getattr(case, name))
                               for name in ("resolution_due", "timer_due", "state_since")}}
            for case_id, case in derive.replayed(conn, derive.policies(conn, fp), fp)]
    for lo in range(0, len(rows), derive.BATCH):
        conn.execute(update, rows[lo:lo + derive.BATCH])
    conn.execute(sa.text(f"UPDATE {fp.table('cases')} SET state_since = updated_at WHERE state_since IS NULL"))


def downgrade() -> None:
    fp = footprint()
    n, schema = fp.name, fp.schema
    if op.get_bind().dialect.name == "postgresql":
        for statement in schema2_drop_append_only(fp):
            op.execute(statement)
    op.drop_index(n("ix_audit_at"), n("audit_entries"), schema=schema)
    op.drop_index(n("ix_audit_number_seq"), n("audit_entries"), schema=schema)
    op.drop_index(n("ix_cases_queue"), n("cases"), schema=schema)
    op.drop_index(n("ix_cases_open_state_due"), n("cases"), schema=schema)
    with op.batch_alter_table(n("policy_versions"), schema=schema) as batch:
        batch.drop_column("personal")
    with op.batch_alter_table(n("cases"), schema=schema) as batch:
        for column in ("queue", "priority", "state_since", "timer_due", "resolution_due"):
            batch.drop_column(column)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '1' WHERE key = 'schema'")
