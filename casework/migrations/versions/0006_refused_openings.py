"""Refused openings on the trail: an audit entry may belong to no case.

An opening the rules refuse (a role that may not open the kind or was not granted, a customer
opening in another's name, a fact the role may not give when opening) is recorded as an audit entry
of no case (``case_id`` NULL), sealed into the global chain like every entry. Existing entries are
untouched.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from casework.migrations import footprint

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    fp = footprint()
    with op.batch_alter_table(fp.name("audit_entries"), schema=fp.schema) as batch:  # SQLite: the table is copied
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
    op.execute(fp.unsealed_index())  # (a copied SQLite table loses its partial index)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '6' WHERE key = 'schema'")


def downgrade() -> None:
    """Back to schema 5, which cannot hold a refused opening: refused while one is recorded."""
    fp = footprint()
    entries = fp.table("audit_entries")
    refused = op.get_bind().execute(sa.text(f"SELECT count(*) FROM {entries} WHERE case_id IS NULL")).scalar()
    if refused:
        raise RuntimeError(f"{refused} refused opening(s) are recorded as entries of no case, which schema 5 "
                           "cannot hold; the trail is append-only, so they stay: downgrade refused")
    with op.batch_alter_table(fp.name("audit_entries"), schema=fp.schema) as batch:
        batch.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
    op.execute(fp.unsealed_index())
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '5' WHERE key = 'schema'")
