"""The connection, the statements run on it, its read and write scopes, and what its errors become.

Statements are written once as SQLAlchemy Core against the tables, compiled once per dialect, and
run on the driver's own cursor: a transition costs no statement compilation, result wrapping or
type processing, and every column list is the table's own. Every database error passes through
:meth:`Database.translated` (the store's one translator, as httpx's ``map_exceptions``): a
uniqueness race becomes :class:`UniqueViolation` (the engine resolves those), anything else the
database or its driver raised becomes a :class:`StoreError` naming the database without its
password.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from casework.errors import CaseworkError, StoreError, UniqueViolation

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
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


class Database:
    """One connection, shared by the threads of a process under a lock.

    Reads run in short transactions of their own (or inside the write transaction their thread has
    open); writes in one transaction per command, begun on the driver (``BEGIN IMMEDIATE`` on SQLite,
    so two writers queue on the database lock instead of deadlocking on a lock upgrade).
    """

    def __init__(self, url: str, synchronous: str = "NORMAL") -> None:
        self.url = describe_url(url)
        try:
            self.engine = sa.create_engine(url, poolclass=NullPool)
        except Exception as exc:  # an unknown scheme, a missing driver, a malformed URL
            raise StoreError(f"cannot use database {self.url}: {exc}", url=self.url) from None
        self.dialect = self.engine.dialect
        self.name: str = self.dialect.name
        self.sqlite = self.name == "sqlite"
        self._named = self.dialect.paramstyle in ("named", "pyformat")
        self._changing = False
        self.driver_error: type[Exception] = self.dialect.loaded_dbapi.Error
        if self.sqlite:
            self._setup_sqlite(synchronous.upper())
        with self.translated("cannot open database"):
            self.conn = self.engine.connect()
        self.raw: Any = self.conn.connection.driver_connection
        self.lock = threading.RLock()
        self.cursor: Cursor | None = None  # the cursor of the scope open now (its thread holds the lock)
        self._writing = False
        self._statements: dict[str, Statement] = {}

    def _setup_sqlite(self, synchronous: str) -> None:
        if synchronous not in SYNCHRONOUS:
            raise StoreError(f"synchronous {synchronous!r}: expected NORMAL, FULL or EXTRA", url=self.url)

        @sa.event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun explicitly
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute(f"PRAGMA synchronous = {synchronous}")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @sa.event.listens_for(self.engine, "begin")
        def _begin(conn: sa.Connection) -> None:  # SQLAlchemy's own transactions: inspection, schema changes
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self._changing else "BEGIN")

    # ---- statements ------------------------------------------------------------------------------
    def statement(self, key: str, build: Callable[[], Any], **compile_kw: Any) -> Statement:
        """The statement ``build()`` makes, compiled on first use and kept under ``key``."""
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = self.compile(build(), **compile_kw)
        return found

    def compile(self, clause: Any, **compile_kw: Any) -> Statement:
        """A statement compiled for this dialect (list values rendered in place)."""
        return Statement(clause.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True},
                                        **compile_kw), self._named)

    # ---- scopes -----------------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        """A cursor for reads: the open transaction's, else one of a short read transaction."""
        with self.lock:
            if self.cursor is not None:
                yield self.cursor
                return
            with self.translated("database error on"):
                cursor = self.raw.cursor()
                if self.sqlite:
                    cursor.execute("BEGIN")  # several statements, one snapshot
                self.cursor = cursor
                try:
                    yield cursor
                finally:
                    self.cursor = None
                    self.raw.rollback()

    def begin(self) -> Cursor:
        """Begin this thread's write transaction (hold the lock until :meth:`end`)."""
        self.lock.acquire()
        try:
            if self._writing:
                raise StoreError("a write transaction is already open on this Store in this thread; "
                                 "finish it before beginning another", url=self.url)
            with self.translated("database error on"):
                cursor = self.raw.cursor()
                if self.sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        self.cursor, self._writing = cursor, True
        return cursor

    def end(self, commit: bool) -> None:
        """Commit (or roll back) the write transaction and let other threads in."""
        try:
            with self.translated("database error on"):
                if not commit:
                    self.raw.rollback()
                    return
                try:
                    self.raw.commit()
                except BaseException:
                    with suppress(Exception):
                        self.raw.rollback()  # never leave the connection inside a failed transaction
                    raise
        finally:
            self.cursor, self._writing = None, False
            self.lock.release()

    @contextmanager
    def schema_change(self) -> Iterator[sa.Connection]:
        """SQLAlchemy's own connection, in a transaction, for DDL and migrations."""
        with self.lock, self.translated("cannot change the schema of"):
            if self.conn.in_transaction():  # left open by an inspection
                self.conn.rollback()
            self._changing = True
            try:
                with self.conn.begin():
                    self._changing = False
                    yield self.conn
            finally:
                self._changing = False

    # ---- errors -----------------------------------------------------------------------------------
    @contextmanager
    def translated(self, doing: str) -> Iterator[None]:
        """Turn a database error raised inside into the StoreError it means (see the module docstring)."""
        try:
            yield
        except CaseworkError:
            raise
        except Exception as exc:
            failure = self.failure(exc, doing)
            if failure is None:
                raise
            raise failure from None

    def failure(self, exc: BaseException, doing: str = "database error on") -> StoreError | None:
        """The StoreError a database error means; None for anything else."""
        orig = getattr(exc, "orig", None) or exc
        if not isinstance(exc, sa.exc.DBAPIError | self.driver_error):
            return None
        message = f"{doing} {self.url}: {one_line(exc)}"
        if getattr(orig, "sqlstate", None) == "23505" or getattr(orig, "sqlite_errorname", None) in (
                "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            return UniqueViolation(message, url=self.url)
        return StoreError(message, url=self.url)

    def close(self) -> None:
        with self.lock:
            self.conn.close()
            self.engine.dispose()
