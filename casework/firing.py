"""Firing events: :meth:`Engine.fire` for one, :meth:`Engine.fire_together` for several in one transaction.

Both go through one step, :meth:`Firing._attempt`: in one write transaction it reads the cases (one
statement), decides each request and steps it in memory (:func:`casework.decide.decide`,
:func:`casework.transition.step`), then writes every case it stepped with one compare-and-set on the
version and trail end it read (an applied case as stepped, a refused one as read but for its trail end;
one ``executemany`` in row id order, so that two groups lock their rows in one order and cannot deadlock
on each other), and every entry (one ``executemany``, sealed into the global chain and copied to the
outbox once for the group). ``fire`` is a group of one.

``fire_together`` is group commit: one ``BEGIN``/``COMMIT``, one seal and one of each write for the whole
group, so requests that arrive together cost the database (and the interpreter) a fraction of one
transaction each. :class:`casework.AsyncEngine` groups the fires its coroutines make at the same moment
this way. Each request is decided exactly as ``fire`` would decide it alone: a request refused, not
found or malformed gets its own error and does not touch the others. If the group's write itself fails
(another writer changed one of the cases first, or a database error), nothing of the group is written
and every request is fired again alone, each with its own ``retries``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from casework import facts as F
from casework import intake
from casework.decide import decide
from casework.domain import Actor, Case, Decision, case_from_json, decision_from_json
from casework.engine_parts import EngineParts
from casework.errors import (
    CaseNotFound,
    CaseworkError,
    ConcurrentUpdate,
    IdempotencyConflict,
    InvalidInput,
    TransitionDenied,
    UniqueViolation,
    WriteConflict,
)
from casework.frozen import quick_init
from casework.jsontext import canonical
from casework.store import StoredCase, Transaction
from casework.transition import Transition, step
from casework.values import suggest

Outcome = Case | Exception  # what a request of fire_together came to: the case after it, or fire's error


@quick_init
@dataclass(frozen=True, slots=True)
class FireRequest:
    """One event to fire (the arguments of :meth:`Engine.fire`, without an idempotency key)."""

    number: str
    event: str
    actor: Actor
    data: Mapping[str, Any] | None = None
    expected_version: int | None = None
    retries: int = 0

    def check(self) -> None:
        """InvalidInput unless the number and event are text, the actor an Actor, ``expected_version`` a version
        (or None) and ``retries`` a count (the data is checked against the policy as the request is decided)."""
        for name, value, what in (("number", self.number, "text"), ("event", self.event, "text"),
                                  ("actor", self.actor, "an Actor")):
            if not isinstance(value, Actor if name == "actor" else str):
                raise InvalidInput(f"{name} {value!r}: expected {what}", field=name, value=value)
        if self.expected_version is not None:
            F.check_whole(self.expected_version, "expected_version", what="a case version")
        F.check_whole(self.retries, "retries", what="a whole number of retries")


class _Decided(NamedTuple):
    """A request decided on its case as read, and stepped in memory (the case after it and its entry)."""

    request: FireRequest
    stored: StoredCase
    decision: Decision
    t: Transition


class _Unwritten(Exception):  # a signal between two methods of this module
    """A group's transaction failed before its commit: rolled back, nothing of it written."""


