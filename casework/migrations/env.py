"""Alembic environment: casework runs migrations on a connection it hands over (see store.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import casework.store  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - casework always passes its connection
    raise RuntimeError("casework migrations run through 'casework db upgrade', which passes the connection")

context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
