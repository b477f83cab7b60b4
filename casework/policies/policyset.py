"""A loaded, cross-checked policy version, and the evaluation of an event against it.

Building one (``parse_policy``, ``load_policy``) reads the file with ``casework.policies.loader`` and
cross-checks the document with ``casework.policies.validation``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from casework import facts as F
from casework.domain import NOTHING_TRACKED, Actor, PolicyRef, Verdict
from casework.errors import PolicyError, PolicyProblem
from casework.machines import AMEND, spec
from casework.policies.calendar import Deadline, ServiceCalendar
from casework.policies.context import GuardContext, RoleBook
from casework.policies.files import content_hash, default_policy_path, read_policy_text
from casework.policies.guard_base import GuardBase
from casework.policies.loader import parse_document_partially
from casework.policies.schema import DeskDeadline, Escalation, EventPolicy, KindPolicy, PolicyDocument, Timer
from casework.policies.validation import cross_check


@dataclass(frozen=True)
class PolicySet:
    """One version of the rules: the validated document, its source, and where each rule stands."""

    document: PolicyDocument
    source: str
    name: str
    ref: PolicyRef
    tz: ZoneInfo
    roles: RoleBook
    warnings: tuple[PolicyProblem, ...] = ()
    _sources: Mapping[tuple[str, str, int], str] = field(default_factory=dict)
    _event_sources: Mapping[tuple[str, str], str] = field(default_factory=dict)

    # ---- reading -------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.ref.label

    @property
    def hash(self) -> str:
        return self.ref.hash

    def kind(self, kind: str) -> KindPolicy:
        return self.document.kinds[kind]

    def event(self, kind: str, event: str) -> EventPolicy | None:
        kp = self.document.kinds.get(kind)
        return kp.events.get(event) if kp else None

    def first_response(self, kind: str) -> Deadline:
        kp = self.document.kinds.get(kind)
        if kp is not None and kp.first_response is not None:
            return kp.first_response
        return self.document.service.first_response

    def first_response_due(self, kind: str, opened: datetime, channel: str | None = None) -> datetime:
        """When the first response to a case of ``kind`` opened at ``opened`` is due."""
        kp = self.document.kinds.get(kind)
        if kp is not None and channel is not None and channel in kp.first_response_by_channel:
            return self.calendar.deadline(opened, kp.first_response_by_channel[channel])
        return self.calendar.deadline(opened, self.first_response(kind))

    def resolution_target(self, kind: str, priority: int | None = None) -> Deadline | None:
        """How long a case of ``kind`` at ``priority`` may take to settle: the kind's ``resolution_by_priority``
        for that priority, else its ``resolution`` (None: no target)."""
        kp = self.document.kinds.get(kind)
        if kp is None:
            return None
        if priority is not None and priority in kp.resolution_by_priority:
            return kp.resolution_by_priority[priority]
        return kp.resolution

    def resolution_due(self, kind: str, opened: datetime, priority: int | None = None) -> datetime | None:
        target = self.resolution_target(kind, priority)
        return None if target is None else self.calendar.deadline(opened, target)

    def reopened_resolution(self, kind: str, due: datetime | None, now: datetime) -> datetime | None:
        """The resolution deadline of a case of ``kind`` reopened at ``now`` that was due at ``due``: the later of
        that and the kind's ``reopen_resolution`` from now (None: the kind sets none, the promise stands)."""
        kp = self.document.kinds.get(kind)
        if kp is None or kp.reopen_resolution is None:
            return None
        fresh = self.calendar.deadline(now, kp.reopen_resolution)
        return fresh if due is None or due < fresh else None

    def waits_on_customer(self, kind: str, state: str) -> bool:
        """Whether the desk waits on the customer in ``state`` (the kind's ``waiting_states``): the resolution
        clock is paused there."""
        kp = self.document.kinds.get(kind)
        return kp is not None and state in kp.waiting_states

    def resolution_resumed(self, kind: str, due: datetime, paused_from: datetime, now: datetime,
                           priority: int | None = None) -> datetime:
        """The resolution deadline ``due`` of a case that waited on the customer from ``paused_from`` until
        ``now``: pushed by the time paused, counted as the target counts (service time, or wall clock)."""
        target = self.resolution_target(kind, priority)
        if target is None:
            return due
        return self.calendar.extend(due, self.calendar.elapsed(paused_from, now, target), target)

    def resolution_reprioritized(self, kind: str, opened: datetime, due: datetime, before: int,
                                 after: int) -> datetime | None:
        """The resolution deadline of a case opened at ``opened``, due at ``due`` at priority ``before``, now
        at priority ``after``: the target of ``after`` from the opening, extended by as much as ``due`` had been
        (the time paused waiting on the customer, a reopening)."""
        old, new = self.resolution_target(kind, before), self.resolution_target(kind, after)
        if new is None or old is None or old == new:
            return due
        start = self.calendar.deadline(opened, old)
        return self.calendar.extend(self.calendar.deadline(opened, new), self.calendar.elapsed(start, due, old), old)

    def reopen_until(self, kind: str, closed: datetime) -> datetime | None:
        """Until when a case of ``kind`` closed at ``closed`` may be reopened (None: no limit)."""
        kp = self.document.kinds.get(kind)
        if kp is None or kp.reopen_within is None:
            return None
        return self.calendar.deadline(closed, kp.reopen_within)

    def opening_deadlines(self, kind: str, opened: datetime, channel: str | None = None
                          ) -> tuple[datetime, datetime | None]:
        """``(first_response_due, resolution_due)`` of a case of ``kind`` opened at ``opened``.

        Remembered for the latest openings: a batch opens many cases of one kind and channel at one
        instant. Keyed by the UTC instant (in a zone with DST two instants a fold apart compare equal).
        """
        key = (kind, channel, opened.astimezone(UTC))
        found = self._openings.get(key)
        if found is None:
            if len(self._openings) >= 256:
                self._openings.clear()
            found = self._openings[key] = (self.first_response_due(kind, opened, channel),
                                           self.resolution_due(kind, opened, NOTHING_TRACKED.priority))
        return found

    @cached_property
    def _openings(self) -> dict[tuple[str, str | None, datetime], tuple[datetime, datetime | None]]:
        return {}

    def timer(self, kind: str, state: str) -> Timer | None:
        """The system timer that runs while a case of ``kind`` is in ``state`` (the first listed)."""
        return self._timers.get((kind, state))

    @cached_property
    def _timers(self) -> dict[tuple[str, str], Timer]:
        found: dict[tuple[str, str], Timer] = {}
        for kind, kp in self.document.kinds.items():
            for t in kp.timers:
                found.setdefault((kind, t.state), t)
        return found

    def timer_due(self, kind: str, state: str, since: datetime) -> datetime | None:
        t = self.timer(kind, state)
        return None if t is None else self.calendar.deadline(since, t.after)

    def desk_deadline(self, kind: str, state: str) -> DeskDeadline | None:
        """The desk deadline that runs while a case of ``kind`` is in ``state`` (the first listed)."""
        return self._desk.get((kind, state))

    @cached_property
    def _desk(self) -> dict[tuple[str, str], DeskDeadline]:
        found: dict[tuple[str, str], DeskDeadline] = {}
        for kind, kp in self.document.kinds.items():
            for d in kp.deadlines:
                found.setdefault((kind, d.state), d)
        return found

    def desk_due(self, kind: str, state: str, since: datetime) -> datetime | None:
        d = self.desk_deadline(kind, state)
        return None if d is None else self.calendar.deadline(since, d.within)

    def escalation(self, breach: str) -> Escalation | None:
        """What a missed deadline does: the service's ``on_breach`` for the first response and the resolution, a
        desk deadline's own ``on_breach`` for it."""
        found = getattr(self.document.service.on_breach, breach, None)
        return found if found is not None else next(
            (d.on_breach for d in self._desk.values() if d.name == breach), None)

    @cached_property
    def calendar(self) -> ServiceCalendar:
        svc = self.document.service
        days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        return ServiceCalendar(
            tz=self.tz,
            hours=(svc.hours.open, svc.hours.close) if svc.hours else None,
            holidays=frozenset(svc.holidays),
            special={d.date: (d.hours.open, d.hours.close) if d.hours else None for d in svc.special_days},
            weekdays={days.index(k): (h.open, h.close) if h else None for k, h in svc.weekdays.items()},
        )

    def counts_as_response(self, kind: str, event: str) -> bool:
        kp = self.document.kinds.get(kind)
        return kp is not None and event in kp.responses

    @cached_property
    def fact_types(self) -> dict[str, str]:
        """The declared facts and their types (what expressions read them as)."""
        return {name: d.type for name, d in self.document.declared().items()}

    @cached_property
    def declared_types(self) -> dict[str, str]:
        """The types of the declared facts casework does not know by name (intake normalises them so)."""
        return {name: t for name, t in self.fact_types.items() if name not in F.KNOWN_FACTS}

    @cached_property
    def declared_values(self) -> dict[str, list[str]]:
        """The values each declared enum or list fact casework does not know by name may take."""
        out: dict[str, list[str]] = {}
        for name, d in self.document.declared().items():
            if name in F.KNOWN_FACTS or d.type not in ("enum", "list") or d.values is None:
                continue
            if isinstance(d.values, list):
                out[name] = d.values
            elif d.values == "reasons":
                out[name] = sorted({r for kp in self.document.kinds.values() for r in kp.reasons or ()})
            else:
                out[name] = list(getattr(self.document.vocabulary, d.values))
        return out

    def guard_source(self, kind: str, event: str, index: int) -> str | None:
        return self._sources.get((kind, event, index))

    # ---- deciding ------------------------------------------------------------------------------
    def grants(self, actor: Actor) -> bool:
        """Whether the ``operators`` section lets ``actor.id`` act as ``actor.role`` (open mode: always).

        The engine's own actor (``Actor.system()``: its timers and sweeps) is always granted; anyone
        else saying they are ``system`` is granted only what the section grants them.
        """
        operators = self.document.operators
        if operators is None or actor.role == "customer" or actor.is_engine:
            return True
        return actor.role in operators.get(actor.id, [])

    def writable(self, role: str) -> frozenset[str] | None:
        """The facts ``role`` may give with an event (None: any fact), its inherited roles' included."""
        if role in self._writable:
            return self._writable[role]
        return self.document.writes(role, self.roles.lineage(role))

    def opening_writable(self, role: str, kind: str) -> frozenset[str] | None:
        """The facts ``role`` may give when opening a ``kind`` case (None: any): what it writes, what it opens
        with (``opens``), the facts the kind requires, and ``customer`` (whose case it is: checked apart)."""
        key = (role, kind)
        if key not in self._opening_writable:
            writes, opens = self.writable(role), self.document.opens(role, self.roles.lineage(role))
            self._opening_writable[key] = None if writes is None or opens is None else frozenset(
                {*writes, *opens, *self.kind(kind).required, "customer"})
        return self._opening_writable[key]

    @cached_property
    def _opening_writable(self) -> dict[tuple[str, str], frozenset[str] | None]:
        return {}

    @cached_property
    def _writable(self) -> dict[str, frozenset[str] | None]:
        return {role: self.document.writes(role, self.roles.lineage(role)) for role in self.document.roles}

    def judged(self, kind: str, state: str, event: str) -> frozenset[str]:
        """The facts of a ``kind`` case in ``state`` that ``event``'s data may not change: those a guard of an
        event that may have been applied to it judged, or a guard of ``event`` itself judges, and its owner."""
        key = (kind, state, event)
        found = self._judged.get(key)
        if found is None:
            events = spec(kind).reached_by(state) | {event}
            found = self._judged[key] = frozenset(
                {"customer"}.union(*(g.judges() for e in events for g in self._event_guards.get((kind, e), ()))))
        return found

    @cached_property
    def _judged(self) -> dict[tuple[str, str, str], frozenset[str]]:
        return {}

    def rejudge(self, ctx: GuardContext, facts: frozenset[str]) -> list[Verdict]:
        """An amend of ``facts`` judged again: the verdicts of every guard that may have judged one of them on
        the case's way to ``ctx.state`` (of the events that may have been applied), on ``ctx``'s facts."""
        ks = spec(ctx.kind)
        events = ks.reached_by(ctx.state) - {AMEND}
        return _judge((g for e in ks.events if e in events
                       for g in self._event_guards.get((ctx.kind, e), ()) if not facts.isdisjoint(g.judges())), ctx)

    def grant_verdict(self, actor: Actor) -> Verdict | None:
        """A refusal when the actor was not granted the role it claims (None when it was)."""
        if self.grants(actor):
            return None
        granted = (self.document.operators or {}).get(actor.id, [])
        return Verdict("operators", False, "role_not_permitted",
                       f"{actor.id} was not granted the role {actor.role}; granted: "
                       f"{', '.join(granted) or 'none (customer only)'}",
                       {"actor": actor.id, "role": actor.role, "granted": list(granted)})

    def role_verdict(self, kind: str, event: str, actor: Actor) -> Verdict:
        passed, message, allowed = (self._role_answers.get((kind, event, actor.role))
                                    or self._role_answer(kind, event, actor.role))
        return Verdict("roles", passed, None if passed else "role_not_permitted", message,
                       {"role": actor.role, "allowed": list(allowed)}, self._event_sources.get((kind, event)))

    def _role_answer(self, kind: str, event: str, role: str) -> tuple[bool, str, tuple[str, ...]]:
        """Whether ``role`` may fire the event, the message saying so, and the roles that may."""
        ep = self.event(kind, event)
        allowed = tuple(ep.roles) if ep else ()
        lineage = self.roles.lineage(role)
        passed = any(r in lineage for r in allowed)
        who = ", ".join(allowed) if allowed else "no role"
        return passed, (f"role {role} may {event} a {kind}" if passed
                        else f"role {role} may not {event} a {kind}; allowed: {who}"), allowed

    @cached_property
    def _role_answers(self) -> dict[tuple[str, str, str], tuple[bool, str, tuple[str, ...]]]:
        """``_role_answer`` of every event of the policy for each of its roles, worked out once."""
        return {(kind, event, role): self._role_answer(kind, event, role)
                for kind, kp in self.document.kinds.items() for event in kp.events for role in self.document.roles}

    def evaluate(self, ctx: GuardContext) -> tuple[Verdict, ...]:
        """Every applicable guard's verdict for ``ctx.event`` (role check first); never stops early."""
        verdicts = [self.role_verdict(ctx.kind, ctx.event, ctx.actor)]
        not_granted = self.grant_verdict(ctx.actor)
        if not_granted is not None:
            verdicts.insert(0, not_granted)
        verdicts.extend(_judge(self._event_guards.get((ctx.kind, ctx.event), ()), ctx))
        return tuple(verdicts)

    @cached_property
    def _event_guards(self) -> dict[tuple[str, str], tuple[GuardBase, ...]]:
        """Each event's guards, each placed where it is written (its verdicts carry that source line)."""
        return {(kind, event): tuple(g.placed(self._sources.get((kind, event, i))) for i, g in enumerate(ep.guards))
                for kind, kp in self.document.kinds.items() for event, ep in kp.events.items()}


