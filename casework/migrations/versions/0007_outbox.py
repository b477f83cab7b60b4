"""The transactional outbox and the relays' cursors.

``outbox`` gets a row for every audit entry published as a change (applied transitions; refused
attempts too when the Engine is told to), written in the entry's own transaction; its order is the
entry's place in the global chain. ``relay_cursors`` keeps how far each relay has published. The
entries written before this migration are history, not changes: the outbox starts empty.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from casework.migrations import footprint

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    fp = footprint()
    n, schema = fp.name, fp.schema
    op.create_table(
        n("outbox"),
        sa.Column("case_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("facts", sa.String(), nullable=False),
        schema=schema,
    )
    op.create_table(
        n("relay_cursors"),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        schema=schema,
    )
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '7' WHERE key = 'schema'")


def downgrade() -> None:
    fp = footprint()
    op.drop_table(fp.name("relay_cursors"), schema=fp.schema)
    op.drop_table(fp.name("outbox"), schema=fp.schema)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '6' WHERE key = 'schema'")
