"""Alembic migrations of the casework schema (run with ``casework db upgrade``, or from a host's Alembic).

Casework keeps its revision in its own version table (``casework_alembic_version``, prefixed and in
the schema of the footprint), never in the host's ``alembic_version``. A host whose own Alembic
environment should bring casework's tables up to date calls :func:`upgrade` with its migration
connection (README, "Embedding"): casework's revisions stay casework's, and nothing but casework's
tables is read or written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from casework.audit import AuditKey
    from casework.store import Footprint

HERE = Path(__file__).parent
LEGACY_VERSION_TABLE = "alembic_version"  # where casework kept its revision up to schema 5


def options(footprint: Footprint, audit_key: AuditKey | None) -> dict[str, Any]:
    """The migration context's options: casework's own version table, and what the migrations read."""
    return {"version_table": footprint.version_table, "version_table_schema": footprint.schema,
            "render_as_batch": True, "casework_footprint": footprint, "casework_audit_key": audit_key}


def footprint() -> Footprint:
    """The footprint the running migration works on (for the migration scripts)."""
    from alembic import op

    from casework.store import DEFAULT

    return op.get_context().opts.get("casework_footprint") or DEFAULT


def sealing_key() -> AuditKey | None:
    """The audit key the running migration seals entries with, if any (for the migration scripts)."""
    from alembic import op

    return op.get_context().opts.get("casework_audit_key")


def adopt_legacy_stamp(conn: sa.Connection, fp: Footprint) -> None:
    """Move a database's casework revision from ``alembic_version`` (where casework kept it up to schema 5) to
    casework's own version table.

    Only a database with today's default names can have one; its revision is the one its schema version
    says (schema N is revision 000N). The old table loses that row only if it holds exactly that
    revision, and is dropped only if that leaves it empty: a host's stamp there is never touched.
    """
    insp = sa.inspect(conn)
    if not fp.default or insp.has_table(fp.version_table) or not insp.has_table(fp.name("casework_meta")):
        return
    from alembic.script import ScriptDirectory

    schema = conn.execute(sa.text(f"SELECT value FROM {fp.table('casework_meta')} WHERE key = 'schema'")).scalar()
    revision = f"{int(schema):04d}" if schema is not None and schema.isdigit() else None
    if revision not in {script.revision for script in ScriptDirectory(str(HERE)).walk_revisions()}:
        return
    fp.stamp(conn, revision)
    if insp.has_table(LEGACY_VERSION_TABLE):
        found = [r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}"))]
        if found == [revision]:
            conn.execute(sa.text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))


def run_upgrade(conn: sa.Connection, fp: Footprint, key: AuditKey | None = None) -> None:
    """Run every pending casework migration on ``conn`` (inside its transaction)."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext, MigrationStep
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(HERE))
    if fp.schema:
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{fp.schema}"'))
    adopt_legacy_stamp(conn, fp)

    def steps(revision: Any, _context: Any) -> Any:
        # what ``alembic upgrade head`` runs (Alembic's own ScriptDirectory._upgrade_revs), from public parts
        scripts = script.iterate_revisions("head", revision, implicit_base=True)
        return [MigrationStep.upgrade_from_script(script.revision_map, s) for s in reversed(list(scripts))]

    context = MigrationContext.configure(conn, opts={**options(fp, key), "script": script, "fn": steps,
                                                     "target_metadata": fp.metadata})
    with Operations.context(context):
        context.run_migrations()


def upgrade(connection: sa.Connection, *, schema: str | None = None, prefix: str = "",
            audit_key: AuditKey | bytes | str | None = None) -> None:
    """Bring casework's tables on ``connection`` up to date, as a host's Alembic ``env.py`` step.

    Runs in the connection's transaction (one is begun and committed if none is open), so the host's
    migrations and casework's commit together. ``schema``/``prefix``: where casework's tables live
    (as given to ``Engine``). Only casework's tables and its own version table are read or written.
    """
    from casework.database import audit_key_of
    from casework.store import Footprint

    fp = Footprint(schema, prefix)
    key = audit_key_of(audit_key)
    if connection.in_transaction():
        run_upgrade(connection, fp, key)
    else:
        with connection.begin():
            run_upgrade(connection, fp, key)
