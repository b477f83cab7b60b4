"""The engine: the service layer that turns one command into one decision and one transaction.

>>> from casework import Engine, Actor, FixedClock
>>> engine = Engine("sqlite:///:memory:", clock=FixedClock("2026-11-22T10:00:00+08:00"))
>>> case = engine.open("refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"},
...                    actor=Actor("c-1", "customer"))
>>> engine.fire(case.number, "approve", actor=Actor("alice", "agent")).state
'approved'
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.audit import GENESIS, entry_hash, policy_chain_hash
from casework.clock import Clock, system_clock
from casework.domain import (
    Actor,
    AuditEntry,
    Case,
    Decision,
    Verdict,
    VerifyReport,
    case_from_json,
    decision_from_json,
)
from casework.errors import (
    CaseNotFound,
    ConcurrentUpdate,
    IdempotencyConflict,
    InvalidInput,
    StoreError,
    TransitionDenied,
)
from casework.jsontext import canonical
from casework.machines import KINDS, spec
from casework.sla import SweepReport, with_deadlines
from casework.store import Lost, Store, StoredCase, is_unique_violation
from casework.values import did_you_mean, one_of, suggest

if TYPE_CHECKING:  # the policy machinery is imported on first use: `casework show` never needs it
    from casework.bulk import ImportReport
    from casework.machines import KindSpec
    from casework.policies import PolicySet
    from casework.report import SlaReport

DEFAULT_DB = "sqlite:///casework.db"


def database_url(db: str | None) -> str:
    """A SQLAlchemy URL from a URL or a plain file path (``cases.db`` means an SQLite file)."""
    if not db:
        return DEFAULT_DB
    if "://" in db:
        return db
    return f"sqlite:///{db}"


class Engine:
    """Opens cases, decides and applies events, and answers questions about cases.

    ``db`` is a SQLAlchemy URL (``sqlite:///casework.db``, ``postgresql+psycopg://user@host/db``) or
    an SQLite file path. ``policies`` is a policy file, a loaded :class:`PolicySet`, or ``None`` for
    the packaged default. ``clock`` returns the current time (inject a FixedClock in tests).
    ``synchronous`` (SQLite only): ``"NORMAL"`` survives a process crash; ``"FULL"`` also a power loss.
    """

    def __init__(self, db: str | None = None, *, policies: str | Path | PolicySet | None = None,
                 clock: Clock = system_clock, create: bool = True, synchronous: str = "NORMAL") -> None:
        self.clock = clock
        # The instant a sweep acts as of: per thread, so other threads sharing the engine keep the clock.
        self._as_of = threading.local()
        self._last_at: tuple[datetime | None, str] = (None, "")
        self._policy_source = policies
        self._policy: PolicySet | None = None if policies is None or isinstance(policies, str | Path) else policies
        self._policies: dict[str, PolicySet] = {}
        self.store = Store(database_url(db), create=create, synchronous=synchronous)
        if self._policy is not None:
            self._adopt(self._policy)

    @property
    def policy(self) -> PolicySet:
        """The policy in force for new cases (loaded, checked and stored on first use)."""
        if self._policy is None:
            from casework.policies import load_policy

            assert self._policy_source is None or isinstance(self._policy_source, str | Path)
            self._policy = load_policy(self._policy_source)
            self._adopt(self._policy)
        return self._policy

    def _adopt(self, policy: PolicySet) -> None:
        self._policies[policy.hash] = policy
        self.store.save_policy(policy.ref, policy.name, policy.source, self._now(), policy_chain_hash,
                               list(policy.document.personal))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- public API --------------------------------------------------------------------------------
    def open(self, kind: str, facts: Mapping[str, Any], *, actor: Actor, channel: str | None = None,
             key: str | None = None) -> Case:
        """Open a case of ``kind`` with ``facts``; returns it with its new after-sales number."""
        ks, policy, clean, verdict = self._check_open(kind, facts, actor, channel)

        request = _fingerprint({"op": "open", "kind": kind, "facts": clean, "actor": actor.id,
                                "role": actor.role})
        if key is not None:
            F.check_text(key, "key", F.MAX_ID)
            replay = self._replay(key, request)
            if replay is not None:
                return replay

        now = self._now()
        case = self._new_case(ks, kind, clean, policy, now)
        try:
            with self.store.transaction() as tx:
                day = now.astimezone(policy.tz).strftime("%Y%m%d")
                n = tx.next_number(f"{ks.prefix}-{day}")
                case = replace(case, number=f"{ks.prefix}-{day}-{n:06d}")
                entry = self._entry(case.number, 1, GENESIS, now, "open", None, ks.initial, "applied",
                                    actor, clean.get("channel"), (verdict,), clean, policy)
                tx.insert_case(case, last_hash=entry.hash)
                stored = tx.get(case.number)
                assert stored is not None
                tx.append(stored.id, entry)
                if key is not None:
                    tx.remember(key, request, f"open {kind}", case.number,
                                {"outcome": "applied", "case": case.to_json()}, now)
        except Exception as exc:
            if key is not None and is_unique_violation(exc):
                replay = self._replay(key, request)
                if replay is not None:
                    return replay
            raise
        return case

    def open_many(self, records: Iterable[Mapping[str, Any]], *, actor: Actor, batch: int = 1000,
                  progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
        """Open many cases, ``batch`` per transaction, as if by ``open`` one by one (see casework.bulk)."""
        from casework import bulk

        return bulk.open_many(self, records, actor=actor, batch=batch, progress=progress)

    def _check_open(self, kind: str, facts: Mapping[str, Any], actor: Actor, channel: str | None
                    ) -> tuple[KindSpec, PolicySet, dict[str, Any], Verdict]:
        """Validate an ``open``: the kind's spec, the policy, the cleaned facts and the open_roles verdict."""
        ks, policy, verdict = self._open_authority(kind, actor)
        return ks, policy, self._open_facts(kind, facts, actor, channel, policy), verdict

    def _open_authority(self, kind: str, actor: Actor) -> tuple[KindSpec, PolicySet, Verdict]:
        """May ``actor`` open a ``kind`` case at all? (Depends on kind and actor only: bulk import caches it.)"""
        ks = spec(kind)
        policy = self.policy
        if kind not in policy.document.kinds:
            raise InvalidInput(f"the policy {policy.label!r} has no rules for {kind} cases", field="kind")
        self._check_actor(actor, policy)
        kp = policy.kind(kind)
        role_ok = any(policy.roles.acts_as(actor.role, r) for r in kp.open_roles)
        verdict = Verdict("open_roles", role_ok, "role_not_permitted",
                          f"role {actor.role} {'may' if role_ok else 'may not'} open a {kind}"
                          + ("" if role_ok else f"; allowed: {', '.join(kp.open_roles)}"),
                          {"role": actor.role, "allowed": list(kp.open_roles)})
        not_granted = policy.grant_verdict(actor)
        if not role_ok or not_granted is not None:
            refusals = (verdict,) if not_granted is None else (not_granted, verdict)
            raise TransitionDenied(Decision(kind, "open", "", None, refusals, policy.ref))
        return ks, policy, verdict

    def _open_facts(self, kind: str, facts: Mapping[str, Any], actor: Actor, channel: str | None,
                    policy: PolicySet) -> dict[str, Any]:
        """The opening facts, normalised and checked against the policy's vocabulary and requirements."""
        clean = F.normalize(facts)
        if actor.role != "system":
            kept = sorted(F.SYSTEM_ONLY & set(clean))
            if kept:
                raise InvalidInput(f"fact {kept[0]!r} is kept by the system; it cannot be given when opening a case",
                                   field=kept[0])
        if channel is not None:
            clean["channel"] = channel
        if actor.role == "customer" and "customer" not in clean:
            clean["customer"] = actor.id
        self._check_vocabulary(kind, clean, policy)
        missing = [f for f in policy.kind(kind).required if f not in clean]
        if missing:
            raise InvalidInput(f"a {kind} case needs {', '.join(missing)}; missing: {', '.join(missing)}",
                               field=missing[0])
        return clean

    def _new_case(self, ks: KindSpec, kind: str, clean: dict[str, Any], policy: PolicySet, now: datetime) -> Case:
        """The case ``open`` writes (number still empty), with its deadlines."""
        return with_deadlines(Case(
            number="", kind=kind, state=ks.initial, version=1, facts=clean, policy=policy.ref, opened_at=now,
            updated_at=now, first_response_due=policy.first_response_due(kind, now, clean.get("channel")),
            resolution_due=policy.resolution_due(kind, now), state_since=now), policy)

    def get(self, number: str) -> Case:
        """The case with this number; raises :class:`CaseNotFound` (with suggestions)."""
        return self._get(number).case

    def check(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None) -> Decision:
        """Dry run: would ``event`` be allowed now? Every guard's verdict; nothing is written."""
        stored = self._get(number)
        clean = self._event_data(stored.case, event, data, actor)
        return self._decide(stored.case, event, actor, clean)

    def fire(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None,
             key: str | None = None, expected_version: int | None = None, retries: int = 0) -> Case:
        """Apply ``event`` to the case if the policy allows it; record the attempt either way.

        Raises :class:`TransitionDenied` (carrying the Decision) when refused, and
        :class:`ConcurrentUpdate` when another writer changed the case first (after ``retries``
        fresh re-reads and re-evaluations) or when ``expected_version`` is stale.
        """
        clean: dict[str, Any] | None = None
        request = ""
        seen_version: int | None = None
        if key is not None:
            # Keyed: the request's fingerprint (with its cleaned data) decides whether this is a replay.
            F.check_text(key, "key", F.MAX_ID)
            stored = self._get(number)
            seen_version = stored.case.version
            clean = self._event_data(stored.case, event, data, actor)
            request = _fingerprint({"op": "fire", "number": number, "event": event, "actor": actor.id,
                                    "role": actor.role, "data": clean})
            replay = self._replay(key, request)
            if replay is not None:
                return replay
        attempts = max(0, retries) + 1
        for attempt in range(attempts):
            try:
                return self._fire_once(number, event, actor, data, clean, key, request, expected_version)
            except (Lost, ConcurrentUpdate) as lost:
                # Beaten by another writer: if that writer was this very request (same key), its
                # result is ours; never apply the request a second time.
                if key is not None and (replay := self._replay(key, request)) is not None:
                    return replay
                if isinstance(lost, ConcurrentUpdate):
                    raise
                if attempt + 1 >= attempts:
                    current = self.store.get(number)
                    seen = seen_version if seen_version is not None else lost.version
                    raise ConcurrentUpdate(number, seen if seen is not None else -1,
                                           current.case.version if current else None) from None
            except Exception as exc:
                if key is not None and is_unique_violation(exc):
                    replay = self._replay(key, request)
                    if replay is not None:
                        return replay
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def next_events(self, number: str, *, actor: Actor) -> list[Decision]:
        """Every event possible from the case's current state, each with its decision for ``actor``."""
        stored = self._get(number)
        self._check_actor(actor, self.policy_for(stored.case.policy.hash))
        ks = spec(stored.case.kind)
        return [self._decide(stored.case, e, actor, {}) for e in ks.available(stored.case.state)]

    def history(self, number: str) -> list[AuditEntry]:
        """The case's audit trail, oldest first (applied transitions and refused attempts)."""
        self._get(number)
        return self.store.history(number)

    def find(self, *, kind: str | None = None, state: str | None = None, order_id: str | None = None,
             customer: str | None = None, overdue: bool = False, due_before: datetime | None = None,
             queue: str | None = None, limit: int | None = 100, offset: int = 0) -> list[Case]:
        """Cases matching every given filter, newest first."""
        if kind is not None:
            spec(kind)
        if state is not None:
            states = sorted({s for k in ([KINDS[kind]] if kind else KINDS.values()) for s in k.states})
            one_of(state, states, "state")
        if overdue:
            due_before = self._now() if due_before is None else min(due_before, self._now())
        return self.store.find(kind=kind, state=state, order_id=order_id, customer=customer,
                               due_before=due_before, queue=queue, limit=limit, offset=offset)

    def report(self, *, since: datetime | date | str | None = None, until: datetime | date | str | None = None,
               kind: str | None = None, by: str | None = None) -> SlaReport:
        """The SLA report over the cases opened in ``[since, until)``: see :func:`casework.report.build_report`."""
        from casework.report import build_report

        return build_report(self, since=since, until=until, kind=kind, by=by)

    def personal_facts(self) -> list[str]:
        """The facts the policies in force (and ever stored) mark personal, without parsing any policy."""
        if self._policy is not None:
            return sorted(set(self._policy.document.personal) | set(self.store.personal_facts()))
        return self.store.personal_facts()

    def export(self, *, redact: bool = False) -> Iterator[dict[str, Any]]:
        """Every audit entry of every case as JSON-ready dicts (see :func:`casework.verification.export`)."""
        from casework import verification

        return verification.export(self, redact=redact)

    def verify(self) -> VerifyReport:
        """Check every case's hash chain and replay its trail against the stored case."""
        from casework import verification

        return verification.verify(self)

    def sweep(self, *, now: datetime | None = None, dry_run: bool = False, limit: int | None = None,
              progress: Callable[[int, int], None] | None = None, batch: int = 200) -> SweepReport:
        """Fire every due timer and mark every breached deadline, ``batch`` cases per transaction
        (see :func:`casework.sweep.sweep`)."""
        from casework import sweep

        return sweep.sweep(self, now=now, dry_run=dry_run, limit=limit, progress=progress, batch=batch)

    def adopt(self, number: str, policy: PolicySet, *, actor: Actor) -> Case:
        """Re-pin an open case to ``policy``: from now on it is decided by that version.

        One applied ``adopt_policy`` entry (the state does not change; data ``policy_from`` and
        ``policy_to``, the two hashes) moves the case's pinned version in the same transaction, and,
        as for every applied entry, the data is merged into the case's facts (so replay agrees).
        Deadlines already promised (first response, resolution) stand; the state's timer follows the
        new policy. A case already on ``policy`` is returned unchanged. Refused: a closed case and a
        customer (InvalidInput); an actor that ``policy``'s operators section does not grant the role
        (TransitionDenied).
        """
        self._check_actor(actor, policy)
        if actor.role == "customer":
            raise InvalidInput("a customer may not move a case to another policy version", field="role")
        self._adopt(policy)
        with self.store.transaction() as tx:
            stored = tx.get(number)
            if stored is None:
                raise CaseNotFound(number, suggest(number, self.store.numbers_like(number), 3))
            case = stored.case
            if case.closed:
                raise InvalidInput(f"case {number} is closed; only open cases can move to another policy version",
                                   field="number", value=number)
            if case.policy.hash == policy.hash:
                return case
            not_granted = policy.grant_verdict(actor)  # the adopted policy's operators section decides
            if not_granted is not None:
                raise TransitionDenied(Decision(case.kind, "adopt_policy", case.state, None, (not_granted,),
                                                policy.ref), number)
            now = self._now()
            data = {"policy_from": case.policy.hash, "policy_to": policy.hash}
            verdict = Verdict("policy", True, "policy_adopted", f"moved from policy {case.policy.label} "
                              f"({case.policy.short}) to {policy.label} ({policy.ref.short})",
                              {**data, "label_from": case.policy.label, "label_to": policy.label})
            entry = self._entry(number, stored.last_seq + 1, stored.last_hash, now, "adopt_policy", case.state,
                                case.state, "applied", actor, case.facts.get("channel"), (verdict,), data, policy)
            new = with_deadlines(replace(case, version=case.version + 1, facts=F.merge(case.facts, data),
                                         policy=policy.ref, updated_at=now), policy)
            try:
                tx.apply(stored, new, entry)
            except Lost:
                raise ConcurrentUpdate(number, case.version) from None
        return new

    def policy_for(self, policy_hash: str) -> PolicySet:
        """The policy version with this hash (loaded from the database if not in memory)."""
        policy = self._policies.get(policy_hash)
        if policy is None:
            found = self.store.policy_source(policy_hash)
            if found is None:
                raise InvalidInput(f"policy version {policy_hash[:12]} is not in the database", field="policy")
            name, source = found
            from casework.policies import parse_policy

            policy = parse_policy(source, name)
            if policy.hash != policy_hash:
                # The stored text was edited: deciding with it would silently change the rules.
                raise StoreError(f"policy version {policy_hash[:12]} in the database was altered (its text now "
                                 f"hashes to {policy.hash[:12]}); run 'casework verify'", url=self.store.url)
            self._policies[policy_hash] = policy
        return policy

    # ---- internals -----------------------------------------------------------------------------------
    def _now(self) -> datetime:
        as_of: datetime | None = getattr(self._as_of, "at", None)
        if as_of is not None:
            return as_of
        now = self.clock()
        if now.tzinfo is None:
            raise InvalidInput(f"the engine clock returned a naive time {now!r}; it must be timezone-aware")
        return now.astimezone(UTC)

    def _get(self, number: str) -> StoredCase:
        stored = self.store.get(number)
        if stored is None:
            raise CaseNotFound(number, suggest(number, self.store.numbers_like(number), 3))
        return stored

    def _check_actor(self, actor: Actor, policy: PolicySet) -> None:
        if not isinstance(actor, Actor) or not actor.id:
            raise InvalidInput(f"actor {actor!r} needs an id and a role", field="actor")
        F.check_text(actor.id, "actor", F.MAX_ID)
        one_of(actor.role, policy.document.roles, "role", field="role")

    def _check_vocabulary(self, kind: str, facts: Mapping[str, Any], policy: PolicySet) -> None:
        vocab = policy.document.vocabulary
        reasons = policy.kind(kind).reasons if kind in policy.document.kinds else None
        if "reason" in facts and reasons is not None:
            one_of(facts["reason"], reasons, f"{kind} reason", field="reason")
        if "condition" in facts:
            one_of(facts["condition"], vocab.conditions, "item condition", field="condition")
        if "channel" in facts:
            one_of(facts["channel"], vocab.channels, "channel", field="channel")
        for item in facts.get("evidence", []):
            one_of(item["type"], vocab.evidence, "evidence type", field="evidence")
        for flag in facts.get("flags", []):
            one_of(flag, vocab.flags, "customer flag", field="flags")

    def _event_data(self, case: Case, event: str, data: Mapping[str, Any] | None, actor: Actor) -> dict[str, Any]:
        ks = spec(case.kind)
        if event not in ks.events:
            raise InvalidInput(
                f"unknown {case.kind} event {event!r}{did_you_mean(event, ks.events)}; "
                f"{case.kind} events: {', '.join(ks.events)}", field="event", value=event)
        policy = self.policy_for(case.policy.hash)
        self._check_actor(actor, policy)
        clean = F.normalize(data or {})
        F.check_writable(clean, actor.role)
        self._check_vocabulary(case.kind, clean, policy)
        return clean

    def _decide(self, case: Case, event: str, actor: Actor, data: Mapping[str, Any]) -> Decision:
        ks = spec(case.kind)
        policy = self.policy_for(case.policy.hash)
        target = ks.target(case.state, event)
        if target is None:
            possible = ks.available(case.state)
            listed = ", ".join(possible) if possible else "none (the case is finished)"
            verdict = Verdict("machine", False, "not_available",
                              f"{event} is not available from state {case.state}; possible: {listed}",
                              {"state": case.state, "available": list(possible)})
            return Decision(case.kind, event, case.state, None, (verdict,), policy.ref)
        from casework.policies import GuardContext

        ctx = GuardContext(kind=case.kind, event=event, state=case.state, facts=F.merge(case.facts, data),
                           data=data, actor=actor, now=self._now(), tz=policy.tz, roles=policy.roles,
                           responded=case.responded_at is not None)
        verdicts = policy.evaluate(ctx)
        owner = case.customer
        if actor.role == "customer" and owner is not None and owner != actor.id:
            verdicts = (Verdict("owner", False, "role_not_permitted",
                                f"customer {actor.id} may act only on their own cases; this case is "
                                f"customer {owner}'s", {"actor": actor.id, "customer": owner}), *verdicts)
        return Decision(case.kind, event, case.state, target, verdicts, policy.ref)

    def _fire_once(self, number: str, event: str, actor: Actor, raw: Mapping[str, Any] | None,
                   data: dict[str, Any] | None, key: str | None, request: str,
                   expected_version: int | None) -> Case:
        # One read of the case, inside the write transaction: the decision and the write see the
        # same row (SQLite: BEGIN IMMEDIATE; PostgreSQL: the compare-and-set catches a change).
        with self.store.transaction() as tx:
            stored = tx.get(number)
            if stored is None:
                raise CaseNotFound(number, suggest(number, self.store.numbers_like(number), 3))
            case = stored.case
            if data is None:
                data = self._event_data(case, event, raw, actor)
            if expected_version is not None and case.version != expected_version:
                raise ConcurrentUpdate(number, expected_version, case.version)
            decision = self._decide(case, event, actor, data)
            now = self._now()
            policy = self.policy_for(case.policy.hash)
            allowed = decision.allowed
            entry, texts = self._entry_and_text(
                number, stored.last_seq + 1, stored.last_hash, now, event, case.state,
                decision.to_state if allowed else None, "applied" if allowed else "refused", actor,
                data.get("channel") or case.facts.get("channel"), decision.verdicts, data, policy, written_only=True)
            if allowed:
                assert decision.to_state is not None
                new = self._advance(case, event, decision.to_state, data, now, policy)
                try:
                    tx.apply(stored, new, entry, texts)
                except Lost as lost:
                    lost.version = case.version
                    raise
            else:
                try:
                    tx.refuse(stored, entry, texts)
                except Lost as lost:
                    lost.version = case.version
                    raise
            if key is not None:
                result = ({"outcome": "applied", "case": new.to_json()} if allowed
                          else {"outcome": "refused", "decision": decision.to_json()})
                tx.remember(key, request, f"{event} {number}", number, result, now)
        if not allowed:
            raise TransitionDenied(decision, number)
        return new

    def _advance(self, case: Case, event: str, to_state: str, data: Mapping[str, Any], now: datetime,
                 policy: PolicySet) -> Case:
        ks = spec(case.kind)
        responded = case.responded_at
        if responded is None and (policy.counts_as_response(case.kind, event) or to_state in ks.settled):
            responded = now
        since = now if to_state != case.state else case.state_since
        # Built directly (not dataclasses.replace, which inspects the fields on every call): hot path.
        moved = Case(number=case.number, kind=case.kind, state=to_state, version=case.version + 1,
                     facts=F.merge(case.facts, data), policy=case.policy, opened_at=case.opened_at, updated_at=now,
                     first_response_due=case.first_response_due, responded_at=responded, due_at=case.due_at,
                     closed=to_state in ks.final, resolution_due=case.resolution_due, timer_due=case.timer_due,
                     state_since=since)
        return with_deadlines(moved, policy)

    def _entry_and_text(self, number: str, seq: int, prev: str, at: datetime, event: str,
                        from_state: str | None, to_state: str | None, outcome: str, actor: Actor,
                        channel: str | None, verdicts: tuple[Verdict, ...], data: Mapping[str, Any],
                        policy: PolicySet, *, written_only: bool = False) -> tuple[AuditEntry, tuple[str, str]]:
        """The audit entry, and its verdicts and data as the canonical JSON the row stores (serialised once).

        The entry's ``data`` is exactly what a reader of the stored row gets back (a JSON round trip),
        unless ``written_only``: then it is ``data`` as given, for an entry that is only written (the
        row is written from the texts, and the hash is computed from them either way).
        """
        verdict_json = [v.to_json() for v in verdicts]
        verdicts_text = canonical(verdict_json)
        data_text = canonical(dict(data))
        data_json = dict(data) if written_only or not data else json.loads(data_text)
        last = self._last_at  # a sweep writes many entries at one instant (one object): format it once
        if last[0] is not at:
            last = self._last_at = (at, at.isoformat())
        h = entry_hash(number=number, seq=seq, at=last[1], event=event, from_state=from_state,
                       to_state=to_state, outcome=outcome, actor=actor.id, role=actor.role, channel=channel,
                       verdicts=verdict_json, data=data_json, policy_hash=policy.hash, prev_hash=prev,
                       verdicts_text=verdicts_text, data_text=data_text)
        entry = AuditEntry(number=number, seq=seq, at=at, event=event, from_state=from_state, to_state=to_state,
                           outcome=outcome, actor=actor.id, role=actor.role, channel=channel,
                           verdicts=verdict_json, data=data_json, policy=policy.ref, prev_hash=prev, hash=h)
        return entry, (verdicts_text, data_text)

    def _entry(self, number: str, seq: int, prev: str, at: datetime, event: str, from_state: str | None,
               to_state: str | None, outcome: str, actor: Actor, channel: str | None,
               verdicts: tuple[Verdict, ...], data: Mapping[str, Any], policy: PolicySet) -> AuditEntry:
        return self._entry_and_text(number, seq, prev, at, event, from_state, to_state, outcome, actor, channel,
                                    verdicts, data, policy)[0]

    def _replay(self, key: str, request: str) -> Case | None:
        found = self.store.idempotent_result(key)
        if found is None:
            return None
        original, description, result_json = found
        if original != request:
            raise IdempotencyConflict(key, description)
        result = json.loads(result_json)
        if result["outcome"] == "refused":
            decision = decision_from_json(result["decision"])
            raise TransitionDenied(decision, None)
        return case_from_json(result["case"])


def upgrade_database(db: str | None = None) -> tuple[str | None, str]:
    """Bring a database's schema up to date (Alembic migrations); ``(version before, after)``.

    An empty database gets every migration; an up-to-date one is left alone.
    """
    store = Store(database_url(db), create=False, check=False)
    try:
        return store.upgrade()
    finally:
        store.close()


def _fingerprint(request: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(dict(request)).encode("utf-8")).hexdigest()
