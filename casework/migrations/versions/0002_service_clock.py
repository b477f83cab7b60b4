"""Service clock columns on cases, audit and due-date indexes, personal facts per policy version, and
an append-only audit table on PostgreSQL.

The new columns hold what each case's audit trail derives (``casework.migrations.derive``, the
replay ``casework verify`` compares rows with), and each version's personal facts what its text says.

Revision ID: 0002
Revises: 0001
"""

import json

import sqlalchemy as sa
from alembic import op

from casework.migrations import derive
from casework.migrations.ddl import SCHEMA2_APPEND_ONLY_DDL as APPEND_ONLY_DDL
from casework.migrations.ddl import SCHEMA2_DROP_APPEND_ONLY_DDL as DROP_APPEND_ONLY_DDL
from casework.store import PARTIAL_INDEX_DDL

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("resolution_due", sa.DateTime()))
        batch.add_column(sa.Column("timer_due", sa.DateTime()))
        batch.add_column(sa.Column("state_since", sa.DateTime()))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("queue", sa.String(40)))
    _derive(op.get_bind())
    op.create_index("ix_cases_queue", "cases", ["queue"])
    op.execute(PARTIAL_INDEX_DDL)
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("personal", sa.String(), nullable=False, server_default="[]"))
    for policy_hash, policy in derive.policies(op.get_bind()).items():
        if policy is not None:
            op.get_bind().execute(sa.text("UPDATE policy_versions SET personal = :p WHERE hash = :h"),
                                  {"p": json.dumps(sorted(policy.document.personal)), "h": policy_hash})
    op.create_index("ix_audit_number_seq", "audit_entries", ["number", "seq"])
    op.create_index("ix_audit_at", "audit_entries", ["at"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in APPEND_ONLY_DDL:
            op.execute(statement)
    op.execute("UPDATE casework_meta SET value = '2' WHERE key = 'schema'")


def _derive(conn: sa.Connection) -> None:
    """The service clock's columns of every case, from its trail (what verify derives)."""
    update = sa.text("UPDATE cases SET resolution_due = :resolution_due, timer_due = :timer_due, "
                     "state_since = :state_since WHERE id = :id")
    rows = [{"id": case_id, **{name: derive.stored_time(conn, getattr(case, name))
                               for name in ("resolution_due", "timer_due", "state_since")}}
            for case_id, case in derive.replayed(conn, derive.policies(conn))]
    for lo in range(0, len(rows), derive.BATCH):
        conn.execute(update, rows[lo:lo + derive.BATCH])
    conn.execute(sa.text("UPDATE cases SET state_since = updated_at WHERE state_since IS NULL"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP_APPEND_ONLY_DDL:
            op.execute(statement)
    op.drop_index("ix_audit_at", "audit_entries")
    op.drop_index("ix_audit_number_seq", "audit_entries")
    op.drop_index("ix_cases_queue", "cases")
    op.drop_index("ix_cases_open_state_due", "cases")
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("personal")
    with op.batch_alter_table("cases") as batch:
        for column in ("queue", "priority", "state_since", "timer_due", "resolution_due"):
            batch.drop_column(column)
    op.execute("UPDATE casework_meta SET value = '1' WHERE key = 'schema'")
