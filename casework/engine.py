"""The engine: the service layer that turns one command into one decision and one transaction.

>>> from casework import Engine, Actor, FixedClock
>>> engine = Engine("sqlite:///:memory:", clock=FixedClock("2026-11-22T10:00:00+08:00"))
>>> case = engine.open("refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"},
...                    actor=Actor("c-1", "customer"))
>>> engine.fire(case.number, "approve", actor=Actor("alice", "agent")).state
'approved'

The engine owns the collaborators (the store, the policy versions, the clock) and hands them to
the services that do the work: :mod:`casework.intake` checks input, :func:`casework.decide.decide`
decides, :mod:`casework.transition` makes the next case and its audit entry, and the sweep, bulk
import, simulate, adoption, the report and verification each get what they need passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework import intake
from casework.audit import AuditKey
from casework.changes import Change, Hook, Hooks, masked, outbox_mode, page
from casework.clock import Clock, system_clock
from casework.database import audit_key_of, database_source
from casework.decide import decide, decide_opening
from casework.desk_work import DeskWork
from casework.domain import (
    Actor,
    AuditEntry,
    Case,
    Decision,
)
from casework.errors import (
    InvalidInput,
    TransitionDenied,
    UniqueViolation,
)
from casework.firing import Firing, fingerprint_of
from casework.machines import check_filters, spec
from casework.oversight import Oversight
from casework.policy_admin import PolicyAdministration
from casework.policybook import PolicyBook
from casework.privacy import mask, masked_entries, personal_in
from casework.store import Connection, DatabaseSource, Footprint, Store
from casework.transition import case_number, number_series, opening, refused_opening
from casework.values import one_of

if TYPE_CHECKING:  # the policy machinery is imported on first use: `casework show` never needs it
    from casework.bulk import ImportReport
    from casework.policies import PolicySet

class Engine(PolicyAdministration, DeskWork, Oversight, Firing):
    """Opens cases, decides and applies events, and answers questions about cases.

    ``db`` is a SQLAlchemy URL (``sqlite:///casework.db``, ``postgresql+psycopg://user@host/db``), an
    SQLite file path, or the host's SQLAlchemy ``Engine`` (its pool); one Engine serves every thread of a
    process, and a forked child reconnects (README: Embedding). ``policies`` is a policy file, a loaded
    :class:`PolicySet`, or ``None`` for the packaged default. ``clock`` returns the current time (inject
    a FixedClock in tests).
    ``synchronous`` (SQLite only): ``"NORMAL"`` survives a process crash; ``"FULL"`` also a power loss.
    ``outbox``: which audit entries become changes (:meth:`changes`): ``"applied"`` transitions, ``"all"``
    (refused attempts too) or ``"off"``.
    ``audit_key`` (an :class:`AuditKey`, or its secret, at least 16 bytes, held outside the database)
    authenticates the audit trail: every entry written is MACed and chained with it, and ``verify``
    checks with it. A database whose chain is written with a key is written only with that key.
    Once a version is published in the database (:meth:`publish`), new cases get it, not ``policies``
    (``policy_notice`` says when they differ) unless ``override_published`` (see casework.policybook).
    ``schema`` (PostgreSQL) and ``prefix`` say where casework's tables are (README, "Embedding"): the
    default is the plain names (``cases``, ``audit_entries``, …) in the connection's default schema.
    """

    def __init__(self, db: DatabaseSource | None = None, *, policies: str | Path | PolicySet | None = None,
                 clock: Clock = system_clock, create: bool = True, synchronous: str = "NORMAL",
                 audit_key: AuditKey | bytes | str | None = None, override_published: bool = False,
                 schema: str | None = None, prefix: str = "", outbox: str = "applied") -> None:
        self.clock = clock
        self.store = Store(database_source(db), create=create, synchronous=synchronous, key=audit_key_of(audit_key),
                           footprint=Footprint(schema, prefix))
        self.store.outbox.mode = outbox_mode(outbox)
        self.hooks = Hooks()
        self.policies = PolicyBook(self.store, policies, self.now, override=override_published)

    @property
    def policy(self) -> PolicySet:
        """The policy in force for new cases (loaded, checked and stored on first use)."""
        return self.policies.current

    def zone(self) -> tzinfo:
        """The desk's time zone: the policy in force's (read without loading the policy, if need be)."""
        return self.policies.zone()

    def policy_for(self, policy_hash: str) -> PolicySet:
        """The policy version with this hash (loaded from the database if not in memory)."""
        return self.policies.version(policy_hash)

    def now(self) -> datetime:
        """The engine clock's time, in UTC (the clock must give timezone-aware times)."""
        now = self.clock()
        if now.tzinfo is None:
            raise InvalidInput(f"the engine clock returned a naive time {now!r}; it must be timezone-aware")
        return now.astimezone(UTC)

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def using(self, connection: Connection) -> Iterator[Engine]:
        """Within the block, this thread's calls run in the host's transaction on ``connection`` (a
        SQLAlchemy Connection): its cases and audit entries commit or roll back with the host's writes."""
        self.policies.current  # noqa: B018  (the policy version is stored in a transaction of its own first)
        with self.store.joining(connection):
            yield self

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- cases -------------------------------------------------------------------------------------
    def open(self, kind: str, facts: Mapping[str, Any], *, actor: Actor, channel: str | None = None,
             key: str | None = None) -> Case:
        """Open a case of ``kind`` with ``facts``; returns it with its new after-sales number. Refused by the rules
        (:func:`casework.decide.decide_opening`): TransitionDenied, recorded as an entry of no case
        (:meth:`refused_openings`); malformed: InvalidInput, not recorded."""
        policy = self.policies.for_new_cases()
        intake.check_opening(policy, kind, actor)
        clean = intake.opening_facts(policy, kind, facts, actor, channel)
        decision = decide_opening(policy, kind, clean, actor)
        request = fingerprint_of({"op": "open", "kind": kind, "facts": clean, "actor": actor.id, "role": actor.role})
        if key is not None and (replay := self._replay(actor, key, request)) is not None:
            return replay
        now = self.now()
        try:
            with self.store.transaction() as tx:
                series = number_series(spec(kind), policy, now)
                if decision.allowed:
                    t = opening(case_number(series, tx.next_numbers(series)[0]), kind, clean, policy, now, actor,
                                *decision.verdicts,
                                *self.policies.opening_record())
                    tx.insert_cases([(t.case, t.entry, t.texts)])
                else:  # refused: on the trail all the same, an entry of no case
                    tx.append([(None, *refused_opening(series, clean, policy, now, actor, decision.verdicts), None)])
                if key is not None:
                    tx.remember(actor.id, key, request, f"open {kind}", t.case.number if decision.allowed else series,
                                {"outcome": "applied", "case": t.case.to_json()} if decision.allowed
                                else {"outcome": "refused", "decision": decision.to_json()}, now)
        except UniqueViolation:
            if key is not None and (replay := self._replay(actor, key, request)) is not None:
                return replay  # the same request, opened by another writer a moment before
            raise
        if not decision.allowed:
            raise TransitionDenied(decision, None)
        return t.case

    def open_many(self, records: Iterable[Mapping[str, Any]], *, actor: Actor, batch: int = 1000,
                  progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
        """Open many cases, ``batch`` per transaction, as if by ``open`` one by one (see casework.bulk)."""
        from casework import bulk

        return bulk.open_many(self.store, self.policies, records, actor=actor, now=self.now, batch=batch,
                              progress=progress)

    def import_file(self, path: str | Path, *, actor: Actor, batch: int = 1000,
                    progress: Callable[[int, int | None], None] | None = None) -> ImportReport:
        """Open a case per record of a JSON Lines file (``-``: standard input), as :meth:`open_many` would;
        raises :class:`InvalidImportFile` naming ``FILE:LINE`` for a bad line (see casework.bulk.import_file)."""
        from casework import bulk

        return bulk.import_file(self.store, self.policies, path, actor=actor, now=self.now, batch=batch,
                                progress=progress)

    def get(self, number: str, *, reveal: bool = False) -> Case:
        """The case with this number, its personal facts masked unless ``reveal``; raises
        :class:`CaseNotFound` (with suggestions). Personal facts are those any policy version marks
        ``personal`` (a phone ``13800138000`` reads ``13*******00``)."""
        case = self._case(number)
        return case if reveal else self._masked(case)

    def _case(self, number: str) -> Case:
        return self._stored(self.store.get(number), number).case

    def _masked(self, case: Case) -> Case:
        personal = self.policies.personal_facts(case.policy.hash)
        if not personal or not personal_in(case.facts, personal):
            return case
        return replace(case, facts=mask(case.facts, personal))

    def check(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None) -> Decision:
        """Dry run: would ``event`` be allowed now? Every guard's verdict; nothing is written."""
        case = self._case(number)
        policy = self.policy_for(case.policy.hash)
        return decide(policy, case, event, actor, intake.event_data(policy, case.kind, event, data, actor), self.now())

    def next_events(self, number: str, *, actor: Actor) -> list[Decision]:
        """Every event possible from the case's current state, each with its decision for ``actor``."""
        case = self._case(number)
        policy = self.policy_for(case.policy.hash)
        intake.check_actor(actor, policy)
        now = self.now()
        return [decide(policy, case, e, actor, {}, now) for e in spec(case.kind).available(case.state)]

    def history(self, number: str, *, reveal: bool = False) -> list[AuditEntry]:
        """The case's audit trail, oldest first (applied transitions and refused attempts), personal facts
        in each entry's data masked unless ``reveal``."""
        case = self._case(number)
        entries = self.store.history(number)
        return entries if reveal else masked_entries(entries, self.policies.personal_facts(case.policy.hash))

    def refused_openings(self, *, kind: str | None = None, reveal: bool = False) -> list[AuditEntry]:
        """The openings the rules refused, oldest first (of one ``kind`` if given): entries of no case, each named
        by the series its case would have been numbered in (``RF-20261122``), with every verdict and the facts as
        given, personal facts masked unless ``reveal``."""
        check_filters(kind, None)
        entries = self.store.refused_openings(spec(kind).prefix if kind is not None else None)
        return entries if reveal else masked_entries(entries, self.personal_facts())

    def messages(self, decision: Decision, *, audience: str = "customer", lang: str | None = None,
                 number: str | None = None) -> list[str]:
        """What to tell ``audience`` (customer or operator) about each reason ``decision`` was refused, from
        the messages of the policy version that decided it, in ``lang`` (default: the ``locale`` fact of
        case ``number``, else English). Empty when the decision allowed the event."""
        from casework.messages import AUDIENCES, lang_for, language, messages_for

        one_of(audience, AUDIENCES, "audience", field="audience")
        policy = self.policy_for(decision.policy.hash) if decision.policy is not None else self.policy
        if lang is not None:
            language(policy, lang)
        facts = self._case(number).facts if number is not None and lang is None and decision.reasons else {}
        return messages_for(policy, decision, audience, lang_for(facts, lang), context={"number": number or ""})

    def language(self, lang: str) -> str:
        """``lang`` if the current policy's messages are written in it (or in its base language); InvalidInput
        listing the languages they are in otherwise."""
        from casework.messages import language

        return language(self.policy, lang)

    def find(self, *, kind: str | None = None, state: str | None = None, order_id: str | None = None,
             customer: str | None = None, overdue: bool = False, due_before: datetime | None = None,
             queue: str | None = None, limit: int | None = 100, offset: int = 0, reveal: bool = False,
             assignee: str | None = None, unassigned: bool = False, channel: str | None = None,
             text: str | None = None, due_within: str | timedelta | None = None, now: datetime | None = None,
             waiting: bool = False, view: str | None = None, me: str | None = None,
             open_only: bool = False) -> list[Case]:
        """Cases matching every given filter, newest first (most overdue first with ``overdue``/``due_before``/
        ``due_within``), personal facts masked unless ``reveal``; ``assignee``: the cases assigned to that
        operator, ``unassigned``: the open cases nobody is assigned to; ``channel``: opened through that channel;
        ``text``: in the order id, the customer or a note of the thread (any case); ``due_within`` (``2h``,
        ``'4 service hours'``): open cases with a deadline that soon; ``waiting``: in a state where the desk
        waits on the customer; ``view``: a saved view (see :mod:`casework.queue_views`; ``me``, the acting
        operator, for ``mine``); ``open_only``: no closed case (the desk's queue). ``overdue`` and ``due_within`` are
        reckoned at ``now`` (default: the clock)."""
        from casework.queue_views import store_filters

        check_filters(kind, state)
        if limit is not None:
            F.check_whole(limit, "limit", what="a whole number of cases (None: every case)")
        F.check_whole(offset, "offset")
        if text is not None:
            F.check_text(text, "search", F.MAX_TEXT)
        given = {"kind": kind, "state": state, "queue": queue, "channel": channel, "assignee": assignee,
                 "unassigned": unassigned, "due_before": due_before, "open_only": open_only}
        chosen = store_filters(self.policy, now or self.now(), given, view=view, me=me, overdue=overdue,
                               due_within=due_within, waiting=waiting)
        check_filters(chosen["kind"], chosen["state"])
        found = self.store.find(order_id=order_id, customer=customer, limit=limit, offset=offset, text=text or None,
                                **chosen)
        return found if reveal else [self._masked(c) for c in found]

    # ---- the outbox (see casework.changes) -------------------------------------------------------------
    def changes(self, after: int = 0, *, limit: int = 100, reveal: bool = False) -> list[Change]:
        """Up to ``limit`` changes with global ids above ``after`` (a cursor: the last id you consumed), in
        commit order; personal facts masked unless ``reveal``. A change committed later never gets an id below
        one already read, so a consumer that keeps its cursor misses none."""
        found = self.store.outbox.changes(*page(after, limit))
        if reveal:
            return found
        personal = {h: self.policies.personal_facts(h) for h in {c.entry.policy.hash for c in found}}
        return [masked(c, personal[c.entry.policy.hash]) for c in found]

    def on_applied(self, callback: Hook) -> Hook:
        """Call ``callback(change)`` after each commit, for every applied change it wrote (any writer of this
        Engine: open, fire, import, sweep, adoption); an exception in it is logged, the transition stands.
        Writes in a host's transaction (:meth:`using`) are committed by the host, not here: no hook runs for them."""
        self.store.outbox.after_commit = self.hooks.run
        return self.hooks.add(callback)

    def on_refused(self, callback: Hook) -> Hook:
        """Call ``callback(change)`` after each commit for every refused attempt it recorded (as ``on_applied``)."""
        self.store.outbox.after_commit = self.hooks.run
        return self.hooks.add(callback, refused=True)

