"""Service clock columns on cases, audit and due-date indexes, personal facts per policy version, and
an append-only audit table on PostgreSQL.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from casework.store import APPEND_ONLY_DDL, DROP_APPEND_ONLY_DDL, PARTIAL_INDEX_DDL

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
    op.execute("UPDATE cases SET state_since = updated_at")
    op.create_index("ix_cases_queue", "cases", ["queue"])
    op.execute(PARTIAL_INDEX_DDL)
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("personal", sa.String(), nullable=False, server_default="[]"))
    op.create_index("ix_audit_number_seq", "audit_entries", ["number", "seq"])
    op.create_index("ix_audit_at", "audit_entries", ["at"])
    if op.get_bind().dialect.name == "postgresql":
        for statement in APPEND_ONLY_DDL:
            op.execute(statement)
    op.execute("UPDATE casework_meta SET value = '2' WHERE key = 'schema'")


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
