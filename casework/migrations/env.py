"""Alembic environment for ``alembic`` commands run on a connection casework hands over (tests, tools).

``casework db upgrade`` and a host's Alembic go through :func:`casework.migrations.run_upgrade`
instead, which configures the same options.
"""

from __future__ import annotations

from alembic import context

from casework.migrations import adopt_legacy_stamp, options
from casework.store import DEFAULT

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - casework always passes its connection
    raise RuntimeError("casework migrations run through 'casework db upgrade', which passes the connection")
footprint = config.attributes.get("footprint") or DEFAULT

adopt_legacy_stamp(connection, footprint)
context.configure(connection=connection, target_metadata=footprint.metadata,
                  **options(footprint, config.attributes.get("audit_key")))
with context.begin_transaction():
    context.run_migrations()
