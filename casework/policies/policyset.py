"""A loaded, cross-checked policy version, and the evaluation of an event against it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from string import Formatter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.domain import Actor, PolicyRef, Verdict
from casework.errors import PolicyError, PolicyProblem
from casework.machines import KINDS
from casework.policies.calendar import Deadline, ServiceCalendar
from casework.policies.context import GuardContext, RoleBook
from casework.policies.guards import (
    CategoryGuard,
    Condition,
    ConditionGuard,
    EvidenceGuard,
    FraudCounterGuard,
    FraudFlagGuard,
    GuardBase,
    WindowGuard,
    known_codes,
)
from casework.policies.loader import (
    SourceMap,
    content_hash,
    default_policy_path,
    parse_document,
    read_policy_text,
)
from casework.policies.schema import Escalation, EventPolicy, KindPolicy, PolicyDocument, Timer
from casework.values import suggest


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

    def resolution_due(self, kind: str, opened: datetime) -> datetime | None:
        kp = self.document.kinds.get(kind)
        if kp is None or kp.resolution is None:
            return None
        return self.calendar.deadline(opened, kp.resolution)

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

    def escalation(self, breach: str) -> Escalation | None:
        return getattr(self.document.service.on_breach, breach, None)

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

    def guard_source(self, kind: str, event: str, index: int) -> str | None:
        return self._sources.get((kind, event, index))

    # ---- deciding ------------------------------------------------------------------------------
    def grants(self, actor: Actor) -> bool:
        """Whether the ``operators`` section lets ``actor.id`` act as ``actor.role`` (open mode: always)."""
        operators = self.document.operators
        if operators is None or actor.role == "customer":
            return True
        if actor.role == "system" and actor.id == "system":
            return True
        return actor.role in operators.get(actor.id, [])

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
        return Verdict("roles", passed, "role_not_permitted", message,
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
        for guard, src in self._event_guards.get((ctx.kind, ctx.event), ()):
            if guard.applies(ctx):
                v = guard.evaluate(ctx)
                verdicts.append(Verdict(v.guard, v.passed, v.code, v.message, v.details, src))
        return tuple(verdicts)

    @cached_property
    def _event_guards(self) -> dict[tuple[str, str], tuple[tuple[GuardBase, str | None], ...]]:
        """Each event's guards, each with where it is written."""
        return {(kind, event): tuple((g, self._sources.get((kind, event, i))) for i, g in enumerate(ep.guards))
                for kind, kp in self.document.kinds.items() for event, ep in kp.events.items()}


# ---- loading -----------------------------------------------------------------------------------
def load_policy(path: str | Path | None = None) -> PolicySet:
    """Load and check a policy file (the packaged default when ``path`` is None)."""
    p = Path(path) if path is not None else default_policy_path()
    return parse_policy(read_policy_text(p), str(path) if path is not None else "policies.yaml")


def parse_policy(text: str, name: str = "policies.yaml") -> PolicySet:
    """Validate policy text and build a :class:`PolicySet`; raise PolicyError listing every problem."""
    doc, smap = parse_document(text, name)
    problems, warnings = _cross_check(doc, smap)
    if problems:
        raise PolicyError(problems)
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