class Firing(EngineParts):
    """The Engine's ``fire`` and ``fire_together`` (see the module docstring)."""

    def fire(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None,
             key: str | None = None, expected_version: int | None = None, retries: int = 0) -> Case:
        """Apply ``event`` to the case if the policy allows it; record the attempt either way.

        Raises :class:`TransitionDenied` (carrying the Decision) when refused, and
        :class:`ConcurrentUpdate` when another writer changed the case first (after ``retries``
        fresh re-reads and re-decisions) or when ``expected_version`` is stale.
        """
        request = FireRequest(number, event, actor, data, expected_version, retries)
        request.check()
        return self._fire(request, key)

    def _fire(self, request: FireRequest, key: str | None = None) -> Case:
        """``fire`` for a request already checked (``fire_together`` checks its requests as they come in)."""
        number, event, actor, retries = request.number, request.event, request.actor, request.retries
        clean: dict[str, Any] | None = None
        fingerprint = ""
        if key is not None:
            # Keyed: the request's fingerprint (with its cleaned data) decides whether this is a replay.
            F.check_text(key, "key", F.MAX_ID)
            case = self._stored(self.store.get(number), number).case
            clean = intake.event_data(self.policy_for(case.policy.hash), case.kind, event, request.data, actor)
            fingerprint = fingerprint_of({"op": "fire", "number": number, "event": event, "actor": actor.id,
                                          "role": actor.role, "data": clean})
            if (replay := self._replay(actor, key, fingerprint)) is not None:
                return replay
        for attempt in range(retries + 1):
            try:
                outcome = self._attempt([request], clean=clean, key=key, fingerprint=fingerprint)[0]
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome
            except ConcurrentUpdate as lost:
                # Beaten by another writer: if that writer was this very request (same key), its
                # result is ours; never apply the request a second time.
                if key is not None and (replay := self._replay(actor, key, fingerprint)) is not None:
                    return replay
                if not isinstance(lost, WriteConflict):
                    raise  # a stale expected_version: deciding again would not help
                if attempt >= retries:
                    current = self.store.get(number)
                    raise ConcurrentUpdate(number, lost.expected, current.case.version if current else None) from None
            except UniqueViolation:
                if key is not None and (replay := self._replay(actor, key, fingerprint)) is not None:
                    return replay
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def fire_together(self, requests: Iterable[FireRequest]) -> list[Outcome]:
        """Fire every request, the requests on distinct cases in one transaction (group commit); the outcome of
        each, in the order given: the case after it, or the exception :meth:`fire` would raise for it alone
        (:class:`TransitionDenied`, :class:`CaseNotFound`, :class:`ConcurrentUpdate`, …), returned, not raised.

        Every request is decided as ``fire`` decides it; refused attempts are recorded as ``fire`` records
        them. Requests on the same case are fired in the order given, each after the one before it has
        committed. If the group's write fails (another writer changed one of its cases first), nothing of it
        is written and each request is fired alone, with its ``retries``.
        """
        pending = list(enumerate(_requests(requests)))
        outcomes: list[Outcome | None] = [None] * len(pending)
        while pending:  # a round per repeat of a case: each round's cases are distinct
            seen: set[str] = set()
            first: list[tuple[int, FireRequest]] = []
            later: list[tuple[int, FireRequest]] = []
            for i, request in pending:
                case = request.number.upper()
                (later if case in seen else first).append((i, request))
                seen.add(case)
            for (i, _), outcome in zip(first, self._together([r for _, r in first]), strict=True):
                outcomes[i] = outcome
            pending = later
        return [o for o in outcomes if o is not None]

    def _together(self, requests: Sequence[FireRequest]) -> list[Outcome]:
        """Requests on distinct cases: in one transaction if its write succeeds, else each alone."""
        if len(requests) > 1:
            try:
                return list(self._attempt(requests, group=True))
            except _Unwritten:
                pass  # nothing of the group was written: each alone, which also says what failed
        done: list[Outcome] = []
        for r in requests:
            try:
                done.append(self._fire(r))
            except Exception as failed:  # the request's own outcome, as fire raised it
                done.append(failed)
        return done

    def _attempt(self, requests: Sequence[FireRequest], *, group: bool = False, clean: dict[str, Any] | None = None,
                 key: str | None = None, fingerprint: str = "") -> list[Outcome]:
        """The one step of firing: ``requests`` (on distinct cases) decided and written in one transaction.
        A request's own error (not found, malformed, refused, a stale ``expected_version``) is its outcome;
        any other error (WriteConflict: a case changed since it was read) rolls back the whole transaction,
        raised as ``_Unwritten`` for a ``group``. A group whose commit fails (it may or may not have been
        applied) has that error as the outcome of each request it wrote (a copy each), as it would be alone.
        A lone request may come with its data ``clean`` already and an idempotency ``key`` (with the
        request's ``fingerprint``) to store its result under."""
        outcomes: list[Outcome] = []
        stepped: list[_Decided] = []
        wrote: set[int] = set()  # the requests stepped, by place
        written = False
        try:
            with self.store.transaction() as tx:
                found: Mapping[str, StoredCase | None]
                if len(requests) == 1:  # (on SQLite the one-case read also reads the chain's head)
                    found = {requests[0].number.upper(): tx.get(requests[0].number)}
                else:
                    found = tx.get_many([r.number.upper() for r in requests])
                for i, r in enumerate(requests):
                    try:
                        d = self._decided(r, self._stored(found.get(r.number.upper()), r.number, tx), clean)
                    except CaseworkError as own:
                        outcomes.append(own)
                        continue
                    stepped.append(d)
                    wrote.add(i)
                    outcomes.append(d.t.case if d.t.applied else TransitionDenied(d.decision, r.number))
                if len(stepped) > 1:
                    stepped.sort(key=_row_id)  # one lock order for every writer: rows are locked as written
                # Every case row in one compare-and-set, in that order: an applied case as stepped, a refused
                # one as it was read (its trail end moves, nothing else of it changes).
                tx.update_cases([(d.stored, d.t.case, d.t.entry.seq, d.t.entry.hash) for d in stepped])
                tx.append([(d.stored.id, d.t.entry, d.t.texts, d.t.case) for d in stepped])
                if key is not None and stepped:  # (a keyed request is fired alone; unless it failed, it stepped)
                    (d,) = stepped
                    number = d.stored.case.number
                    tx.remember(d.request.actor.id, key, fingerprint, f"{d.request.event} {number}", number,
                                {"outcome": "applied", "case": d.t.case.to_json()} if d.t.applied
                                else {"outcome": "refused", "decision": d.decision.to_json()}, d.t.entry.at)
                written = True
        except Exception as exc:
            if not group:
                raise
            if not written:
                raise _Unwritten from exc
            copies = iter(each_its_own(exc, len(wrote)))  # the commit failed: what it held failed with it
            return [next(copies) if i in wrote else own for i, own in enumerate(outcomes)]
        return outcomes

    def _decided(self, r: FireRequest, stored: StoredCase, clean: dict[str, Any] | None) -> _Decided:
        case = stored.case
        policy = self.policy_for(case.policy.hash)
        data = clean if clean is not None else intake.event_data(policy, case.kind, r.event, r.data, r.actor)
        if r.expected_version is not None and case.version != r.expected_version:
            raise ConcurrentUpdate(r.number, r.expected_version, case.version)
        now = self.now()
        decision = decide(policy, case, r.event, r.actor, data, now)
        return _Decided(r, stored, decision, step(case, stored.last_seq, stored.last_hash, event=r.event,
                                                  to_state=decision.to_state if decision.allowed else None,
                                                  verdicts=decision.verdicts, actor=r.actor, data=data, now=now,
                                                  policy=policy))

    def _stored(self, stored: StoredCase | None, number: str, tx: Transaction | None = None) -> StoredCase:
        """``stored``, or CaseNotFound for ``number`` (with the numbers it resembles)."""
        if stored is None:
            like = tx.numbers_like(number) if tx is not None else self.store.numbers_like(number)
            raise CaseNotFound(number, suggest(number, like, 3))
        return stored

    def _replay(self, actor: Actor, key: str, request: str) -> Case | None:
        """The result ``actor``'s key stored (keys are per caller: another's key of the same text is not theirs)."""
        F.check_text(key, "key", F.MAX_ID)
        found = self.store.idempotent_result(actor.id, key, request)
        if found is None:
            return None
        original, description, result_json = found
        if original != request:
            raise IdempotencyConflict(key, description)
        result = json.loads(result_json)
        if result["outcome"] == "refused":
            raise TransitionDenied(decision_from_json(result["decision"]), None)
        return case_from_json(result["case"])


def _row_id(d: _Decided) -> int:
    return d.stored.id


def fingerprint_of(request: Mapping[str, Any]) -> str:
    """An idempotent request's fingerprint: what its key stands for."""
    return hashlib.sha256(canonical(dict(request)).encode("utf-8")).hexdigest()


def _requests(requests: Iterable[FireRequest]) -> list[FireRequest]:
    if isinstance(requests, (str, bytes, Mapping)) or not isinstance(requests, Iterable):
        raise InvalidInput(f"requests {requests!r}: expected FireRequest values", field="requests")
    found = list(requests)
    for r in found:
        if not isinstance(r, FireRequest):
            raise InvalidInput(f"request {r!r}: expected a FireRequest", field="requests", value=r)
        r.check()
    return found


def each_its_own(failed: Exception, count: int) -> list[Outcome]:
    """``failed`` as the outcome of ``count`` requests: a copy each, so that raising one does not change another's
    traceback (the one instance, for an exception that cannot be copied)."""
    try:
        return [failed, *(copy.copy(failed) for _ in range(count - 1))]
    except Exception:  # its class cannot be made again from its arguments
        return [failed] * count
