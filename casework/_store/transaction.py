"""A write transaction: a :class:`~casework._store.rows.Reader` that also writes, every write on casework's
tables written once (cases inserted and updated by compare-and-set, entries appended and sealed into the global
chain, numbers drawn, idempotent results and policy versions kept)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from casework._store.chain import Sealer
from casework._store.codec import AUDIT_INSERTED, CASE_INSERTED, CASE_UPDATED, Codec, StoredCase
from casework._store.driver import Database
from casework._store.outbox import Appended, Outbox
from casework._store.rows import Opened, Reader, case_by_number, case_key, chunks, head_of
from casework._store.tables import audit, cases, counters, idem, policies
from casework.changes import Change
from casework.domain import Case, PolicyRef
from casework.errors import WriteConflict
from casework.jsontext import strict


class Transaction(Reader):
    """The writes of one command, inside one database transaction (``with store.transaction() as tx``).

    Begun on entering the ``with`` block, committed on leaving it, rolled back on any exception.
    """

    def __init__(self, db: Database, codec: Codec, refs: dict[str, PolicyRef], sealer: Sealer,
                 outbox: Outbox) -> None:
        super().__init__(db, codec, None, refs)
        self.sealer = sealer
        self.outbox = outbox
        self.changes: list[Change] = []  # what it wrote, for the hooks run after its commit
        # The chain's head as the last ``get`` read it (SQLite), for the next seal; None once used or unknown.
        self._head: tuple[int, str] | None = None

    def __enter__(self) -> Transaction:
        self.cursor = self.db.begin()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        failed = exc is not None
        if failed:
            self.sealer.forget()  # the chain's key id it may have set is rolled back
        try:
            self.db.end(commit=not failed)
        except Exception:
            if not failed:
                raise
        if failed and isinstance(exc, Exception):
            translated = self.db.failure(exc)
            if translated is not None:
                raise translated from None
        if not failed and self.changes and self.outbox.after_commit is not None and not self.db.joined:
            # committed: the hooks hear of it (never in the transaction; a joined write is committed by the host,
            # if at all, so its changes are told by the outbox alone)
            self.outbox.after_commit(self.changes)

    def get(self, number: str) -> StoredCase | None:
        """The case (see ``Reader.get``). On SQLite the same statement reads the global chain's head, which the
        seal of this transaction's next entries then needs not read again: the transaction holds the database's
        write lock (``BEGIN IMMEDIATE``), so no other writer can move it, and this transaction moves it only by
        sealing, which takes the head read here once (``chain_head``). One statement fewer per fire."""
        if not self.db.sqlite:
            return super().get(number)
        found = self.run(self.db.statement("get_case_and_head", lambda: case_by_number(with_head=True)),
                         {"number": case_key(number)}).fetchone()
        if found is None:
            return None
        self._head = head_of(found[-2], found[-1])
        return self.codec.stored_case(found[:-2], self.ref_of)

    def chain_head(self) -> tuple[int, str]:
        """``(gseq, link)`` of the last sealed entry: as the last ``get`` read it, if it has not been used since
        (the seal that uses it moves the head), else read now."""
        head, self._head = self._head, None
        return head if head is not None else super().chain_head()

    def next_numbers(self, name: str, count: int = 1) -> range:
        """The next ``count`` values of a named counter, in one update (contiguous, never shared)."""
        statement = self.db.statement("counter", lambda: sa.text(
            f"INSERT INTO {self.db.footprint.table(counters.name)} AS c (name, value) VALUES (:name, :n) "
            "ON CONFLICT (name) DO UPDATE SET value = c.value + :n RETURNING value"))
        last = int(self.run(statement, {"name": name, "n": count}).fetchone()[0])
        return range(last - count + 1, last + 1)

    def insert_cases(self, opened: Sequence[Opened]) -> list[int]:
        """Insert new cases, each with its opening entry (one ``executemany`` each); their row ids."""
        if not opened:
            return []
        insert = self.db.statement("insert_case", lambda: cases.insert(), column_keys=CASE_INSERTED)
        self.send(insert.sql, [insert.params(self.codec.case_row(case, entry.seq, entry.hash))
                               for case, entry, _ in opened], many=True)
        ids: dict[str, int] = {}
        numbers = [case.number for case, _, _ in opened]
        for chunk in chunks(numbers):
            query = sa.select(cases.c.number, cases.c.id)
            ids.update((r[0], r[1]) for r in self.run(*self._among("ids_of", cases.c.number, chunk, query)).fetchall())
        self.append([(ids[entry.number], entry, texts, case) for case, entry, texts in opened])
        return [ids[n] for n in numbers]

    def update_case(self, stored: StoredCase, new: Case, last_seq: int, last_hash: str) -> None:
        """Compare-and-set the case row on the version and trail end read; WriteConflict if beaten.

        ``last_seq``/``last_hash`` are those of the newest entry appended with it (in this transaction).
        """
        self.update_cases([(stored, new, last_seq, last_hash)])

    def update_cases(self, updates: Sequence[tuple[StoredCase, Case, int, str]]) -> None:
        """Compare-and-set several case rows (see ``update_case``) with one ``executemany``; WriteConflict
        (naming the first) if any was beaten: the caller rolls the transaction back."""
        if not updates:
            return
        statement = self.db.statement("update_case", lambda: cases.update().where(
            cases.c.id == sa.bindparam("b_id")).where(cases.c.version == sa.bindparam("b_version")).where(
            cases.c.last_seq == sa.bindparam("b_last_seq")), column_keys=CASE_UPDATED)
        rows = []
        for stored, new, last_seq, last_hash in updates:
            row = self.codec.case_changes(new, last_seq, last_hash, stored)
            row.update(b_id=stored.id, b_version=stored.case.version, b_last_seq=stored.last_seq)
            rows.append(statement.params(row))
        if self.send(statement.sql, rows[0] if len(rows) == 1 else rows, many=len(rows) > 1).rowcount != len(rows):
            first = updates[0][0]
            raise WriteConflict(first.case.number, first.case.version)

    def extend_trail(self, stored: StoredCase, last_seq: int, last_hash: str) -> None:
        """Move the case's trail end (a refused attempt: the case itself is untouched); WriteConflict if beaten."""
        statement = self.db.statement("extend_trail", lambda: cases.update().where(
            cases.c.id == sa.bindparam("b_id")).where(cases.c.last_seq == sa.bindparam("b_last_seq")),
            column_keys=("last_seq", "last_hash"))
        values = {"last_seq": last_seq, "last_hash": last_hash, "b_id": stored.id, "b_last_seq": stored.last_seq}
        if self.run(statement, values).rowcount != 1:
            raise WriteConflict(stored.case.number, stored.case.version)

    def append(self, entries: Sequence[Appended]) -> None:
        """Insert audit entries ``(case id, entry, its texts when made, the case after it)`` with one
        ``executemany``, sealed into the global chain when this transaction holds the seal (see
        ``casework._store.chain``), and their change rows into the outbox (see ``casework._store.outbox``).
        A case id (and case) of None: an opening refused, which has no case (and is no change)."""
        if entries:
            insert = self.db.statement("insert_entry", lambda: audit.insert(), column_keys=AUDIT_INSERTED)
            values = [self.codec.entry_row(case_id, e, texts) for case_id, e, texts, _ in entries]
            self.sealer.seal(self, values)
            rows = [insert.params(v) for v in values]
            self.send(insert.sql, rows[0] if len(rows) == 1 else rows, many=len(rows) > 1)
            self.changes.extend(self.outbox.write(self, entries, values))

    def seal_waiting(self) -> None:
        """Seal the entries other writers left unsealed (if this transaction gets the seal)."""
        self.sealer.seal(self, [])

    def remember(self, actor: str, key: str, request: str, description: str, number: str, result: Any,
                 now: datetime) -> None:
        """Store ``actor``'s idempotency key's request and result (UniqueViolation if another writer stored it
        first)."""
        statement = self.db.statement("idem_put", lambda: idem.insert(), column_keys=(
            "actor", "key", "request", "description", "number", "result", "created_at"))
        self.run(statement, {"actor": actor, "key": key, "request": request, "description": description,
                             "number": number, "result": strict(result), "created_at": self.codec.time.store(now)})

    def save_policy(self, policy_hash: str, label: str, name: str, source: str, now: datetime, chain: str,
                    personal: Sequence[str], seq: int, prev: str) -> None:
        statement = self.db.statement("policy_put", lambda: policies.insert(), column_keys=(
            "hash", "label", "name", "source", "loaded_at", "seq", "prev_hash", "chain_hash", "personal"))
        self.run(statement, {"hash": policy_hash, "label": label, "name": name, "source": source,
                             "loaded_at": self.codec.time.store(now), "seq": seq, "prev_hash": prev,
                             "chain_hash": chain, "personal": strict(sorted(personal))})

    def last_policy(self) -> tuple[int, str] | None:
        """``(seq, chain_hash)`` of the newest stored policy version."""
        statement = self.db.statement("policy_last", lambda: sa.select(policies.c.seq, policies.c.chain_hash)
                                      .order_by(policies.c.seq.desc()).limit(1))
        row = self.run(statement).fetchone()
        return (row[0], row[1]) if row else None
