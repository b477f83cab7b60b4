"""What casework's connections are made of: a URL as messages show it, an error in one line, a compiled
statement and its parameters, how casework pools a database it opens from a URL, and the translator that
turns a database error into the StoreError it means (``Database.translated``)."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from casework.errors import CaseworkError

if TYPE_CHECKING:
    from casework._store.driver import Database

Cursor = Any  # a DB-API cursor (sqlite3 or psycopg)


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL has no password we could find either
        return url


def one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Statement:
    """One compiled statement: its SQL for the driver and how to order its parameters."""

    __slots__ = ("_ordered", "defaults", "keys", "named", "names", "sql")

    def __init__(self, compiled: Any, named: bool) -> None:
        self.sql: str = str(compiled)
        self.keys: tuple[str, ...] = tuple(compiled.params)  # every parameter's name
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults: dict[str, Any] = {k: v for k, v in compiled.params.items() if v is not None}  # limits, literals
        self.named = named
        # Positional drivers take a tuple in bind order (itemgetter gives one for two or more names).
        self._ordered = operator.itemgetter(*self.names) if len(self.names) > 1 else None

    def params(self, values: Mapping[str, Any] | None = None) -> Sequence[Any] | Mapping[str, Any]:
        merged = ({**self.defaults, **values} if self.defaults else values) if values else self.defaults
        if self.named:
            return merged
        if self._ordered is not None:
            return self._ordered(merged)  # type: ignore[no-any-return]
        return tuple(merged[n] for n in self.names)


def pool_options(url: str) -> dict[str, Any]:
    """How casework pools a database it opens from a URL: PostgreSQL's connections are not pre-pinged (each
    scope's own BEGIN finds one the server dropped: see ``Database._begun``), another server's are; an
    in-memory SQLite database is one connection."""
    parsed = sa.engine.make_url(url)
    # Every scope ends its own transaction before giving its connection back: no rollback on return.
    if parsed.get_backend_name() == "postgresql":
        return {"pool_reset_on_return": None}
    if parsed.get_backend_name() != "sqlite":  # another server: SQLAlchemy's pre-ping finds a dropped connection
        return {"pool_pre_ping": True, "pool_reset_on_return": None}
    if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed):
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    return {"pool_reset_on_return": None}


class Translated:
    """``with db.translated(doing):`` a database error raised inside comes out as the StoreError it means.

    A class rather than a generator context manager: a fire passes through two of them (begin, commit),
    and a generator costs several thousand instructions more per use (bench/callgrind_fire.py).
    """

    __slots__ = ("db", "doing")

    def __init__(self, db: Database, doing: str) -> None:
        self.db, self.doing = db, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, CaseworkError) or not isinstance(exc, Exception):
            return
        failure = self.db.failure(exc, self.doing)
        if failure is not None:
            raise failure from None
