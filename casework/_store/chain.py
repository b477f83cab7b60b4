"""Sealing audit entries into the global chain, inside the transaction that writes them.

Every entry of the database gets a place (``gseq``, 1, 2, 3, … with no gaps) and a link that chains
it to the entry before it (:func:`casework.audit.chain_link`). Places are handed out by whoever holds
the seal: a writer takes it at the end of its transaction, just before inserting its entries, and
keeps it until its commit.

* SQLite lets one writer in at a time (``BEGIN IMMEDIATE``), so every writer holds the seal and
  inserts its entries sealed: nothing ever waits for the chain.
* On PostgreSQL the seal is a row lock (the ``audit_seal`` row of ``casework_meta``) taken with
  ``FOR UPDATE SKIP LOCKED``: a writer that finds it taken does not wait, it inserts its entries
  unsealed (``gseq`` NULL) and commits; the next writer to take the seal seals them, in id order,
  before its own. Unrelated writers are therefore never serialised by the chain; the price is that
  an entry can stay unsealed until the next write (``verify`` counts them as pending).

With an audit key every entry also carries a MAC of its hash, so the writer that seals an entry it
did not write can tell that a writer holding the key made it; an entry without a valid one is not
sealed onto a keyed chain (``verify`` reports it). A chain written with a key is never extended
without it: a writer without the key (or with another key) is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from casework._store.tables import SEAL_KEY, audit, meta
from casework.audit import GENESIS, AuditKey, chain_link
from casework.errors import StoreError

if TYPE_CHECKING:
    from casework._store.transaction import Transaction

Pending = tuple[int, str, str | None]  # an unsealed entry: its row id, its hash, its MAC
PENDING_BATCH = 5000  # unsealed entries a writer seals at most, besides its own


class Sealer:
    """Seals entries for one Store, with its audit key (or none)."""

    def __init__(self, key: AuditKey | None, url: str) -> None:
        self.key = key
        self.url = url
        self._chain_key: str | None = None  # the chain's key id as last read ('' unkeyed)

    def seal(self, tx: Transaction, rows: Sequence[dict[str, Any]]) -> None:
        """Give ``rows`` (new entries' column values) their MAC and, holding the seal, their places and links,
        after sealing the entries other writers left unsealed."""
        key = self.key
        if key is not None:
            for row in rows:
                row["mac"] = key.entry_mac(row["hash"])
        taken = self._take(tx)
        if taken is None:  # another writer holds the seal; it or the next one seals these
            self._check(self._chain_key if self._chain_key is not None else tx.chain_key())
            return
        chain_key, gseq, link, pending = taken
        self._check(chain_key)
        keyed = bool(chain_key)
        sealed: list[tuple[int, int, str]] = []
        for entry_id, entry_hash, mac in pending:
            signed = self._signed(entry_hash, mac)
            if signed is None or (keyed and not signed):
                continue  # cannot be told from a forgery: left unsealed, for verify to report
            keyed = keyed or signed
            gseq += 1
            link = chain_link(link, gseq, entry_hash, key if signed else None)
            sealed.append((entry_id, gseq, link))
        self._place(tx, sealed)
        for row in rows:
            gseq += 1
            link = row["link"] = chain_link(link, gseq, row["hash"], key)
            row["gseq"] = gseq
        if key is not None and not chain_key and (rows or keyed):
            statement = tx.db.statement("set_chain_key", lambda: meta.update().where(meta.c.key == SEAL_KEY),
                                        column_keys=("value",))
            tx.run(statement, {"value": key.id})  # from here on the chain is written with this key
            self._chain_key = key.id

    def _take(self, tx: Transaction) -> tuple[str, int, str, list[Pending]] | None:
        """The seal, if no other writer holds it: the chain's key id, its head (place and link) and the entries
        waiting to be sealed. None when another writer holds it (PostgreSQL; it is never waited for)."""
        if tx.db.sqlite:
            # The transaction holds the database's write lock, and with it the seal; every SQLite writer
            # seals its own entries, so none wait. The key id is read once per store.
            gseq, link = tx.chain_head()
            return self.known_key(tx), gseq, link, []
        statement = tx.db.statement("seal_lock", lambda: sa.select(meta.c.value).where(
            meta.c.key == SEAL_KEY).with_for_update(skip_locked=True))
        if tx.run(statement).fetchone() is None:
            return None
        # Read after the lock is held (a statement of its own), so it sees the last holder's commit.
        statement = tx.db.statement("seal_state", _seal_state)
        chain_key, gseq, link, pending = "", 0, GENESIS, []
        for part, entry_id, place, text, mac in tx.run(statement, {"batch": PENDING_BATCH}).fetchall():
            if part == 0:
                chain_key = text or ""
            elif part == 1:
                gseq, link = int(place), text
            else:
                pending.append((int(entry_id), text, mac))
        return chain_key, gseq, link, pending

    @staticmethod
    def _place(tx: Transaction, sealed: Sequence[tuple[int, int, str]]) -> None:
        """Give unsealed entries ``(row id, place, link)`` their place in the chain."""
        if sealed:
            statement = tx.db.statement("seal_entries", lambda: audit.update().where(
                audit.c.id == sa.bindparam("b_id")).where(audit.c.gseq.is_(None)), column_keys=("gseq", "link"))
            rows = [statement.params({"b_id": i, "gseq": g, "link": link}) for i, g, link in sealed]
            tx.send(statement.sql, rows, many=True)


    def forget(self) -> None:
        """Read the chain's key id again next time (a transaction that set it may have been rolled back)."""
        self._chain_key = None

    def known_key(self, tx: Transaction) -> str:
        """The chain's key id as this store last read or set it (read once)."""
        if self._chain_key is None:
            self._chain_key = tx.chain_key()
        return self._chain_key

    def _signed(self, entry_hash: str, mac: str | None) -> bool | None:
        """Whether a pending entry was written with the key (True), without one (False), or cannot be
        authenticated: a MAC that is not the key's, or a MAC and no key here (None)."""
        if mac is None:
            return False
        if self.key is None or mac != self.key.entry_mac(entry_hash):
            return None
        return True

    def _check(self, chain_key: str) -> None:
        self._chain_key = chain_key
        if not chain_key:
            return
        if self.key is None:
            raise StoreError(f"the audit chain of {self.url} is written with an audit key (id {chain_key}); this "
                             "engine has none, and would leave entries nobody can authenticate: set "
                             "CASEWORK_AUDIT_KEY (or Engine(audit_key=...))", url=self.url)
        if self.key.id != chain_key:
            raise StoreError(f"the audit chain of {self.url} is written with audit key id {chain_key}; this "
                             f"engine's key has id {self.key.id}", url=self.url)


def _seal_state() -> Any:
    """One statement: the chain's key id (part 0), its head (part 1), the entries waiting (part 2, id order)."""
    a = audit.c
    number, text = sa.cast(sa.null(), sa.BigInteger()), sa.cast(sa.null(), sa.String())  # typed, for PostgreSQL
    key = sa.select(sa.literal_column("0").label("part"), number.label("id"), number.label("gseq"),
                    meta.c.value.label("text"), text.label("mac")).where(meta.c.key == SEAL_KEY)
    head = sa.select(a.gseq, a.link).where(a.gseq.is_not(None)).order_by(a.gseq.desc()).limit(1).subquery()
    waiting = sa.select(a.id, a.hash, a.mac).where(a.gseq.is_(None)).order_by(a.id).limit(
        sa.bindparam("batch")).subquery()
    return sa.union_all(
        key,
        sa.select(sa.literal_column("1"), number, head.c.gseq, head.c.link, text),
        sa.select(sa.literal_column("2"), waiting.c.id, number, waiting.c.hash, waiting.c.mac),
    )
