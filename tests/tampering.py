"""Editing a casework database behind the engine's back, as an attacker with write access would.

On PostgreSQL the edits run with ``session_replication_role = replica`` (what a superuser may set),
which switches off triggers and foreign keys for the session: the append-only trigger and the
foreign key from entries to cases stop nothing, as they would not stop a superuser.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


@contextmanager
def raw(db_url: str) -> Iterator[sa.Connection]:
    """A connection in one transaction, with triggers and foreign keys off."""
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            else:
                conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            yield conn
    finally:
        engine.dispose()


def run(db_url: str, sql: str, **params: Any) -> None:
    with raw(db_url) as conn:
        conn.execute(sa.text(sql), params)


def query(db_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with raw(db_url) as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]
