"""The published policy version: a chain of publications (which stored version is in force for new
cases, published by whom, when, from which file). A database upgraded to schema 5 has nothing
published and behaves as before: new cases get the policy file's version until one is published.
On PostgreSQL the publications refuse UPDATE, DELETE and TRUNCATE, like the versions.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from casework.migrations import footprint

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = ("policy_publications",)


def upgrade() -> None:
    fp = footprint()
    op.create_table(
        fp.name("policy_publications"),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("file", sa.String(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64)),
        schema=fp.schema,
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in fp.append_only(APPEND_ONLY):
            op.execute(statement)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '5' WHERE key = 'schema'")


def downgrade() -> None:
    fp = footprint()
    if op.get_bind().dialect.name == "postgresql":
        for statement in fp.drop_append_only(APPEND_ONLY):
            op.execute(statement)
        op.execute(f"DROP FUNCTION IF EXISTS {fp.function('policy_publications')}()")
    op.drop_table(fp.name("policy_publications"), schema=fp.schema)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '4' WHERE key = 'schema'")
