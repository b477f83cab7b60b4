"""Bulk import: open many cases, a batch per transaction, exactly as ``Engine.open`` would one by one.

Every record goes through the same intake as ``Engine.open`` (:mod:`casework.intake`) and becomes a
case and its opening entry through the same step (:func:`casework.transition.opening`) before its
batch is written; a bad record stops the import before its batch (earlier batches stay committed)
with an :class:`InvalidRecord` naming the record's 1-based position (a record whose opening the rules
refuse is recorded on the trail first, as ``Engine.open`` records it). A batch is one transaction:
one counter update per number series, the cases and their opening entries each written with one
``executemany``. :func:`import_file` reads the records from a JSON Lines file (:mod:`casework.jsonl`)
and reports a bad one at its FILE:LINE.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from casework import facts as F
from casework import intake
from casework.decide import decide_opening, opening_roles
from casework.domain import Actor, Decision, Verdict
from casework.errors import CaseworkError, InvalidImportFile, InvalidInput
from casework.jsonl import RecordFile
from casework.machines import spec
from casework.policybook import PolicyBook
from casework.store import Store
from casework.transition import case_number, number_series, opening, refused_opening

if TYPE_CHECKING:
    from casework.policies import PolicySet

RECORD_KEYS = ("kind", "facts", "channel", "key")
_KNOWN_KEYS = frozenset(RECORD_KEYS)


class InvalidRecord(InvalidInput):
    """A record of a bulk import is malformed or would be refused by ``open``; ``line`` is its 1-based position."""

    def __init__(self, line: int, problem: str, *, field: str | None = None) -> None:
        super().__init__(f"record {line}: {problem}", field=field)
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class ImportReport:
    """What ``Engine.open_many`` opened: how many cases, their numbers in input order, and how long it took."""

    count: int
    numbers: list[str]
    seconds: float

    @property
    def first(self) -> str | None:
        return self.numbers[0] if self.numbers else None

    @property
    def last(self) -> str | None:
        return self.numbers[-1] if self.numbers else None

    def to_json(self) -> dict[str, Any]:
        by_prefix = Counter(n.split("-", 1)[0] for n in self.numbers)
        return {"count": self.count, "first": self.first, "last": self.last, "seconds": round(self.seconds, 3),
                "by_prefix": dict(sorted(by_prefix.items()))}


class _Checked(NamedTuple):  # a tuple: one is made per record
    kind: str
    policy: PolicySet
    clean: dict[str, Any]
    verdicts: tuple[Verdict, ...]


def open_many(store: Store, policies: PolicyBook, records: Iterable[Mapping[str, Any]], *, actor: Actor,
              now: Callable[[], datetime], batch: int = 1000,
              progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Open a case per record (``{"kind", "facts", "channel"?}``), ``batch`` records per transaction.

    Each batch is opened at ``now()``. ``progress(done, total)`` is called after each batch (``total``
    is None when ``records`` has no length). Idempotency keys are refused: a keyed open needs a
    replay check per record (use ``Engine.open``).
    """
    F.check_whole(batch, "batch", 1)
    total = len(records) if isinstance(records, Sized) else None
    t0 = time.perf_counter()
    numbers: list[str] = []
    pending: list[_Checked] = []
    authority: dict[str, tuple[Verdict, ...]] = {}  # per kind: whether (and how) the actor may open
    for line, record in enumerate(records, 1):
        try:
            pending.append(_check(policies.current, line, record, actor, authority))
        except _Refused as refusal:
            raise _refused(store, policies.current, refusal, actor, now()) from None
        if len(pending) >= batch:
            numbers.extend(_write(store, pending, actor, now(), policies.opening_record()))
            pending = []
            if progress is not None:
                progress(len(numbers), total)
    if pending:
        numbers.extend(_write(store, pending, actor, now(), policies.opening_record()))
        if progress is not None:
            progress(len(numbers), total)
    return ImportReport(len(numbers), numbers, time.perf_counter() - t0)


