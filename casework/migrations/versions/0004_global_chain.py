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

import sqlalchemy as sa
from alembic import context, op

from casework.audit import GENESIS, chain_link
from casework.migrations.ddl import SCHEMA2_APPEND_ONLY_DDL
from casework.store import APPEND_ONLY_DDL, DROP_APPEND_ONLY_DDL, SEAL_KEY, UNSEALED_INDEX_DDL

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 2000
OLD_TRIGGER = ("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries",
               "DROP FUNCTION IF EXISTS casework_audit_append_only()")


def upgrade() -> None:
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    if postgresql:
        for statement in OLD_TRIGGER:
            op.execute(statement)
    with op.batch_alter_table("audit_entries") as batch:
        batch.add_column(sa.Column("gseq", sa.BigInteger()))
        batch.add_column(sa.Column("link", sa.String(64)))
        batch.add_column(sa.Column("mac", sa.String(64)))
        batch.create_unique_constraint("uq_audit_gseq", ["gseq"])
    op.execute(UNSEALED_INDEX_DDL)
    key = context.config.attributes.get("audit_key")
    _seal(conn, key)
    op.execute(sa.text("INSERT INTO casework_meta (key, value) VALUES (:k, :v)").bindparams(
        k=SEAL_KEY, v=key.id if key is not None else ""))
    _idempotency_per_caller()
    if postgresql:
        for statement in APPEND_ONLY_DDL:
            op.execute(statement)
    op.execute("UPDATE casework_meta SET value = '4' WHERE key = 'schema'")


def _seal(conn: sa.Connection, key) -> None:  # type: ignore[no-untyped-def]
    """Every entry, in the order it was written, gets its place and link (and MAC, with a key)."""
    update = sa.text("UPDATE audit_entries SET gseq = :gseq, link = :link, mac = :mac WHERE id = :id")
    prev, gseq, last = GENESIS, 0, 0
    while True:
        rows = conn.execute(sa.text(f"SELECT id, hash FROM audit_entries WHERE id > :last ORDER BY id LIMIT {BATCH}"),
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


def _idempotency_per_caller() -> None:
    op.create_table(
        "idempotency_keys_new",
        sa.Column("actor", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request", sa.String(64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.execute("INSERT INTO idempotency_keys_new (actor, key, request, description, number, result, created_at) "
               "SELECT '', key, request, description, number, result, created_at FROM idempotency_keys")
    op.drop_table("idempotency_keys")
    op.rename_table("idempotency_keys_new", "idempotency_keys")
    if op.get_bind().dialect.name == "postgresql":  # the primary key's name, as a new database has it
        op.execute("ALTER INDEX idempotency_keys_new_pkey RENAME TO idempotency_keys_pkey")


def downgrade() -> None:
    """Back to schema 3: the chain's columns go (the entries' own hashes stand), keys lose their caller
    (one per key text is kept), and PostgreSQL gets schema 2's trigger back."""
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    if postgresql:
        for statement in DROP_APPEND_ONLY_DDL:
            op.execute(statement)
        for table in ("audit_entries", "policy_versions"):
            op.execute(f"DROP FUNCTION IF EXISTS casework_{table}_append_only()")
    op.execute("DROP INDEX IF EXISTS ix_audit_unsealed")
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_constraint("uq_audit_gseq", type_="unique")
        batch.drop_column("mac")
        batch.drop_column("link")
        batch.drop_column("gseq")
    op.execute(sa.text("DELETE FROM casework_meta WHERE key = :k").bindparams(k=SEAL_KEY))
    op.create_table(
        "idempotency_keys_old",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request", sa.String(64), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.execute("INSERT INTO idempotency_keys_old (key, request, description, number, result, created_at) "
               "SELECT key, min(request), min(description), min(number), min(result), min(created_at) "
               "FROM idempotency_keys GROUP BY key")
    op.drop_table("idempotency_keys")
    op.rename_table("idempotency_keys_old", "idempotency_keys")
    if postgresql:
        op.execute("ALTER INDEX idempotency_keys_old_pkey RENAME TO idempotency_keys_pkey")
        for statement in SCHEMA2_APPEND_ONLY_DDL:
            op.execute(statement)
    op.execute("UPDATE casework_meta SET value = '3' WHERE key = 'schema'")
