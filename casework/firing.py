"""Firing events: :meth:`Engine.fire` for one, :meth:`Engine.fire_together` for several in one transaction.

Both go through one step, :meth:`Firing._attempt`: in one write transaction it reads the cases (one
statement), decides each request and steps it in memory (:func:`casework.decide.decide`,
:func:`casework.transition.step`), then writes every applied case with one compare-and-set on the
version and trail end it read (one ``executemany``, in row id order so that two writers can never
deadlock on each other), every refused attempt's trail end, and every entry (one ``executemany``,
sealed into the global chain and copied to the outbox once for the group). ``fire`` is a group of one.

``fire_together`` is group commit: one ``BEGIN``/``COMMIT``, one seal and one of each write for the whole
group, so requests that arrive together cost the database (and the interpreter) a fraction of one
transaction each. :class:`casework.AsyncEngine` groups the fires its coroutines make at the same moment
this way. Each request is decided exactly as ``fire`` would decide it alone: a request refused, not
found or malformed gets its own error and does not touch the others. If the group's write itself fails
(another writer changed one of the cases first, or a database error), nothing of the group is written
and every request is fired again alone, each with its own ``retries``.
"""

from __future__ import annotations

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
from casework.jsontext import canonical
from casework.store import StoredCase, Transaction
from casework.transition import Transition, step
from casework.values import suggest

Outcome = Case | Exception  # what a request of fire_together came to: the case after it, or fire's error


@dataclass(frozen=True, slots=True)
class FireRequest:
    """One event to fire (the arguments of :meth:`Engine.fire`, without an idempotency key)."""

    number: str
    event: str
    actor: Actor
    data: Mapping[str, Any] | None = None
    expected_version: int | None = None
    retries: int = 0

    def __post_init__(self) -> None:
        for name in ("number", "event"):
            if not isinstance(getattr(self, name), str):
                raise InvalidInput(f"{name} {getattr(self, name)!r}: expected text", field=name,
                                   value=getattr(self, name))
        if not isinstance(self.actor, Actor):
            raise InvalidInput(f"actor {self.actor!r}: expected an Actor", field="actor", value=self.actor)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A request as ``_attempt`` takes it: with its cleaned data and idempotency key, when it has them."""

    request: FireRequest
    data: dict[str, Any] | None = None  # cleaned (intake.event_data) already; None: clean it from request.data
    key: str | None = None
    fingerprint: str = ""


class _Decided(NamedTuple):
    """A request decided on its case as read, and stepped in memory (the case after it and its entry)."""

    attempt: _Attempt
    stored: StoredCase
    decision: Decision
    t: Transition

    def outcome(self) -> Case | CaseworkError:
        return self.t.case if self.t.applied else TransitionDenied(self.decision, self.attempt.request.number)


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
        clean: dict[str, Any] | None = None
        fingerprint = ""
        if key is not None:
            # Keyed: the request's fingerprint (with its cleaned data) decides whether this is a replay.
            F.check_text(key, "key", F.MAX_ID)
            case = self._stored(self.store.get(number), number).case
            clean = intake.event_data(self.policy_for(case.policy.hash), case.kind, event, data, actor)
            fingerprint = fingerprint_of({"op": "fire", "number": number, "event": event, "actor": actor.id,
                                          "role": actor.role, "data": clean})
            if (replay := self._replay(actor, key, fingerprint)) is not None:
                return replay
        for attempt in range(max(0, retries) + 1):
            try:
                outcome = self._attempt([_Attempt(request, clean, key, fingerprint)])[0]
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
                (later if request.number.upper() in seen else first).append((i, request))
                seen.add(request.number.upper())
            for (i, _), outcome in zip(first, self._together([r for _, r in first]), strict=True):
                outcomes[i] = outcome
            pending = later
        return [o for o in outcomes if o is not None]

    def _together(self, requests: Sequence[FireRequest]) -> list[Outcome]:
        """Requests on distinct cases: in one transaction if its write succeeds, else each alone. A commit that
        fails (it may or may not have been applied) is every request's outcome, as it would be alone."""
        if len(requests) > 1:
            try:
                return list(self._attempt([_Attempt(r) for r in requests], group=True))
            except _Unwritten:
                pass  # nothing of the group was written: each alone, which also says what failed
            except Exception as failed:  # the commit failed: each request's outcome, as alone
                return [failed] * len(requests)
        done: list[Outcome] = []
        for r in requests:
            try:
                done.append(self.fire(r.number, r.event, actor=r.actor, data=r.data,
                                      expected_version=r.expected_version, retries=r.retries))
            except Exception as failed:  # the request's own outcome, as fire raised it
                done.append(failed)
        return done

    def _attempt(self, attempts: Sequence[_Attempt], *, group: bool = False) -> list[Case | CaseworkError]:
        """The one step of firing: ``attempts`` (on distinct cases) decided and written in one transaction.
        A request's own error (not found, malformed, refused, a stale ``expected_version``) is its outcome;
        any other error (WriteConflict: a case changed since it was read) rolls back the whole transaction,
        raised as ``_Unwritten`` for a ``group``."""
        with self.store.transaction() as tx:
            try:
                decided = self._decide_all(tx, attempts)
                stepped = [d for d in decided if isinstance(d, _Decided)]
                applied = sorted((d for d in stepped if d.t.applied), key=lambda d: d.stored.id)
                tx.update_cases([(d.stored, d.t.case, d.t.entry.seq, d.t.entry.hash) for d in applied])
                for d in stepped:
                    if not d.t.applied:
                        tx.extend_trail(d.stored, d.t.entry.seq, d.t.entry.hash)
                tx.append([(d.stored.id, d.t.entry, d.t.texts, d.t.case) for d in stepped])
                for d in stepped:
                    if d.attempt.key is not None:
                        number = d.stored.case.number
                        tx.remember(d.attempt.request.actor.id, d.attempt.key, d.attempt.fingerprint,
                                    f"{d.attempt.request.event} {number}", number,
                                    {"outcome": "applied", "case": d.t.case.to_json()} if d.t.applied
                                    else {"outcome": "refused", "decision": d.decision.to_json()}, d.t.entry.at)
            except Exception as exc:
                if group:
                    raise _Unwritten from exc
                raise
        return [d.outcome() if isinstance(d, _Decided) else d for d in decided]

    def _decide_all(self, tx: Transaction, attempts: Sequence[_Attempt]) -> list[_Decided | CaseworkError]:
        """Each attempt decided on its case as ``tx`` reads it (one statement), or its own error."""
        if len(attempts) == 1:  # (on SQLite the one-case read also reads the chain's head)
            found = {attempts[0].request.number.upper(): tx.get(attempts[0].request.number)}
        else:
            found = dict(tx.get_many([a.request.number.upper() for a in attempts]))
        decided: list[_Decided | CaseworkError] = []
        for a in attempts:
            try:
                decided.append(self._decided(a, self._stored(found.get(a.request.number.upper()),
                                                             a.request.number, tx)))
            except CaseworkError as own:
                decided.append(own)
        return decided

    def _decided(self, a: _Attempt, stored: StoredCase) -> _Decided:
        r, case = a.request, stored.case
        policy = self.policy_for(case.policy.hash)
        data = a.data if a.data is not None else intake.event_data(policy, case.kind, r.event, r.data, r.actor)
        if r.expected_version is not None and case.version != r.expected_version:
            raise ConcurrentUpdate(r.number, r.expected_version, case.version)
        now = self.now()
        decision = decide(policy, case, r.event, r.actor, data, now)
        return _Decided(a, stored, decision, step(case, stored.last_seq, stored.last_hash, event=r.event,
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
    return found
