"""What ``verify`` finds: a problem with one case, where the global audit chain stands (its digest, entries
waiting to be sealed, the key it was checked with), and the report of a whole run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CaseProblem:
    """Something ``verify`` found wrong with one case."""

    number: str
    seq: int | None
    problem: str

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "seq": self.seq, "problem": self.problem}


@dataclass(frozen=True, slots=True)
class Digest:
    """Where the global audit chain stood: its last sealed place and that entry's link.

    Kept outside the database, it lets ``verify --since`` prove that today's chain extends the one it
    named (nothing before it removed or changed). Written ``SEQ:LINK``.

    >>> Digest.parse("12:" + "ab" * 32).seq
    12
    """

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """A digest from its text; ValueError saying what a digest looks like."""
        seq, sep, link = text.strip().partition(":")
        if not sep or not seq.isascii() or not seq.isdigit() or len(link) != 64 \
                or any(c not in "0123456789abcdef" for c in link):
            raise ValueError(f"digest {text!r} is malformed: expected SEQ:LINK, a whole number and 64 lowercase "
                             "hex digits, as 'casework verify' prints it")
        return cls(int(seq), link)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "digest": str(self)}


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``verify`` found of the global chain: its head, entries waiting to be sealed, and the key."""

    head: Digest
    pending: int = 0
    key_id: str | None = None  # the key verify checked with (None: no key given)
    chain_key_id: str | None = None  # the key the database says its chain is written with
    keyed_from: int | None = None  # the first place authenticated by a key
    unchecked: int = 0  # keyed entries verify could not check (no key, or another key)

    def to_json(self) -> dict[str, Any]:
        return {"head": self.head.to_json(), "pending": self.pending, "checked_with_key": self.key_id is not None,
                "key_id": self.key_id, "chain_key_id": self.chain_key_id, "keyed_from": self.keyed_from,
                "unchecked": self.unchecked}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of checking every case's hash chain and replaying its trail, and the global chain.

    ``digest`` is where the global chain stands (print it, keep it outside the database);
    ``since`` is the digest the chain was checked to extend, if one was given.
    """

    cases_checked: int
    entries_checked: int
    problems: tuple[CaseProblem, ...]
    chain: ChainReport | None = None
    since: Digest | None = None

    @property
    def digest(self) -> Digest | None:
        return self.chain.head if self.chain is not None else None

    @property
    def checked_with_key(self) -> bool:
        return self.chain is not None and self.chain.key_id is not None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def broken_cases(self) -> list[str]:
        seen: dict[str, None] = {}
        for p in self.problems:
            seen.setdefault(p.number, None)
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cases_checked": self.cases_checked,
            "entries_checked": self.entries_checked,
            "broken": self.broken_cases,
            "problems": [p.to_json() for p in self.problems],
            "digest": str(self.digest) if self.digest is not None else None,
            "chain": self.chain.to_json() if self.chain is not None else None,
            "since": str(self.since) if self.since is not None else None,
            "checked_with_key": self.checked_with_key,
        }
