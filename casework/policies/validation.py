"""Cross-checks of a policy document whose shape is already valid.

The schema (``casework.policies.schema``, applied by the loader) says what each section looks like;
this module checks what the sections say about each other and about the engine: that the time zone
exists; that every role, kind, event, state, reason, category, condition, evidence type, flag,
channel and reason code named is one the policy or the engine defines; that windows, timers and the
first response run for longer than zero; that message templates are well-formed. It also warns
about rules that are valid but probably not meant: open mode (no operators section), events no
role may fire, kinds without a policy, timers that fire an event the system role may not.

Every problem is placed at the FILE:LINE:COL where it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from string import Formatter
from typing import Any

from casework import facts as F
from casework.errors import InvalidInput, PolicyProblem
from casework.machines import KINDS
from casework.policies.combinators import AllOfGuard, AnyOfGuard, NotGuard
from casework.policies.context import RoleBook
from casework.policies.expression_checks import (
    Found,
    check_declarations,
    check_expression,
    check_template,
    fact_samples,
    known_values,
)
from casework.policies.expression_guard import ExpressionGuard
from casework.policies.expressions import Expression
from casework.policies.guard_base import Condition, GuardBase
from casework.policies.guard_kinds import known_codes
from casework.policies.guards import (
    CategoryGuard,
    ConditionGuard,
    EvidenceGuard,
    FraudCounterGuard,
    FraudFlagGuard,
    WindowGuard,
)
from casework.policies.loader import SourceMap, did_you_mean_or
from casework.policies.periods import DatedWindow, Period
from casework.policies.schema import EventPolicy, KindPolicy, PolicyDocument
from casework.policies.table_checks import check_table
from casework.policies.tables import TableGuard
from casework.values import did_you_mean, parse_zone

Loc = tuple[str | int, ...]


class _Report:
    """The errors and warnings found so far, each placed where it is written."""

    def __init__(self, smap: SourceMap) -> None:
        self.smap = smap
        self.errors: list[PolicyProblem] = []
        self.warnings: list[PolicyProblem] = []
        self.types: dict[str, str] = {}  # the declared facts, for checking expressions
        self.samples: dict[str, tuple[Any, ...]] = {}

    def err(self, loc: Loc, message: str, key: bool = False) -> None:
        self.errors.append(PolicyProblem(self.smap.name, *self.smap.locate(loc, key=key), message))

    def warn(self, loc: Loc, message: str, key: bool = False) -> None:
        self.warnings.append(PolicyProblem(self.smap.name, *self.smap.locate(loc, key=key), message, "warning"))

    def found(self, problems: Iterable[Found], warning: bool = False) -> None:
        for f in problems:
            line, col = (self.smap.inside(f.loc, *f.inner) if f.inner is not None
                         else self.smap.locate(f.loc, key=f.key))
            if warning:
                self.warnings.append(PolicyProblem(self.smap.name, line, col, f.message, "warning"))
            else:
                self.errors.append(PolicyProblem(self.smap.name, line, col, f.message))

    def names(self, loc: Loc, values: Iterable[str], known: Iterable[str], what: str) -> None:
        """An error for each of ``values`` (the list at ``loc``) that is not one of ``known``."""
        options = list(known)
        for i, value in enumerate(values):
            if value not in options:
                hint = did_you_mean_or(value, options, "known", none="(none)")
                self.err((*loc, i), f"unknown {what} {value!r}{hint}")


def cross_check(doc: PolicyDocument, smap: SourceMap) -> tuple[list[PolicyProblem], list[PolicyProblem]]:
    """The errors and the warnings of ``doc`` (read from ``smap``); a policy with errors is refused."""
    report = _Report(smap)
    report.found(check_declarations(doc))
    report.types, report.samples = fact_samples(doc)
    try:
        parse_zone(doc.timezone)
    except InvalidInput as exc:
        report.err(("timezone",), str(exc))

    roles = list(doc.roles)
    report.names(("desk", "priority_roles"), doc.desk.priority_roles, roles, "role")
    for name, view in doc.desk.views.items():
        if view.kind is not None and view.kind not in KINDS:
            report.names(("desk", "views", name, "kind"), [view.kind], KINDS, "kind")
        states = {s for k in ([KINDS[view.kind]] if view.kind in KINDS else KINDS.values()) for s in k.states}
        if view.state is not None and view.state not in states:
            report.names(("desk", "views", name, "state"), [view.state], sorted(states), "state")
    for name, role in doc.roles.items():
        report.names(("roles", name, "inherits"), role.inherits, roles, "role")
        for field, facts in (("writes", role.writes), ("opens", role.opens)):
            if isinstance(facts, list):
                _check_writes(report, doc, name, facts, field)
    if doc.operators is None:
        report.warn(("roles",), "no operators section: open mode, any actor may claim any role (fine for a demo; "
                    "grant roles per actor in production)", key=True)
    else:
        for actor_id, granted in doc.operators.items():
            report.names(("operators", actor_id), granted, roles, "role")

    if doc.service.first_response.span <= timedelta(0):
        report.err(("service", "first_response"), "first_response must be longer than zero")

    for kind, kp in doc.kinds.items():
        if kind not in KINDS:
            report.err(("kinds", kind), f"unknown case kind {kind!r}{did_you_mean_or(kind, KINDS, 'kinds')}", key=True)
            continue
        _check_kind(report, doc, kind, kp)
    for kind in KINDS:
        if kind not in doc.kinds:
            report.warn(("kinds",), f"kind {kind!r} has no policy, so no case of that kind can be opened")
    _check_messages(report, doc)
    return report.errors, report.warnings


def _check_kind(report: _Report, doc: PolicyDocument, kind: str, kp: KindPolicy) -> None:
    """The policy of one kind the engine knows: its roles, events, guards, channels and timers."""
    spec = KINDS[kind]
    roles = list(doc.roles)
    report.names(("kinds", kind, "open_roles"), kp.open_roles, roles, "role")
    report.names(("kinds", kind, "responses"), kp.responses, spec.events, f"{kind} event")
    for event, ep in kp.events.items():
        loc: Loc = ("kinds", kind, "events", event)
        if event not in spec.events:
            hint = did_you_mean_or(event, spec.events, f"{kind} events")
            report.err(loc, f"unknown {kind} event {event!r}{hint}", key=True)
            continue
        report.names((*loc, "roles"), ep.roles, roles, "role")
        if not ep.roles:
            report.warn((*loc, "roles"), f"no role may fire {kind}.{event}")
        for i, guard in enumerate(ep.guards):
            _check_guard(report, guard, (*loc, "guards", i), doc, kind)
    for ch in kp.first_response_by_channel:
        report.names(("kinds", kind, "first_response_by_channel"), [ch], doc.vocabulary.channels, "channel")
    for i, timer in enumerate(kp.timers):
        tloc: Loc = ("kinds", kind, "timers", i)
        if timer.state not in spec.states:
            report.names((*tloc, "state"), [timer.state], spec.states, f"{kind} state")
        elif timer.event not in spec.events:
            report.names((*tloc, "event"), [timer.event], spec.events, f"{kind} event")
        elif spec.target(timer.state, timer.event) is None:
            report.err((*tloc, "event"), f"{timer.event} is not available from {kind} state {timer.state}; "
                       f"possible: {', '.join(spec.available(timer.state)) or 'none'}")
        else:
            timer_ep = kp.events.get(timer.event)
            if timer_ep is None or not set(timer_ep.roles) & _lineage(doc, "system"):
                report.warn((*tloc, "event"), f"the timer fires {kind}.{timer.event} as system, but the policy "
                            "does not let the system role fire it")
            elif timer.note and (writes := doc.writes("system", _lineage(doc, "system"))) is not None \
                    and "note" not in writes:
                report.warn((*tloc, "note"), "the timer's note is written by the system role, which may not "
                            "write note: the timer would be refused (add note to the system role's writes)")
        if timer.after.span <= timedelta(0):
            report.err((*tloc, "after"), "a timer must run for longer than zero")
    _check_desk_deadlines(report, doc, kind, kp)
    for level, target in kp.resolution_by_priority.items():
        if not 0 <= level <= 9:
            report.err(("kinds", kind, "resolution_by_priority"), f"priority {level} is not accepted; a priority is "
                       "a whole number from 0 to 9")
        elif kp.resolution is not None and target.service != kp.resolution.service:
            report.err(("kinds", kind, "resolution_by_priority", level), "a target per priority counts time as the "
                       "kind's resolution does (both wall clock, or both service time)")
    report.names(("kinds", kind, "waiting_states"), kp.waiting_states, spec.states, f"{kind} state")
    for state in kp.waiting_states:
        if state in spec.settled:
            report.err(("kinds", kind, "waiting_states"), f"{kind} state {state} is settled; the resolution clock "
                       "stops there anyway, it cannot wait on the customer")
    for event in spec.events:
        if event not in kp.events:
            report.warn(("kinds", kind, "events"), f"{kind}.{event} has no entry, so no role may fire it")


def _check_desk_deadlines(report: _Report, doc: PolicyDocument, kind: str, kp: KindPolicy) -> None:
    """Each desk deadline names a state the case can leave, an event available there, a breach name of its own."""
    spec = KINDS[kind]
    states: set[str] = set()
    for i, d in enumerate(kp.deadlines):
        dloc: Loc = ("kinds", kind, "deadlines", i)
        if d.state in states:
            report.err((*dloc, "state"), f"{kind} state {d.state} already has a desk deadline; one per state")
        states.add(d.state)
        if any(d.name == other.name for k, o in doc.kinds.items() for other in o.deadlines
               if other is not d and (k, o.deadlines.index(other)) < (kind, i)):
            report.err((*dloc, "name"), f"another desk deadline is named {d.name}; a breach names one deadline")
        if d.name in ("first_response", "resolution"):
            report.err((*dloc, "name"), f"{d.name} is the service's own deadline; name this one after what the "
                       "desk must do, e.g. refund_after_receipt")
        if d.state not in spec.states:
            report.names((*dloc, "state"), [d.state], spec.states, f"{kind} state")
            continue
        if d.state in spec.final:
            report.err((*dloc, "state"), f"{kind} state {d.state} is final: a case never leaves it")
        if d.event is not None and d.event not in spec.events:
            report.names((*dloc, "event"), [d.event], spec.events, f"{kind} event")
        elif d.event is not None and spec.target(d.state, d.event) is None:
            report.err((*dloc, "event"), f"{d.event} is not available from {kind} state {d.state}; "
                       f"possible: {', '.join(spec.available(d.state)) or 'none'}")
        elif d.event is not None and not set((kp.events.get(d.event) or EventPolicy(roles=[])).roles) \
                & _lineage(doc, "system"):
            report.warn((*dloc, "event"), f"the deadline fires {kind}.{d.event} as system, but the policy does "
                        "not let the system role fire it")
        if d.within.span <= timedelta(0):
            report.err((*dloc, "within"), "a desk deadline must be longer than zero")


def _check_writes(report: _Report, doc: PolicyDocument, role: str, writes: list[str], field: str = "writes") -> None:
    """A role's ``writes`` (or ``opens``): fact names, none of them kept by the engine; an unknown name close to
    a known fact is probably a typo (facts are open-ended, so an unknown name is otherwise fine)."""
    judged = {f for kp in doc.kinds.values() for ep in kp.events.values() for g in ep.guards for f in g.judges()}
    known = sorted(F.KNOWN_FACTS | judged | set(doc.declared()))
    for i, fact in enumerate(writes):
        loc: Loc = ("roles", role, field, i)
        if not fact or not fact.replace("_", "").isalnum():
            report.err(loc, f"{fact!r} is not a fact name; use letters, digits and underscores")
        elif fact in F.ENGINE_KEPT:
            report.err(loc, f"{fact!r} is kept by the engine (written by its own steps); no role may write it")
        elif fact not in known and (hint := did_you_mean(fact, known)):
            report.warn(loc, f"{fact!r} is not a fact the engine or a rule of this policy knows{hint}")


def _check_messages(report: _Report, doc: PolicyDocument) -> None:
    """Message codes must be reason codes (the engine's, or declared under ``codes:``); a declared code has a
    name of its own; templates must be well-formed, with named placeholders."""
    terms = doc.vocabulary.terms()
    for lang, labels in doc.vocabulary.labels.items():
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", lang):
            report.err(("vocabulary", "labels", lang), f"{lang!r} is not a language tag; write it like zh-CN", key=True)
        for term in labels:
            if term not in terms:
                report.err(("vocabulary", "labels", lang, term), f"unknown vocabulary value {term!r}"
                           f"{did_you_mean_or(term, terms, 'known')}; labels name the values the vocabulary lists",
                           key=True)
    builtin = known_codes()
    for code in doc.codes:
        if code in builtin:
            report.err(("codes", code), f"{code!r} is a reason code of the engine; give its texts under messages:",
                       key=True)
        elif not re.fullmatch(r"[a-z][a-z0-9_]*", code):
            report.err(("codes", code), f"{code!r} is not a reason code name; use lower-case letters, digits and "
                       "underscores, like final_sale", key=True)
    codes = doc.reason_codes()
    sections = [("messages", code, texts) for code, texts in doc.messages.items()]
    sections += [("codes", code, texts) for code, texts in doc.codes.items()]
    for section, code, texts in sections:
        if code not in codes:
            report.err((section, code), f"unknown reason code {code!r}{did_you_mean_or(code, codes, 'codes')}; "
                       "declare a code of the policy's own under codes:", key=True)
            continue
        for audience in ("operator", "customer"):
            by_lang: dict[str, str] = getattr(texts, audience)
            if by_lang and "en" not in by_lang:
                report.warn((section, code, audience), f"{code}: no 'en' {audience} message; other languages "
                            "fall back to it, and then to the engine's own message")
            for lang, text in by_lang.items():
                try:
                    fields = [f for _, f, _, _ in Formatter().parse(text) if f is not None]
                except ValueError as exc:
                    report.err((section, code, audience, lang),
                               f"{code} {audience} {lang}: malformed template ({exc}); "
                               "write a literal brace as {{ or }}")
                    continue
                if any(f == "" or f[0].isdigit() for f in fields):
                    report.err((section, code, audience, lang), f"{code} {audience} {lang}: use named "
                               "placeholders, like {window}, not {} or {0}")


def _lineage(doc: PolicyDocument, role: str) -> set[str]:
    return RoleBook({n: tuple(r.inherits) for n, r in doc.roles.items()}, {}).lineage(role)


def _check_guard(report: _Report, guard: GuardBase, loc: Loc, doc: PolicyDocument, kind: str) -> None:
    """One guard: its ``when``, and the names and durations its type carries."""
    vocab = doc.vocabulary
    reasons = doc.kinds[kind].reasons
    _check_period(report, guard, loc)
    if isinstance(guard.when, Expression):
        report.found(check_expression(guard.when, (*loc, "when"), report.types, report.samples, "a when: condition"))
    elif guard.when is not None:
        _check_condition(report, guard.when, (*loc, "when"), doc, reasons)
    if isinstance(guard, ExpressionGuard):
        report.found(check_expression(guard.expr, (*loc, "expr"), report.types, report.samples, "a guard"))
        _check_code(report, doc, guard.code, loc)
        if guard.message is not None:
            report.found(check_template(guard.message, (*loc, "message")))
        _check_placeholders(report, doc, guard, loc)
    elif isinstance(guard, AllOfGuard | AnyOfGuard | NotGuard):
        if guard.code:
            _check_code(report, doc, guard.code, loc)
        if guard.message is not None:
            report.found(check_template(guard.message, (*loc, "message")))
        parts = [((*loc, "rule"), guard.rule)] if isinstance(guard, NotGuard) else [
            ((*loc, "guards", i), g) for i, g in enumerate(guard.guards)]
        for where, part in parts:
            _check_guard(report, part, where, doc, kind)
    elif isinstance(guard, TableGuard):
        errors, warnings = check_table(guard, loc, report.types, known_values(doc, kind))
        report.found(errors)
        report.found(warnings, warning=True)
        for n, row in enumerate(guard.rows):
            if row.then is not None:
                _check_guard(report, row.then, (*loc, "rows", n), doc, kind)
    elif isinstance(guard, WindowGuard):
        if guard.within <= timedelta(0):
            report.err((*loc, "within"), "a window must be longer than zero (a window of 0 refuses everything)")
        for r, d in guard.by_reason.items():
            if reasons is not None and r not in reasons:
                report.names((*loc, "by_reason"), [r], reasons, "reason")
            _check_override(report, d, (*loc, "by_reason", r))
        for c, d in guard.by_category.items():
            _check_override(report, d, (*loc, "by_category", c))
    elif isinstance(guard, CategoryGuard):
        report.names((*loc, "categories"), guard.categories, vocab.categories, "category")
    elif isinstance(guard, ConditionGuard):
        report.names((*loc, "allowed"), guard.allowed, vocab.conditions, "condition")
    elif isinstance(guard, EvidenceGuard):
        report.names((*loc, "all_of"), guard.all_of, vocab.evidence, "evidence type")
        report.names((*loc, "any_of"), guard.any_of, vocab.evidence, "evidence type")
        if not guard.all_of and not guard.any_of:
            report.err(loc, "an evidence guard needs all_of or any_of")
    elif isinstance(guard, FraudFlagGuard):
        report.names((*loc, "flags"), guard.flags, vocab.flags, "flag")
    elif isinstance(guard, FraudCounterGuard) and guard.unless_role is not None:
        report.names(loc, [guard.unless_role], list(doc.roles), "role")


def _check_code(report: _Report, doc: PolicyDocument, code: str, loc: Loc) -> None:
    """A guard's ``code:``: a reason code of the engine's or one the policy declares."""
    codes = doc.reason_codes()
    if code not in codes:
        hint = did_you_mean(code, codes) or "; declare a code of the policy's own under codes:"
        report.err((*loc, "code"), f"unknown reason code {code!r}{hint}")


# Placeholders every refusal's messages can use, whatever its details (see casework.messages.placeholders).
_ALWAYS = frozenset({"code", "guard", "message", "event", "number"})


def _check_placeholders(report: _Report, doc: PolicyDocument, guard: ExpressionGuard, loc: Loc) -> None:
    """A warning when the messages of an expr guard's code use a placeholder its refusals will not fill (the
    evidence_missing messages say {missing}: give it with the guard's details)."""
    texts = doc.texts(guard.code)
    if texts is None:
        return
    used: set[str] = set()
    for by_lang in (texts.operator, texts.customer):
        for text in by_lang.values():
            try:
                used |= {f for _, f, _, _ in Formatter().parse(text) if f}
            except ValueError:
                continue  # a malformed template is reported where it is written
    unfilled = sorted(used - _ALWAYS - guard.gives())
    if unfilled:
        given = ", ".join(f"{p}: ..." for p in unfilled)
        report.warn(loc, f"{guard.id or 'this guard'}: the {guard.code} messages use {{{'}, {'.join(unfilled)}}}, "
                    f"which its refusals do not give; add details: {{{given}}}")


def _check_override(report: _Report, window: timedelta | DatedWindow, loc: Loc) -> None:
    """A window override: longer than zero; for a period, one that ends after it begins."""
    if isinstance(window, DatedWindow):
        _check_period(report, window, loc)
        window = window.within
    if window <= timedelta(0):
        report.err(loc, "a window must be longer than zero")


def _check_period(report: _Report, period: Period, loc: Loc) -> None:
    if period.from_ is not None and period.until is not None and period.until < period.from_:
        report.err((*loc, "until"), f"until {period.until} is before from {period.from_}: the rule is never in force")


def _check_condition(report: _Report, cond: Condition, loc: Loc, doc: PolicyDocument,
                     reasons: list[str] | None) -> None:
    """The names in a guard's ``when``: reasons, conditions, channels and roles."""
    vocab = doc.vocabulary
    for name, value, known in (("reason", cond.reason, reasons), ("condition", cond.condition, vocab.conditions),
                               ("channel", cond.channel, vocab.channels), ("role", cond.role, list(doc.roles))):
        if value is not None and known is not None:
            report.names((*loc, name), value, known, name)
