"""One chain across every audit entry of the database, idempotency keys per caller, TRUNCATE refused.

Every existing entry is sealed into the global chain in the order it was written (row id): its
place ``gseq`` and its ``link`` (``casework.audit.chain_link``; with the audit key given to
``casework db upgrade``, each entry's MAC too, and the links keyed), so a database written by an
earlier casework verifies, and is protected from here on, as one written today. Idempotency keys
get the caller (``actor``) as part of their identity; the keys stored before are kept with actor
'' and answer only the very request they were stored for. On PostgreSQL the audit entries and the
policy versions refuse UPDATE (but sealing), DELETE and TRUNCATE.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op

from casework.audit import GENESIS, chain_link
from casework.migrations import footprint, sealing_key
from casework.migrations.ddl import schema2_append_only, schema2_function
from casework.store import SEAL_KEY

if TYPE_CHECKING:
    from casework.store import Footprint

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 2000
APPEND_ONLY = ("audit_entries", "policy_versions")  # the tables schema 4 keeps append-only on PostgreSQL


def upgrade() -> None:
    fp = footprint()
    n, schema = fp.name, fp.schema
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    if postgresql:
        op.execute(f"DROP TRIGGER IF EXISTS {n('audit_entries')}_append_only ON {fp.table('audit_entries')}")
        op.execute(f"DROP FUNCTION IF EXISTS {schema2_function(fp)}()")
    with op.batch_alter_table(n("audit_entries"), schema=schema) as batch:
        batch.add_column(sa.Column("gseq", sa.BigInteger()))
        batch.add_column(sa.Column("link", sa.String(64)))
        batch.add_column(sa.Column("mac", sa.String(64)))
        batch.create_unique_constraint(n("uq_audit_gseq"), ["gseq"])
    op.execute(fp.unsealed_index())
    key = sealing_key()
    _seal(conn, key, fp)
    op.execute(sa.text(f"INSERT INTO {fp.table('casework_meta')} (key, value) VALUES (:k, :v)").bindparams(
        k=SEAL_KEY, v=key.id if key is not None else ""))
    _idempotency_per_caller(fp)
    if postgresql:
        for statement in fp.append_only(APPEND_ONLY):
            op.execute(statement)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '4' WHERE key = 'schema'")


def _seal(conn: sa.Connection, key, fp: Footprint) -> None:  # type: ignore[no-untyped-def]
    """Every entry, in the order it was written, gets its place and link (and MAC, with a key)."""
    entries = fp.table("audit_entries")
    update = sa.text(f"UPDATE {entries} SET gseq = :gseq, link = :link, mac = :mac WHERE id = :id")
    prev, gseq, last = GENESIS, 0, 0
    while True:
        rows = conn.execute(sa.text(f"SELECT id, hash FROM {entries} WHERE id > :last ORDER BY id LIMIT {BATCH}"),
                            {"last": last}).all()
        if not rows:
            return
        values = []
        for entry_id, entry_hash in rows:
            gseq += 1
            prev = chain_link(prev, gseq, entry_hash, key)
            values.append({"id": entry_id, "gseq": gseq, "link": prev,
                           "mac": key.entry_mac(entry_hash) if key is not None else None})
        conn.execute(update, values)
        last = rows[-1][0]


def _idempotency_per_caller(fp: Footprint) -> None:
    n, schema = fp.name, fp.schema
    op.create_table(
        n("idempotency_keys_new"),
        sa.Column("actor", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request", sa.String(64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        schema=schema,
    )
    op.execute(f"INSERT INTO {fp.table('idempotency_keys_new')} (actor, key, request, description, number, result, "
               f"created_at) SELECT '', key, request, description, number, result, created_at "
               f"FROM {fp.table('idempotency_keys')}")
    op.drop_table(n("idempotency_keys"), schema=schema)
    op.rename_table(n("idempotency_keys_new"), n("idempotency_keys"), schema=schema)
    if op.get_bind().dialect.name == "postgresql":  # the primary key's name, as a new database has it
        op.execute(f"ALTER INDEX {fp.table('idempotency_keys_new_pkey')} RENAME TO {n('idempotency_keys_pkey')}")


def downgrade() -> None:
    """Back to schema 3: the chain's columns go (the entries' own hashes stand), keys lose their caller
    (one per key text is kept), and PostgreSQL gets schema 2's trigger back."""
    fp = footprint()
    n, schema = fp.name, fp.schema
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    if postgresql:
        for statement in fp.drop_append_only(APPEND_ONLY):
            op.execute(statement)
        for table in APPEND_ONLY:
            op.execute(f"DROP FUNCTION IF EXISTS {fp.function(table)}()")
    op.execute(fp.drop_index("ix_audit_unsealed"))
    with op.batch_alter_table(n("audit_entries"), schema=schema) as batch:
        batch.drop_constraint(n("uq_audit_gseq"), type_="unique")
        batch.drop_column("mac")
        batch.drop_column("link")
        batch.drop_column("gseq")
    op.execute(sa.text(f"DELETE FROM {fp.table('casework_meta')} WHERE key = :k").bindparams(k=SEAL_KEY))
    op.create_table(
        n("idempotency_keys_old"),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request", sa.String(64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        schema=schema,
    )
    op.execute(f"INSERT INTO {fp.table('idempotency_keys_old')} (key, request, description, number, result, "
               "created_at) SELECT key, min(request), min(description), min(number), min(result), min(created_at) "
               f"FROM {fp.table('idempotency_keys')} GROUP BY key")
    op.drop_table(n("idempotency_keys"), schema=schema)
    op.rename_table(n("idempotency_keys_old"), n("idempotency_keys"), schema=schema)
    if postgresql:
        op.execute(f"ALTER INDEX {fp.table('idempotency_keys_old_pkey')} RENAME TO {n('idempotency_keys_pkey')}")
        for statement in schema2_append_only(fp):
            op.execute(statement)
    op.execute(f"UPDATE {fp.table('casework_meta')} SET value = '3' WHERE key = 'schema'")
