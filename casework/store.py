"""Persistence: the one door to the database.

SQLite (WAL) is the embedded default; PostgreSQL is used by giving a ``postgresql+psycopg://`` URL.
The tables, the row codec, the connection and the queries live in the private package
``casework._store``, which nothing else imports (ruff's banned-api rule keeps it so).

Concurrency: every write is a compare-and-set, on ``cases.version`` (applied transitions) or on
``cases.last_seq`` (refused attempts, which only extend the audit trail); losing one raises
:class:`~casework.errors.WriteConflict`. One read of the case inside the write transaction is all a
transition needs, so its decision and its write see the same row.

>>> store = Store("sqlite:///:memory:")
>>> store.get("RF-20261122-000001") is None
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

import sqlalchemy as sa

from casework._store.chain import Sealer
from casework._store.codec import AUDIT_INSERTED, CASE_UPDATED, Codec, StoredCase
from casework._store.connecting import describe_url
from casework._store.driver import Database
from casework._store.footprint import DEFAULT, Footprint
from casework._store.outbox import Appended, Outbox
from casework._store.publications import Publication, VersionRow
from casework._store.rows import ChainRow, Filters, Opened, Reader
from casework._store.tables import APPEND_ONLY, HEAD_REVISION, SCHEMA_VERSION, SEAL_KEY, AuditRow, CaseRow, meta
from casework._store.transaction import Transaction
from casework._store.versions import PolicyVersions
from casework.audit import AuditKey
from casework.domain import AuditEntry, Case, PolicyRef
from casework.errors import InvalidInput, SchemaOutOfDate, StoreError, Unreadable

# The columns a transition writes (its compare-and-set of the case row, its audit entry), for tools that
# write rows exactly as the store does (the benchmarks' raw baselines).
UPDATED_COLUMNS, ENTRY_COLUMNS = CASE_UPDATED, AUDIT_INSERTED

__all__ = [
    "DEFAULT",
    "ENTRY_COLUMNS",
    "HEAD_REVISION",
    "SCHEMA_VERSION",
    "SEAL_KEY",
    "UPDATED_COLUMNS",
    "Appended",
    "AuditRow",
    "CaseRow",
    "ChainRow",
    "Connection",
    "DatabaseSource",
    "Filters",
    "Footprint",
    "Opened",
    "Publication",
    "Store",
    "StoredCase",
    "Transaction",
    "VersionRow",
    "describe_url",
]

Trail = tuple[str, StoredCase | None, list[AuditEntry], str | None]
Connection = sa.Connection  # a host's connection, to join its transaction (Store.joining)
DatabaseSource = str | sa.Engine  # a SQLAlchemy URL, or the host's SQLAlchemy Engine (its pool)


class Store(PolicyVersions):
    """Cases, audit entries, idempotency keys and policy versions in one database.

    ``url`` is a SQLAlchemy URL or a SQLAlchemy ``Engine`` (the host's pool). Each call checks a
    connection out of the pool for its duration, so one Store serves the threads of a process at once
    (see ``casework._store.driver.Database``); :meth:`joining` runs a thread's calls in the host's
    transaction.
    """

    def __init__(self, url: DatabaseSource, *, create: bool = True, synchronous: str = "NORMAL", check: bool = True,
                 key: AuditKey | None = None, footprint: Footprint = DEFAULT) -> None:
        self._db = Database(url, synchronous, footprint)
        self.footprint = footprint
        self.url = self._db.url  # without its password
        self.dialect = self._db.name
        # One connection for the whole process (an in-memory SQLite database, a host's StaticPool): never forked.
        self.one_connection = self._db.one_connection
        self.key = key
        self._codec = Codec(self._db.name)
        self._refs: dict[str, PolicyRef] = {}
        self._sealer = Sealer(key, self.url)
        # Which entries become changes, who hears of them after commit (set by Engine), reading them, the cursors.
        self.outbox = Outbox(self._read, self.transaction, self.seal, sqlite=self._db.sqlite)
        try:
            if footprint.schema and self.dialect != "postgresql":
                raise InvalidInput(f"schema {footprint.schema!r}: a schema is for PostgreSQL; on {self.dialect} keep "
                                   "casework's tables apart with a table prefix instead", field="schema")
            if create:
                self.create_schema()
            if check:
                self._check_schema()
        except BaseException:
            self._db.close()  # a refused database keeps no connection open
            raise

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def joining(self, connection: sa.Connection) -> Iterator[None]:
        """Run this thread's reads and writes on the host's ``connection``, inside the host's transaction:
        every write is a savepoint of it, committed or rolled back with the host's own writes."""
        with self._db.joining(connection):
            try:
                yield
            finally:
                self._sealer.forget()  # what it knows of the chain may have been rolled back with the host

    def transaction(self) -> Transaction:
        """One write transaction: everything in ``with store.transaction() as tx`` commits together or not at all."""
        return Transaction(self._db, self._codec, self._refs, self._sealer, self.outbox)

    @contextmanager
    def _read(self) -> Iterator[Reader]:
        """A short read transaction (or, inside this thread's write transaction, that one)."""
        with self._db.reading() as cursor:
            yield Reader(self._db, self._codec, cursor, self._refs)

    # ---- schema ------------------------------------------------------------------------------------
    def create_schema(self) -> None:
        """Create the tables if they do not exist (one query when they do)."""
        fp = self.footprint
        found = self._tables()
        if fp.name("casework_meta") in found:
            return
        if found:
            raise StoreError(f"{self.url} is not a casework database: it has tables named {', '.join(sorted(found))} "
                             f"but no {fp.name('casework_meta')}; refusing to write into it", url=self.url)
        with self._db.schema_change() as conn:
            # A new database gets today's schema in one go, stamped with the Alembic head in casework's own
            # version table, exactly as if every migration had run (a test keeps the two in step).
            if fp.schema:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{fp.schema}"')
            fp.metadata.create_all(conn)
            conn.exec_driver_sql(fp.open_due_index())
            conn.exec_driver_sql(fp.unsealed_index())
            conn.execute(fp.adapt(meta.insert()).values(key="schema", value=str(SCHEMA_VERSION)))
            conn.execute(fp.adapt(meta.insert()).values(key=SEAL_KEY, value=""))
            fp.stamp(conn, HEAD_REVISION)
            if self.dialect == "postgresql":
                for statement in fp.append_only(APPEND_ONLY):
                    conn.execute(sa.text(statement))

    def _tables(self) -> set[str]:
        """Which of casework's tables exist (the meta table alone, in the usual case)."""
        fp = self.footprint
        with self._db.translated("cannot open database"), self._db.connection() as conn:
            insp = sa.inspect(conn)
            if insp.has_table(fp.name("casework_meta"), schema=fp.schema):
                return {fp.name("casework_meta")}
            return {t.name for t in fp.tables if insp.has_table(t.name, schema=fp.schema)}

    def schema_version(self) -> str | None:
        """The schema version recorded in the database (None if it has none)."""
        with self._read() as r:
            return r.schema_version()

    def _check_schema(self) -> None:
        try:
            found = self.schema_version()
        except StoreError as exc:
            raise StoreError(f"{self.url} is not a casework database: {str(exc).split(': ', 1)[-1]}",
                             url=self.url) from None
        if found is None:
            raise StoreError(f"{self.url} is not a casework database (no schema version)", url=self.url)
        if found != str(SCHEMA_VERSION):
            newer = found.isdigit() and int(found) > SCHEMA_VERSION
            hint = ("it was written by a newer casework; upgrade casework" if newer
                    else "run 'casework db upgrade' to bring it up to date")
            raise SchemaOutOfDate(f"{self.url} has schema version {found!r}, this casework needs "
                                  f"{SCHEMA_VERSION}: {hint}", url=self.url)

    def upgrade(self) -> tuple[str | None, str]:
        """Run every pending Alembic migration; returns ``(version before, version after)``.

        Entries the migrations seal into the global chain are sealed with this store's audit key, if any.
        """
        from casework.migrations import run_upgrade

        before = self.schema_version() if self.footprint.name("casework_meta") in self._tables() else None
        try:
            with self._db.schema_change() as conn:
                run_upgrade(conn, self.footprint, self.key)
        except StoreError as exc:
            raise StoreError(str(exc).replace("cannot change the schema of", "migration failed on"),
                             url=self.url) from None
        return before, self.schema_version() or "?"

    # ---- reads --------------------------------------------------------------------------------------
    def get(self, number: str) -> StoredCase | None:
        with self._read() as r:
            return r.get(number)

    def numbers_like(self, number: str, limit: int = 200) -> list[str]:
        """Case numbers sharing a prefix with ``number`` (candidates for "did you mean")."""
        with self._read() as r:
            return r.numbers_like(number, limit)

    def history(self, number: str) -> list[AuditEntry]:
        with self._read() as r:
            return r.history(number)

    def find(self, *, kind: str | None = None, state: str | None = None, order_id: str | None = None,
             customer: str | None = None, open_only: bool = False, due_before: datetime | None = None,
             queue: str | None = None, limit: int | None = 100, offset: int = 0, assignee: str | None = None,
             unassigned: bool = False, channel: str | None = None, text: str | None = None,
             states: Sequence[tuple[str, str]] | None = None) -> list[Case]:
        """Cases matching every given filter: newest first, or most overdue first with ``due_before``
        (``unassigned``: open cases nobody is assigned to; ``text``: in the order id, the customer or a note,
        in any case; ``states``: in one of these ``(kind, state)``)."""
        filters = Filters(kind, state, order_id, customer, queue, open_only, due_before, assignee, unassigned,
                          channel, text, None if states is None else tuple(states))
        with self._read() as r:
            return r.find(filters, limit, offset)

    def due_numbers(self, now: datetime, limit: int | None = None) -> list[str]:
        """Numbers of open cases with a deadline at or before ``now``, most overdue first."""
        with self._read() as r:
            return r.due_numbers(now, limit)

    def last_entry_times(self, numbers: Sequence[str]) -> dict[str, datetime]:
        """The time of each of these cases' newest audit entry, by number (a case's trail never goes back)."""
        with self._read() as r:
            return r.last_entry_times(numbers)

    def count_open(self, kind: str | None = None, state: str | None = None) -> int:
        """How many open (not closed) cases there are, optionally of one kind and in one state."""
        with self._read() as r:
            return r.count_open(kind, state)

    def iter_open(self, kind: str | None = None, state: str | None = None, batch: int = 2000) -> Iterator[Case]:
        """Every open (not closed) case, oldest first, read ``batch`` rows at a time (for simulations).

        Keyset-paginated on the primary key, each batch in its own short read: a scan of 100,000 cases
        never holds a transaction open, and a case opened during the scan may or may not be seen.
        """
        after = 0
        while True:
            with self._read() as r:
                page = r.open_page(after, batch, kind, state)
            if not page:
                return
            yield from (stored.case for stored in page)
            after = page[-1].id

    def iter_all(self, batch: int = 500) -> Iterator[Trail]:
        """Every case with its whole audit trail, in batches (for verify and export).

        Yields ``(number, stored case, entries, problem)``; a row that cannot be read is yielded with
        ``stored=None`` and the problem, so one damaged row never hides the others.
        """
        after = 0
        while True:
            with self._read() as r:
                keys = r.case_keys(after, batch)
            if not keys:
                return
            try:
                yield from self._trails([k[0] for k in keys])
            except Unreadable:
                for case_id, number in keys:  # find the damaged rows one by one
                    try:
                        yield from self._trails([case_id])
                    except Unreadable as exc:
                        yield number, None, [], str(exc)
            after = keys[-1][0]

    def _trails(self, ids: Sequence[int]) -> list[Trail]:
        with self._read() as r:
            found = r.cases_by_id(ids)
            trails = r.trails(ids)
        return [(s.case.number, s, trails[s.id], None) for s in found]

    def audit_between(self, since: datetime | None, until: datetime | None, kind: str | None = None,
                      batch: int = 500) -> Iterator[tuple[Case, list[AuditEntry]]]:
        """The cases opened in ``[since, until)`` (``None``: no bound), each with its entries before ``until``.

        Cases come in id order, ``batch`` per short read transaction (keyset-paginated).
        """
        after = 0
        while True:
            with self._read() as r:
                keys = r.case_keys(after, batch, since, until, kind)
                if not keys:
                    return
                ids = [k[0] for k in keys]
                found = r.cases_by_id(ids)
                trails = r.trails(ids, until)
            for stored in found:
                yield stored.case, trails[stored.id]
            after = keys[-1][0]

    def idempotent_result(self, actor: str, key: str, request: str) -> tuple[str, str, str] | None:
        """``(request fingerprint, description, result JSON)`` stored for ``actor``'s idempotency key (see
        ``Reader.idempotent_result``: a key stored before keys were per caller answers only its own request)."""
        with self._read() as r:
            return r.idempotent_result(actor, key, request)

    # ---- the global chain ----------------------------------------------------------------------------
    def chain_head(self) -> tuple[int, str]:
        """``(gseq, link)`` of the last entry sealed into the global chain (``(0, GENESIS)``: none)."""
        with self._read() as r:
            return r.chain_head()

    def chain_key(self) -> str:
        """The id of the audit key the database says its chain is written with ('' if none)."""
        with self._read() as r:
            return r.chain_key()

    def iter_chain(self, until: int, batch: int = 5000) -> Iterator[ChainRow]:
        """The sealed entries up to place ``until``, in place order (``ChainRow``), each batch a short read."""
        after = 0
        while after < until:
            with self._read() as r:
                page = r.chain_page(after, until, batch)
            if not page:
                return
            yield from page
            after = page[-1][0]

    def unsealed(self) -> list[ChainRow]:
        """The entries not sealed into the global chain yet, in id order."""
        with self._read() as r:
            return r.unsealed()

    def seal(self) -> None:
        """Seal the entries waiting to be (a write of the chain only; nothing when none wait)."""
        with self.transaction() as tx:
            tx.seal_waiting()

    def refused_openings(self, prefix: str | None = None,
                         damaged: list[tuple[str, int | None, str]] | None = None) -> list[AuditEntry]:
        """The openings refused (audit entries of no case), oldest first; of one kind's series (``prefix``) if given.
        With ``damaged``, rows that cannot be decoded are listed there ``(number, seq, why)`` instead of raising."""
        with self._read() as r:
            return r.refused_openings(prefix, damaged)

    def orphan_entries(self) -> list[tuple[str, int, int]]:
        """``(number, seq, case id)`` of audit entries that name a case whose row does not exist."""
        with self._read() as r:
            return r.orphan_entries()
