"""Which database, opened with which audit key, and bringing its schema up to date."""

from __future__ import annotations

import os

from casework.audit import AuditKey
from casework.errors import InvalidInput
from casework.store import DatabaseSource, Footprint, Store

DEFAULT_DB = "sqlite:///casework.db"


def database_url(db: str | None) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (``cases.db`` means an SQLite file)."""
    if not db:
        return DEFAULT_DB
    if "://" in db:
        return db
    return f"sqlite:///{db}"


def database_source(db: object) -> DatabaseSource:
    """What the store opens: a URL for a URL or file path (see :func:`database_url`); anything else as given,
    for the store to accept (a SQLAlchemy Engine) or refuse (InvalidInput naming what it is)."""
    if isinstance(db, os.PathLike):
        db = os.fspath(db)
    return database_url(db) if db is None or isinstance(db, str) else db  # type: ignore[return-value]


def audit_key_of(key: AuditKey | bytes | str | None) -> AuditKey | None:
    """An :class:`AuditKey` from a key or its secret (InvalidInput when the secret is too short)."""
    if key is None or isinstance(key, AuditKey):
        return key
    try:
        return AuditKey(key)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="audit_key") from None


def upgrade_database(db: str | None = None, *, audit_key: AuditKey | bytes | str | None = None,
                     schema: str | None = None, prefix: str = "") -> tuple[str | None, str]:
    """Bring a database's schema up to date (Alembic migrations); ``(version before, after)``.

    An empty database gets every migration; an up-to-date one is left alone. Entries the upgrade seals
    into the global chain are sealed with ``audit_key`` when given. ``schema``/``prefix``: where
    casework's tables are, as given to ``Engine``. Casework's revision is kept in its own version
    table (``casework_alembic_version``); a database that kept it in ``alembic_version`` has it moved.
    """
    store = Store(database_url(db), create=False, check=False, key=audit_key_of(audit_key),
                  footprint=Footprint(schema, prefix))
    try:
        return store.upgrade()
    finally:
        store.close()
