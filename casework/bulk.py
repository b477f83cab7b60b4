"""Bulk import: open many cases, a batch per transaction, exactly as ``Engine.open`` would one by one.

Every record is validated by the same code as ``Engine.open`` (``Engine._check_open``) before its
batch is written; a bad record stops the import before its batch (earlier batches stay committed)
with an :class:`InvalidRecord` naming the record's 1-based position. A batch is one transaction: one
counter update per number prefix and day, the cases and their opening audit entries (seq 1, chained
to GENESIS, event ``open``, the ``open_roles`` verdict) each written with one ``executemany``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from casework.audit import GENESIS, entry_hash
from casework.domain import Actor, AuditEntry, Case, Verdict
from casework.errors import CaseworkError, InvalidInput, TransitionDenied
from casework.jsontext import canonical

if TYPE_CHECKING:
    from casework.engine import Engine
    from casework.machines import KindSpec
    from casework.policies import PolicySet

RECORD_KEYS = ("kind", "facts", "channel", "key")


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


@dataclass(frozen=True)
class _Checked:
    ks: KindSpec
    kind: str
    policy: PolicySet
    clean: dict[str, Any]
    verdict: Verdict


def open_many(engine: Engine, records: Iterable[Mapping[str, Any]], *, actor: Actor, batch: int = 1000,
              progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
    """Open a case per record (``{"kind", "facts", "channel"?}``), ``batch`` records per transaction.

    ``progress(done, total)`` is called after each batch (``total`` is None when ``records`` has no length).
    Idempotency keys are refused: a keyed open needs a replay check per record (use ``Engine.open``).
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInput(f"batch {batch!r} must be a whole number of at least 1", field="batch")
    total = len(records) if isinstance(records, Sized) else None
    t0 = time.perf_counter()
    numbers: list[str] = []
    pending: list[_Checked] = []
    authority: dict[str, tuple[Any, Any, Verdict]] = {}  # per kind: whether (and how) the actor may open
    for line, record in enumerate(records, 1):
        pending.append(_check(engine, line, record, actor, authority))
        if len(pending) >= batch:
            numbers.extend(_write(engine, pending, actor))
            pending = []
            if progress is not None:
                progress(len(numbers), total)
    if pending:
        numbers.extend(_write(engine, pending, actor))
        if progress is not None:
            progress(len(numbers), total)
    return ImportReport(len(numbers), numbers, time.perf_counter() - t0)


def _check(engine: Engine, line: int, record: Mapping[str, Any], actor: Actor,
           authority: dict[str, tuple[Any, Any, Verdict]]) -> _Checked:
    if not isinstance(record, Mapping):
        raise InvalidRecord(line, f"expected an object with {', '.join(RECORD_KEYS)}; got {type(record).__name__}")
    unknown = sorted(str(k) for k in record if k not in RECORD_KEYS)
    if unknown:
        raise InvalidRecord(line, f"unknown key {', '.join(unknown)}; a record has {', '.join(RECORD_KEYS)}",
                            field=unknown[0])
    if record.get("key") is not None:
        raise InvalidRecord(line, "idempotency keys are not supported by bulk import (open keyed cases one by one)",
                            field="key")
    kind, facts, channel = record.get("kind"), record.get("facts", {}), record.get("channel")
    if not isinstance(kind, str):
        raise InvalidRecord(line, f"kind must be text, like \"refund\"; got {kind!r}", field="kind")
    if not isinstance(facts, Mapping):
        raise InvalidRecord(line, f"facts must be an object; got {type(facts).__name__}", field="facts")
    if channel is not None and not isinstance(channel, str):
        raise InvalidRecord(line, f"channel must be text; got {channel!r}", field="channel")
    try:
        if kind not in authority:
            authority[kind] = engine._open_authority(kind, actor)
        ks, policy, verdict = authority[kind]
        clean = engine._open_facts(kind, facts, actor, channel, policy)
    except TransitionDenied as denied:
        refused = "; ".join(v.message for v in denied.decision.verdicts if not v.passed)
        raise InvalidRecord(line, f"refused: {refused}", field="role") from None
    except InvalidInput as exc:
        raise InvalidRecord(line, str(exc), field=exc.field) from None
    except CaseworkError as exc:
        raise InvalidRecord(line, str(exc)) from None
    return _Checked(ks, kind, policy, clean, verdict)