def import_file(store: Store, policies: PolicyBook, path: str | Path, *, actor: Actor, now: Callable[[], datetime],
                batch: int = 1000, progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Open a case per record of the JSON Lines file at ``path`` (``-``: standard input), as :func:`open_many`.

    With ``progress``, the file's records are counted first (a quick pass; not for standard input) and
    ``progress(0, total)`` is called before the first batch, then ``progress(done, total)`` after each.
    Raises :class:`InvalidImportFile` when the file cannot be read or is not UTF-8, at ``FILE:LINE`` when
    a line is not JSON or its record would be refused (then also saying how many cases before it were
    opened: the batches before a bad record stay committed).
    """
    source = RecordFile(path)
    total = source.count() if progress is not None else None
    opened = 0

    def advance(done: int, _unknown: int | None) -> None:  # open_many cannot know a file's length
        nonlocal opened
        opened = done
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    try:
        return open_many(store, policies, source, actor=actor, now=now, batch=batch, progress=advance)
    except InvalidRecord as bad:
        line = source.line(bad.line)
        kept = f" ({opened} case(s) before it were opened)" if opened else " (nothing was opened)"
        raise InvalidImportFile(f"{source.name}:{line}: {bad.problem}{kept}", file=source.name, line=line,
                                field=bad.field) from None


def _check(policy: PolicySet, line: int, record: Mapping[str, Any], actor: Actor,
           authority: dict[str, tuple[Verdict, ...]]) -> _Checked:
    if not isinstance(record, (dict, Mapping)):  # (a dict is known at once; a Mapping is asked through its ABC)
        raise InvalidRecord(line, f"expected an object with {', '.join(RECORD_KEYS)}; got {type(record).__name__}")
    if not _KNOWN_KEYS.issuperset(record):
        unknown = sorted(str(k) for k in record if k not in RECORD_KEYS)
        raise InvalidRecord(line, f"unknown key {', '.join(unknown)}; a record has {', '.join(RECORD_KEYS)}",
                            field=unknown[0])
    if record.get("key") is not None:
        raise InvalidRecord(line, "idempotency keys are not supported by bulk import (open keyed cases one by one)",
                            field="key")
    kind, facts, channel = record.get("kind"), record.get("facts", {}), record.get("channel")
    if not isinstance(kind, str):
        raise InvalidRecord(line, f"kind must be text, like \"refund\"; got {kind!r}", field="kind")
    if not isinstance(facts, (dict, Mapping)):
        raise InvalidRecord(line, f"facts must be an object; got {type(facts).__name__}", field="facts")
    if channel is not None and not isinstance(channel, str):
        raise InvalidRecord(line, f"channel must be text; got {channel!r}", field="channel")
    try:
        who = authority.get(kind)
        if who is None:
            intake.check_opening(policy, kind, actor)
            who = authority[kind] = opening_roles(policy, kind, actor)
        clean = intake.opening_facts(policy, kind, facts, actor, channel)
    except InvalidInput as exc:
        raise InvalidRecord(line, str(exc), field=exc.field) from None
    except CaseworkError as exc:
        raise InvalidRecord(line, str(exc)) from None
    decision = decide_opening(policy, kind, clean, actor, who)
    if not decision.allowed:
        raise _Refused(line, decision, clean)
    return _Checked(kind, policy, clean, decision.verdicts)


class _Refused(Exception):
    """A well-formed record whose opening the rules refuse (recorded, then reported as an InvalidRecord)."""

    def __init__(self, line: int, decision: Decision, clean: dict[str, Any]) -> None:
        super().__init__(line)
        self.line, self.decision, self.clean = line, decision, clean


def _refused(store: Store, policy: PolicySet, refusal: _Refused, actor: Actor, now: datetime) -> InvalidRecord:
    """Record a refused record's opening on the trail, as ``Engine.open`` would; the error that stops the import."""
    series = number_series(spec(refusal.decision.kind), policy, now)
    with store.transaction() as tx:
        tx.append([(None, *refused_opening(series, refusal.clean, policy, now, actor, refusal.decision.verdicts),
                    None)])
    reasons = "; ".join(v.message for v in refusal.decision.reasons)
    return InvalidRecord(refusal.line, f"refused: {reasons}", field="role")


def _write(store: Store, pending: list[_Checked], actor: Actor, now: datetime, also: tuple[Verdict, ...]) -> list[str]:
    """Write one batch in one transaction; the numbers given, in record order (``also``: what each opening
    entry records besides who opened it; see :meth:`PolicyBook.opening_record`)."""
    named: dict[tuple[str, str], str] = {}  # one series per kind and policy version in a batch
    series = [named.get((c.kind, c.policy.hash)) or named.setdefault((c.kind, c.policy.hash),
                                                                      number_series(spec(c.kind), c.policy, now))
              for c in pending]
    with store.transaction() as tx:
        counters = {name: iter(tx.next_numbers(name, count)) for name, count in Counter(series).items()}
        opened = [opening(case_number(name, next(counters[name])), c.kind, c.clean, c.policy, now, actor, *c.verdicts,
                          *also) for c, name in zip(pending, series, strict=True)]
        tx.insert_cases([(t.case, t.entry, t.texts) for t in opened])
    return [t.case.number for t in opened]