def _cross_check(doc: PolicyDocument, smap: SourceMap) -> tuple[list[PolicyProblem], list[PolicyProblem]]:
    errors: list[PolicyProblem] = []
    warnings: list[PolicyProblem] = []

    def err(loc: tuple[str | int, ...], message: str, key: bool = False) -> None:
        errors.append(PolicyProblem(smap.name, *smap.locate(loc, key=key), message))

    def warn(loc: tuple[str | int, ...], message: str, key: bool = False) -> None:
        warnings.append(PolicyProblem(smap.name, *smap.locate(loc, key=key), message, "warning"))

    def check_names(loc: tuple[str | int, ...], values: Iterable[str], known: Iterable[str], what: str) -> None:
        known = list(known)
        for i, value in enumerate(values):
            if value not in known:
                close = suggest(value, known, 1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known) or '(none)'}"
                err((*loc, i), f"unknown {what} {value!r}{hint}")

    try:
        ZoneInfo(doc.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        err(("timezone",), f"unknown time zone {doc.timezone!r}; use an IANA name like Asia/Shanghai or UTC")

    roles = list(doc.roles)
    for name, role in doc.roles.items():
        check_names(("roles", name, "inherits"), role.inherits, roles, "role")
    if doc.operators is None:
        warn(("roles",), "no operators section: open mode, any actor may claim any role (fine for a demo; "
             "grant roles per actor in production)", key=True)
    else:
        for actor_id, granted in doc.operators.items():
            check_names(("operators", actor_id), granted, roles, "role")
    vocab = doc.vocabulary

    if doc.service.first_response.span <= timedelta(0):
        err(("service", "first_response"), "first_response must be longer than zero")

    for kind, kp in doc.kinds.items():
        if kind not in KINDS:
            close = suggest(kind, KINDS, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; kinds: {', '.join(KINDS)}"
            err(("kinds", kind), f"unknown case kind {kind!r}{hint}", key=True)
            continue
        spec = KINDS[kind]
        check_names(("kinds", kind, "open_roles"), kp.open_roles, roles, "role")
        check_names(("kinds", kind, "responses"), kp.responses, spec.events, f"{kind} event")
        for event, ep in kp.events.items():
            loc: tuple[str | int, ...] = ("kinds", kind, "events", event)
            if event not in spec.events:
                close = suggest(event, spec.events, 1)
                hint = f" (did you mean {close[0]!r}?)" if close else f"; {kind} events: {', '.join(spec.events)}"
                err(loc, f"unknown {kind} event {event!r}{hint}", key=True)
                continue
            check_names((*loc, "roles"), ep.roles, roles, "role")
            if not ep.roles:
                warn((*loc, "roles"), f"no role may fire {kind}.{event}")
            for i, guard in enumerate(ep.guards):
                _check_guard(guard, (*loc, "guards", i), doc, kind, check_names, err, warn)
        for ch in kp.first_response_by_channel:
            check_names(("kinds", kind, "first_response_by_channel"), [ch], doc.vocabulary.channels, "channel")
        for i, timer in enumerate(kp.timers):
            tloc: tuple[str | int, ...] = ("kinds", kind, "timers", i)
            if timer.state not in spec.states:
                check_names((*tloc, "state"), [timer.state], spec.states, f"{kind} state")
            elif timer.event not in spec.events:
                check_names((*tloc, "event"), [timer.event], spec.events, f"{kind} event")
            elif spec.target(timer.state, timer.event) is None:
                err((*tloc, "event"), f"{timer.event} is not available from {kind} state {timer.state}; "
                    f"possible: {', '.join(spec.available(timer.state)) or 'none'}")
            else:
                timer_ep = kp.events.get(timer.event)
                if timer_ep is None or not set(timer_ep.roles) & _lineage(doc, "system"):
                    warn((*tloc, "event"), f"the timer fires {kind}.{timer.event} as system, but the policy "
                         "does not let the system role fire it")
            if timer.after.span <= timedelta(0):
                err((*tloc, "after"), "a timer must run for longer than zero")
        for event in spec.events:
            if event not in kp.events:
                warn(("kinds", kind, "events"), f"{kind}.{event} has no entry, so no role may fire it")
    for kind in KINDS:
        if kind not in doc.kinds:
            warn(("kinds",), f"kind {kind!r} has no policy, so no case of that kind can be opened")
    _check_messages(doc, err, warn)
    del vocab
    return errors, warnings


def _check_messages(doc: PolicyDocument, err: Any, warn: Any) -> None:
    """Message codes must be reason codes; templates must be well-formed, with named placeholders."""
    codes = known_codes()
    for code, texts in doc.messages.items():
        if code not in codes:
            close = suggest(code, codes, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; codes: {', '.join(codes)}"
            err(("messages", code), f"unknown reason code {code!r}{hint}", key=True)
            continue
        for audience in ("operator", "customer"):
            by_lang: dict[str, str] = getattr(texts, audience)
            if by_lang and "en" not in by_lang:
                warn(("messages", code, audience), f"{code}: no 'en' {audience} message; other languages fall "
                     "back to it, and then to the engine's own message")
            for lang, text in by_lang.items():
                try:
                    fields = [f for _, f, _, _ in Formatter().parse(text) if f is not None]
                except ValueError as exc:
                    err(("messages", code, audience, lang), f"{code} {audience} {lang}: malformed template ({exc}); "
                        "write a literal brace as {{ or }}")
                    continue
                if any(f == "" or f[0].isdigit() for f in fields):
                    err(("messages", code, audience, lang), f"{code} {audience} {lang}: use named placeholders, "
                        "like {window}, not {} or {0}")


def _lineage(doc: PolicyDocument, role: str) -> set[str]:
    return RoleBook({n: tuple(r.inherits) for n, r in doc.roles.items()}, {}).lineage(role)


def _check_guard(guard: GuardBase, loc: tuple[str | int, ...], doc: PolicyDocument, kind: str,
                 check_names: Any, err: Any, warn: Any) -> None:
    vocab = doc.vocabulary
    reasons = doc.kinds[kind].reasons
    if guard.when is not None:
        _check_condition(guard.when, (*loc, "when"), doc, reasons, check_names)
    if isinstance(guard, WindowGuard):
        if guard.within <= timedelta(0):
            err((*loc, "within"), "a window must be longer than zero (a window of 0 refuses everything)")
        for r, d in guard.by_reason.items():
            if reasons is not None and r not in reasons:
                check_names((*loc, "by_reason"), [r], reasons, "reason")
            if d <= timedelta(0):
                err((*loc, "by_reason", r), "a window must be longer than zero")
        for d in guard.by_category.values():
            if d <= timedelta(0):
                err((*loc, "by_category"), "a window must be longer than zero")
    elif isinstance(guard, CategoryGuard):
        check_names((*loc, "categories"), guard.categories, vocab.categories, "category")
    elif isinstance(guard, ConditionGuard):
        check_names((*loc, "allowed"), guard.allowed, vocab.conditions, "condition")
    elif isinstance(guard, EvidenceGuard):
        check_names((*loc, "all_of"), guard.all_of, vocab.evidence, "evidence type")
        check_names((*loc, "any_of"), guard.any_of, vocab.evidence, "evidence type")
        if not guard.all_of and not guard.any_of:
            err(loc, "an evidence guard needs all_of or any_of")
    elif isinstance(guard, FraudFlagGuard):
        check_names((*loc, "flags"), guard.flags, vocab.flags, "flag")
    elif isinstance(guard, FraudCounterGuard) and guard.unless_role is not None:
        check_names(loc, [guard.unless_role], list(doc.roles), "role")


def _check_condition(cond: Condition, loc: tuple[str | int, ...], doc: PolicyDocument,
                     reasons: list[str] | None, check_names: Any) -> None:
    vocab = doc.vocabulary
    if cond.reason is not None and reasons is not None:
        check_names((*loc, "reason"), cond.reason, reasons, "reason")
    if cond.condition is not None:
        check_names((*loc, "condition"), cond.condition, vocab.conditions, "condition")
    if cond.channel is not None:
        check_names((*loc, "channel"), cond.channel, vocab.channels, "channel")
    if cond.role is not None:
        check_names((*loc, "role"), cond.role, list(doc.roles), "role")