def _write(engine: Engine, pending: list[_Checked], actor: Actor) -> list[str]:
    """Write one batch in one transaction; the numbers given, in record order."""
    now = engine._now()
    at = now.isoformat()
    # Every case of one (kind, channel, policy) opened at one instant has the same deadlines: compute
    # them once. (Opening facts cannot hold the system-only facts deadlines read: breaches, timers.)
    templates: dict[tuple[str, Any, str], Case] = {}
    days: dict[str, str] = {}
    cases, names = [], []
    for c in pending:
        key = (c.kind, c.clean.get("channel"), c.policy.hash)
        template = templates.get(key)
        if template is None:
            template = templates[key] = engine._new_case(c.ks, c.kind, {"channel": key[1]}, c.policy, now)
        cases.append(template)
        day = days.get(c.policy.hash)
        if day is None:
            day = days[c.policy.hash] = now.astimezone(c.policy.tz).strftime("%Y%m%d")
        names.append(f"{c.ks.prefix}-{day}")
    hashers: dict[tuple[str, str], _OpenHasher] = {}
    with engine.store.transaction() as tx:
        ranges = {name: iter(tx.next_numbers(name, count)) for name, count in Counter(names).items()}
        opened = []
        for c, case, name in zip(pending, cases, names, strict=True):
            number = f"{name}-{next(ranges[name]):06d}"
            hasher = hashers.get((c.kind, c.policy.hash))
            if hasher is None:
                hasher = hashers[(c.kind, c.policy.hash)] = _OpenHasher(at, actor, c.ks.initial, c.verdict, c.policy)
            channel = c.clean.get("channel")
            data_text = canonical(c.clean)
            entry = AuditEntry(number=number, seq=1, at=now, event="open", from_state=None, to_state=c.ks.initial,
                               outcome="applied", actor=actor.id, role=actor.role, channel=channel,
                               verdicts=hasher.verdicts, data=c.clean, policy=c.policy.ref, prev_hash=GENESIS,
                               hash=hasher.hash(number, channel, data_text))
            opened.append((_numbered(case, number, c.clean), entry, (hasher.verdicts_text, data_text)))
        tx.insert_opened(opened)
    return [case.number for case, _, _ in opened]


def _numbered(template: Case, number: str, facts: dict[str, Any]) -> Case:
    """``replace(template, number=..., facts=...)`` without dataclasses.replace's per-call introspection."""
    t = template
    return Case(number=number, kind=t.kind, state=t.state, version=t.version, facts=facts, policy=t.policy,
                opened_at=t.opened_at, updated_at=t.updated_at, first_response_due=t.first_response_due,
                responded_at=t.responded_at, due_at=t.due_at, closed=t.closed, resolution_due=t.resolution_due,
                timer_due=t.timer_due, state_since=t.state_since)


class _OpenHasher:
    """``audit.entry_hash`` of opening entries that differ only in number, channel and data.

    The canonical text of every other part is computed once; the first hash is checked against
    ``entry_hash`` itself (and ``entry_hash`` is used throughout should they ever disagree).
    """

    def __init__(self, at: str, actor: Actor, to_state: str, verdict: Verdict, policy: PolicySet) -> None:
        self.verdicts = [verdict.to_json()]
        self.verdicts_text = canonical(self.verdicts)
        self._fixed = {"at": at, "event": "open", "from_state": None, "to_state": to_state, "outcome": "applied",
                       "actor": actor.id, "role": actor.role, "policy_hash": policy.hash, "prev_hash": GENESIS,
                       "seq": 1}
        self._head = f'{{"actor":{canonical(actor.id)},"at":{canonical(at)},"channel":'
        self._middle = f',"event":{canonical("open")},"from":{canonical(None)},"number":'
        self._tail = (f',"outcome":{canonical("applied")},"policy":{canonical(policy.hash)},'
                      f'"prev":{canonical(GENESIS)},"role":{canonical(actor.role)},"seq":{canonical(1)},'
                      f'"to":{canonical(to_state)},"verdicts":{self.verdicts_text}}}')
        self._channels: dict[str | None, str] = {}
        self._checked: bool | None = None

    def hash(self, number: str, channel: str | None, data_text: str) -> str:
        if self._checked is False:
            return self._slow(number, channel, data_text)
        ch = self._channels.get(channel)
        if ch is None:
            ch = self._channels[channel] = canonical(channel)
        payload = f'{self._head}{ch},"data":{data_text}{self._middle}{canonical(number)}{self._tail}'
        h = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        if self._checked is None:
            self._checked = h == self._slow(number, channel, data_text)
            if not self._checked:
                return self._slow(number, channel, data_text)
        return h

    def _slow(self, number: str, channel: str | None, data_text: str) -> str:
        return entry_hash(number=number, channel=channel, verdicts=self.verdicts, data=json.loads(data_text),
                          verdicts_text=self.verdicts_text, data_text=data_text, **self._fixed)  # type: ignore[arg-type]