def _judge(guards: Iterable[GuardBase], ctx: GuardContext) -> list[Verdict]:
    """The verdicts of the ``guards`` that apply to ``ctx``."""
    return [guard.evaluate(ctx) for guard in guards if guard.applies(ctx)]


# ---- loading -----------------------------------------------------------------------------------
def load_policy(path: str | Path | None = None) -> PolicySet:
    """Load and check a policy file (the packaged default when ``path`` is None)."""
    p = Path(path) if path is not None else default_policy_path()
    return parse_policy(read_policy_text(p), str(path) if path is not None else "policies.yaml")


def parse_policy(text: str, name: str = "policies.yaml") -> PolicySet:
    """Validate policy text and build a :class:`PolicySet`; raise PolicyError listing every problem."""
    doc, smap, malformed = parse_document_partially(text, name)
    # Every problem in one run: the cross-checks run on what is well-formed even when some part is not.
    problems, warnings = cross_check(doc, smap) if doc is not None else ([], [])
    if malformed or problems:
        raise PolicyError([*malformed, *problems])
    assert doc is not None
    tz = ZoneInfo(doc.timezone)
    roles = RoleBook(
        inherits={name: tuple(r.inherits) for name, r in doc.roles.items()},
        limits=_limits(doc),
    )
    sources: dict[tuple[str, str, int], str] = {}
    event_sources: dict[tuple[str, str], str] = {}
    for kind, kp in doc.kinds.items():
        for event, ep in kp.events.items():
            event_sources[(kind, event)] = smap.at(("kinds", kind, "events", event))
            for i in range(len(ep.guards)):
                sources[(kind, event, i)] = smap.at(("kinds", kind, "events", event, "guards", i))
    return PolicySet(
        document=doc, source=text, name=name, ref=PolicyRef(doc.label, content_hash(text)), tz=tz,
        roles=roles, warnings=tuple(warnings), _sources=sources, _event_sources=event_sources,
    )


def _limits(doc: PolicyDocument) -> dict[str, Any]:
    """Approval limits; a role without its own limit takes the highest it inherits."""
    limits: dict[str, Any] = {}
    book = RoleBook({n: tuple(r.inherits) for n, r in doc.roles.items()}, {})
    for name, role in doc.roles.items():
        if "approval_limit" in role.model_fields_set:
            limits[name] = role.approval_limit
            continue
        inherited = [doc.roles[r] for r in book.lineage(name) - {name} if r in doc.roles
                     and "approval_limit" in doc.roles[r].model_fields_set]
        if inherited:
            values = [r.approval_limit for r in inherited]
            limits[name] = None if any(v is None for v in values) else max(v for v in values if v is not None)
    return limits
