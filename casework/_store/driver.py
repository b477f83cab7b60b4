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

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from casework._store.connecting import Cursor, Statement, Translated, describe_url, one_line, pool_options
from casework._store.footprint import DEFAULT, Footprint
from casework.errors import InvalidInput, StoreError, UniqueViolation

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
SAVEPOINT = "casework_write"  # a write on a joined connection is this savepoint of the host's transaction


class Database:
    """The connections of one store: a SQLAlchemy pool (its own, made from a URL, or the host's Engine).

    Each read and each write transaction checks a connection out of the pool for its duration (in the
    thread that runs it), so one Database serves the threads of a process at once. A connection the
    server dropped is found by the BEGIN each scope on casework's own pool of a server database sends
    itself, and replaced, the BEGIN sent again (see :meth:`_begun`; a host's pool checks as the host
    configured it, pre-ping say). After ``os.fork`` the child gets a pool of its own (see
    :func:`_after_fork`). An in-memory SQLite database is one connection, shared under a lock. Reads
    run in short transactions of their own (or inside the write transaction their thread has open);
    writes in one transaction per command (``BEGIN IMMEDIATE`` on SQLite, so two writers queue on the
    database lock instead of deadlocking on a lock upgrade). Inside :meth:`joining`, the thread's
    reads and writes run on the host's connection instead, in its transaction (each write a savepoint
    of it).
    """

    def __init__(self, source: str | sa.Engine, synchronous: str = "NORMAL", footprint: Footprint = DEFAULT) -> None:
        self.footprint = footprint  # where the tables are: statements are compiled onto its tables
        if not isinstance(source, str | sa.Engine):
            raise InvalidInput(f"cannot use {type(source).__name__!r} as a database: expected a database URL, "
                               "an SQLite file path or a SQLAlchemy Engine"
                               + (" (a sync one: pass AsyncEngine.sync_engine's URL, or the sync Engine itself)"
                                  if hasattr(source, "sync_engine") else ""), field="db",
                               value=type(source).__name__)
        if isinstance(source, sa.Engine):
            self.url = source.url.render_as_string(hide_password=True)
            self.engine, self.owned = source, False
        else:
            self.url = describe_url(source)
            try:
                self.engine = sa.create_engine(source, **pool_options(source))
            except Exception as exc:  # an unknown scheme, a missing driver, a malformed URL
                raise StoreError(f"cannot use database {self.url}: {one_line(exc)}", url=self.url) from None
            self.owned = True
        self.dialect = self.engine.dialect
        self.name: str = self.dialect.name
        self.sqlite = self.name == "sqlite"
        self._named = self.dialect.paramstyle in ("named", "pyformat")
        self.driver_error: type[Exception] = self.dialect.loaded_dbapi.Error
        # One connection for everyone (an in-memory SQLite database): every scope holds it in turn.
        self._shared = isinstance(self.engine.pool, StaticPool | SingletonThreadPool)
        # casework's own pool of a server database: a scope's connection is in autocommit mode while casework
        # holds it and the scope sends BEGIN and COMMIT (or ROLLBACK) itself; its BEGIN, which the driver would
        # otherwise send on its own before the first statement, is also the check that the connection lives
        # (see _begun): no pre-ping, one round trip fewer a command.
        self._explicit = self.owned and self.name == "postgresql"
        self.one_connection = self._shared  # (a forked child keeps it: a copy of the data, or the parent's file handle)
        # An SQLite file of casework's own: each thread keeps its connection between scopes (see _checkout).
        self._keep = self.sqlite and self.owned and not self._shared
        self.lock = threading.RLock()
        self._local = _Scope()
        self._statements: dict[str, Statement] = {}
        if self.sqlite:
            if synchronous.upper() not in SYNCHRONOUS:
                raise StoreError(f"synchronous {synchronous!r}: expected NORMAL, FULL or EXTRA", url=self.url)
            if self.owned:
                self._setup_sqlite(synchronous.upper())
        with self.translated("cannot open database"):
            self.engine.raw_connection().close()  # fail now, not at the first command
        _DATABASES.add(self)

    def _setup_sqlite(self, synchronous: str) -> None:
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
            conn.exec_driver_sql("BEGIN IMMEDIATE" if self._local.changing else "BEGIN")

    # ---- statements ------------------------------------------------------------------------------
    def statement(self, key: str, build: Callable[[], Any], **compile_kw: Any) -> Statement:
        """The statement ``build()`` makes, compiled on first use and kept under ``key``."""
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = self.compile(build(), **compile_kw)
        return found

    def compile(self, clause: Any, **compile_kw: Any) -> Statement:
        """A statement compiled for this dialect, on the footprint's tables (list values rendered in place)."""
        return Statement(self.footprint.adapt(clause).compile(
            dialect=self.dialect, compile_kwargs={"render_postcompile": True}, **compile_kw), self._named)

    # ---- scopes -----------------------------------------------------------------------------------
    def _checkout(self) -> Any:
        """A pooled connection (pre-pinged when the pool does), holding the lock of a shared one. An SQLite
        file casework opened keeps one connection checked out per thread between scopes (``_keep``): a
        checkout from the pool costs more than the rest of a read; a scope opened while another is open in
        the thread takes a connection of its own."""
        local = self._local
        if self._keep and local.cursor is None:
            if local.kept is None:
                with self.translated("cannot open database"):
                    local.kept = self.engine.raw_connection()
            return local.kept
        if self._shared:
            self.lock.acquire()
        try:
            with self.translated("cannot open database"):
                return self.engine.raw_connection()
        except BaseException:
            if self._shared:
                self.lock.release()
            raise

    def _opened(self, sqlite_begin: str) -> tuple[Any, Cursor]:
        """A connection of the pool and a cursor on it, its transaction begun: by ``sqlite_begin`` on SQLite, by
        casework's own BEGIN on its PostgreSQL pool (:meth:`_begun`), else by the driver at the first statement."""
        if self._explicit:
            return self._begun()
        pooled = self._checkout()
        try:
            with self.translated("database error on"):
                cursor = pooled.driver_connection.cursor()
                if self.sqlite:
                    cursor.execute(sqlite_begin)
        except BaseException:
            self._checkin(pooled, commit=False)
            raise
        return pooled, cursor

    def _begun(self) -> tuple[Any, Cursor]:
        """A connection of casework's own PostgreSQL pool, its transaction begun by casework (see ``_explicit``).
        A connection the server dropped fails its BEGIN before anything is done on it: it is dropped from the
        pool and the BEGIN sent on the next one, as many times as the pool then holds idle connections, and
        once more on a new one (after a restart every idle one is gone)."""
        left: int | None = None  # the tries left, counted once a BEGIN failed (not on every call)
        while True:
            pooled = self._checkout()
            cursor: Cursor | None = None
            try:
                raw = pooled.driver_connection
                raw.autocommit = True
                cursor = raw.cursor()
                cursor.execute("BEGIN")
                return pooled, cursor
            except BaseException as exc:
                if left is None:
                    left = 1 + int(getattr(self.engine.pool, "checkedin", lambda: 0)())
                left -= 1
                dropped = left >= 0 and isinstance(exc, self.driver_error) and self.dialect.is_disconnect(
                    cast(Any, exc), pooled.dbapi_connection, cursor)
                with suppress(Exception):
                    pooled.invalidate()  # never back to the pool: its state is not known
                if not isinstance(exc, Exception):
                    raise
                if not dropped:
                    failure = self.failure(exc, "cannot open database")
                    if failure is None:
                        raise
                    raise failure from None

    def _checkin(self, pooled: Any, commit: bool) -> None:
        """Finish the connection's transaction and give it back to the pool (dropped if it is broken)."""
        try:
            with self.translated("database error on"):
                # On the driver's connection itself: the pool's wrapper would find commit() only after a
                # failed attribute lookup (its __getattr__), thousands of instructions per fire.
                connection = pooled.dbapi_connection
                try:
                    if self._explicit:
                        connection.cursor().execute("COMMIT" if commit else "ROLLBACK")
                        connection.autocommit = False  # back in the pool as the pool made it
                    elif commit:
                        connection.commit()
                    else:
                        connection.rollback()
                except BaseException:
                    with suppress(Exception):  # never leave the connection inside a failed transaction
                        if self._explicit:
                            connection.cursor().execute("ROLLBACK")
                        else:
                            connection.rollback()
                    raise
        except BaseException:
            if pooled is self._local.kept:
                self._local.kept = None
            with suppress(Exception):
                pooled.invalidate()  # a connection that cannot end its transaction is not reused
            raise
        finally:
            if pooled is not self._local.kept:
                with suppress(Exception):
                    pooled.close()
                if self._shared:
                    self.lock.release()

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        """A cursor for reads: the open transaction's (or joined connection's), else one of a short read
        transaction on a connection of the pool."""
        local = self._local
        if local.cursor is not None:
            yield local.cursor
            return
        if local.joined is not None:
            local.cursor = local.joined.cursor()
            try:
                yield local.cursor
            finally:
                local.cursor = None
            return
        pooled, cursor = self._opened("BEGIN")  # (on SQLite: several statements, one snapshot)
        try:
            local.cursor = cursor
            yield cursor
        finally:
            local.cursor = None
            self._checkin(pooled, commit=False)

    def begin(self) -> Cursor:
        """Begin this thread's write transaction (its connection is this thread's until :meth:`end`)."""
        local = self._local
        if local.writing:
            raise StoreError("a write transaction is already open on this Store in this thread; "
                             "finish it before beginning another", url=self.url)
        if local.joined is not None:
            with self.translated("database error on"):
                cursor = local.joined.cursor()
                if self.sqlite and not local.joined.in_transaction:
                    cursor.execute("BEGIN IMMEDIATE")  # the host's commit or rollback ends it
                cursor.execute(f"SAVEPOINT {SAVEPOINT}")
        else:
            local.pooled, cursor = self._opened("BEGIN IMMEDIATE")
        local.cursor, local.writing = cursor, True
        return cursor

    def end(self, commit: bool) -> None:
        """Commit (or roll back) this thread's write transaction: on a joined connection, release (or roll
        back to) its savepoint and leave the transaction to the host."""
        local = self._local
        pooled, cursor = local.pooled, local.cursor
        assert cursor is not None, "end() without begin()"
        local.pooled, local.cursor, local.writing = None, None, False
        if pooled is not None:
            self._checkin(pooled, commit)
            return
        with self.translated("database error on"):
            if not commit:
                cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")

    @property
    def joined(self) -> bool:
        """Whether this thread runs on a host's connection (whose commit is the host's, not casework's)."""
        return self._local.joined is not None

    @contextmanager
    def joining(self, connection: sa.Connection) -> Iterator[None]:
        """Run this thread's reads and writes on the host's ``connection``, inside its transaction."""
        if not isinstance(connection, sa.Connection):
            raise InvalidInput(f"cannot join {type(connection).__name__!r}: expected a SQLAlchemy Connection "
                               "(engine.connect() or session.connection())", field="connection")
        theirs = connection.engine.url.render_as_string(hide_password=True)
        if connection.dialect.name != self.name or (theirs != self.url and not self.sqlite):
            raise InvalidInput(f"cannot join a connection to {theirs}: this engine's database is {self.url}",
                               field="connection", value=theirs)
        local = self._local
        if local.joined is not None or local.writing:
            raise StoreError("this thread has already joined a connection or holds a write transaction; "
                             "finish it first", url=self.url)
        with self.translated("cannot join the connection to"):
            raw = connection.connection.driver_connection
        autocommit = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        if autocommit or getattr(raw, "autocommit", False):
            raise InvalidInput("cannot join a connection in autocommit mode: its writes would not be one "
                               "transaction", field="connection")
        if not connection.in_transaction():
            # Commit as you go: begun here as the host's first statement would begin it, so that the host's
            # commit() commits casework's writes too (and closing it uncommitted rolls them back).
            with self.translated("cannot begin a transaction on"):
                connection.begin()
        local.joined = raw
        try:
            yield
        finally:
            local.joined = None

    @contextmanager
    def connection(self) -> Iterator[sa.Connection]:
        """SQLAlchemy's own connection from the pool (for inspection), left without a transaction."""
        with self.lock if self._shared else nullcontext(), self.engine.connect() as conn:
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()

    @contextmanager
    def schema_change(self) -> Iterator[sa.Connection]:
        """SQLAlchemy's own connection, in a transaction, for DDL and migrations."""
        with self.translated("cannot change the schema of"), self.connection() as conn:
            self._local.changing = True
            try:
                with conn.begin():
                    self._local.changing = False
                    yield conn
            finally:
                self._local.changing = False

    # ---- errors -----------------------------------------------------------------------------------
    def translated(self, doing: str) -> Translated:
        """Turn a database error raised inside into the StoreError it means (see the module docstring)."""
        return Translated(self, doing)

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

    def after_fork(self) -> None:
        """In a forked child: a pool of its own, the parent's connections left alone (see :func:`_after_fork`)."""
        if self._local.kept is not None:  # the parent's: never used, closed or collected in the child
            _INHERITED.append(self._local.kept)
        self._local = _Scope()
        self.lock = threading.RLock()
        if not self._shared:
            self.engine.dispose(close=False)

    def close(self) -> None:
        """Close the pool casework made (a host's Engine is the host's to dispose of)."""
        _DATABASES.discard(self)
        kept, self._local.kept = self._local.kept, None
        if kept is not None:
            with suppress(Exception):
                kept.close()
        if self.owned:
            with self.lock if self._shared else nullcontext():
                self.engine.dispose()


class _Scope(threading.local):
    """What the current thread has open on a Database."""

    cursor: Cursor | None = None  # the cursor of the scope open now
    pooled: Any = None  # the pooled connection of this thread's write transaction
    kept: Any = None  # the connection this thread keeps checked out between scopes (Database._keep)
    writing = False
    joined: Any = None  # the host's driver connection this thread runs on (Database.joining)
    changing = False  # a schema change is beginning (SQLite: BEGIN IMMEDIATE)


_DATABASES: weakref.WeakSet[Database] = weakref.WeakSet()
_INHERITED: list[Any] = []  # in a forked child: the connections its parent's threads kept (left alone)


def _after_fork() -> None:
    """In a forked child, every Database starts a pool of its own, never using the parent's connections
    (SQLAlchemy's ``dispose(close=False)``: the parent keeps them open); an in-memory database is the
    child's own copy and stays."""
    for db in list(_DATABASES):
        db.after_fork()


os.register_at_fork(after_in_child=_after_fork)
