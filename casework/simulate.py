"""What-if for policy authors: which open cases would a new policy decide differently; re-pinning them.

:func:`simulate` reads every open case (nothing is written) and decides each event possible from its
state twice, under the case's pinned policy and under the new one, at the engine's clock, and reports
every decision that flips (allowed ↔ refused), grouped by the rules whose verdict changed.

Who acts. A decision depends on the actor, so each event is decided for one representative actor:
the *least-privileged* role the pinned policy lets fire that event (fewest inherited roles, then the
smallest approval authority, then the order of ``roles:`` in the policy), so that a role check does
not flip merely because a more powerful role was picked; a customer acts on their own case, and
another role is played by an operator both policies grant it (``operators``), when there is one. If no
role may fire the event under the pinned policy, the least-privileged role of the new policy acts.

Speed. Cases are streamed in batches, and nothing is evaluated that provably cannot change (see
``_Plan``): an event whose rules are equal in both policies (same entry, and the same time zone,
roles and other sections a decision could read) is skipped, and when only some of an event's guards
changed, those few are judged first and the full decisions are made only for the cases where they
disagree. A policy that changes one window costs about two guard evaluations per open case that can
reach that event.

>>> from casework import Engine, FixedClock
>>> engine = Engine("sqlite:///:memory:", clock=FixedClock("2026-11-22T10:00:00+08:00"))
>>> engine.simulate(engine.policy).flips
()
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from casework.decide import decide
from casework.domain import Actor, Case, Decision, PolicyRef
from casework.machines import KINDS, check_filters
from casework.policies.context import GuardContext
from casework.policybook import PolicyBook
from casework.store import Store

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policies.guard_base import GuardBase

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 500  # cases between two progress calls


@dataclass(frozen=True)
class Flip:
    """One decision that the new policy makes differently: ``before`` (pinned) and ``after`` (new)."""

    number: str
    kind: str
    state: str
    event: str
    actor: Actor
    before: Decision
    after: Decision
    rules: tuple[str, ...]  # the guards whose verdict changed (their ids, or "roles" for the role check)

    @property
    def direction(self) -> str:
        """``allowed → refused``, ``refused → allowed``, or ``refused → refused`` (other reasons)."""
        def word(d: Decision) -> str:
            return "allowed" if d.allowed else "refused"
        return f"{word(self.before)} → {word(self.after)}"

    def to_json(self) -> dict[str, Any]:
        def side(d: Decision) -> dict[str, Any]:
            return {"allowed": d.allowed, "codes": sorted(set(d.codes)),
                    "reasons": [r.reason_json() for r in d.reasons],
                    "policy": d.policy.to_json() if d.policy else None}
        return {"number": self.number, "kind": self.kind, "state": self.state, "event": self.event,
                "actor": {"id": self.actor.id, "role": self.actor.role}, "rules": list(self.rules),
                "before": side(self.before), "after": side(self.after)}


@dataclass(frozen=True)
class RuleGroup:
    """The flips one rule causes: how many, which way, on which events, and where the rule is written."""

    rule: str
    count: int
    tightened: int  # allowed → refused
    loosened: int  # refused → allowed
    events: tuple[str, ...]  # "return.approve"
    source: str | None
    examples: tuple[str, ...]  # a few case numbers

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "flips": self.count, "allowed_to_refused": self.tightened,
                "refused_to_allowed": self.loosened, "events": list(self.events), "source": self.source,
                "examples": list(self.examples)}


@dataclass(frozen=True)
class SimulationReport:
    """What :func:`simulate` found. ``flips`` change allowed ↔ refused; ``reason_changes`` stay refused
    but for other reasons."""

    policy: PolicyRef
    now: datetime
    kind: str | None
    state: str | None
    cases_checked: int
    decisions_compared: int
    decisions_skipped: int  # provably unchanged, so not evaluated
    flips: tuple[Flip, ...]
    reason_changes: tuple[Flip, ...] = ()
    pinned: dict[str, int] = field(default_factory=dict)  # policy hash -> open cases pinned to it

    @property
    def numbers(self) -> list[str]:
        """The cases with at least one flip, in scan order."""
        return list(dict.fromkeys(f.number for f in self.flips))

    def groups(self, examples: int = 3) -> list[RuleGroup]:
        """The flips grouped by rule, most flips first (a flip caused by two rules counts in both)."""
        by_rule: dict[str, list[Flip]] = {}
        for f in self.flips:
            for rule in f.rules:
                by_rule.setdefault(rule, []).append(f)
        out = []
        for rule, flips in by_rule.items():
            tightened = sum(1 for f in flips if f.before.allowed)
            events = Counter(f"{f.kind}.{f.event}" for f in flips)
            out.append(RuleGroup(rule, len(flips), tightened, len(flips) - tightened, tuple(events),
                                 _source(rule, flips), tuple(dict.fromkeys(f.number for f in flips))[:examples]))
        return sorted(out, key=lambda g: (-g.count, g.rule))

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy.to_json(), "now": self.now.isoformat(), "kind": self.kind, "state": self.state,
                "cases_checked": self.cases_checked, "decisions_compared": self.decisions_compared,
                "decisions_skipped": self.decisions_skipped, "pinned": dict(self.pinned),
                "flip_count": len(self.flips), "cases_flipped": len(self.numbers),
                "by_rule": [g.to_json() for g in self.groups()], "flips": [f.to_json() for f in self.flips],
                "reason_changes": [f.to_json() for f in self.reason_changes]}


def _source(rule: str, flips: list[Flip]) -> str | None:
    for f in flips:
        for d in (f.after, f.before):
            for v in d.verdicts:
                if v.guard == rule and v.source:
                    return v.source
    return None


def simulate(store: Store, policies: PolicyBook, new_policy: PolicySet, now: datetime, *, kind: str | None = None,
             state: str | None = None, progress: Progress | None = None, batch: int = 2000) -> SimulationReport:
    """Decide every event possible next for every open case, at ``now``, under its pinned policy and ``new_policy``.

    ``kind``/``state`` narrow the cases; ``progress(done, total)`` is called every few hundred cases
    and at the end. Reads only: nothing is written.
    """
    check_filters(kind, state)
    at = now
    total = store.count_open(kind, state)
    plans: dict[str, _Plan] = {}
    pinned: Counter[str] = Counter()
    flips: list[Flip] = []
    changes: list[Flip] = []
    done = compared = skipped = 0
    for case in store.iter_open(kind, state, batch):
        plan = plans.get(case.policy.hash)
        if plan is None:
            plan = plans[case.policy.hash] = _Plan(policies.version(case.policy.hash), new_policy)
        pinned[case.policy.hash] += 1
        todo, unchanged = plan.events(case.kind, case.state)
        skipped += unchanged
        for step in todo:
            compared += 1
            actor = plan.actor(step.role, case)
            if step.differing is not None and not plan.may_differ(step, case, actor, at):
                continue
            before = decide(plan.old, case, step.event, actor, {}, at)
            after = decide(new_policy, case, step.event, actor, {}, at)
            if before.allowed != after.allowed:
                flips.append(Flip(case.number, case.kind, case.state, step.event, actor, before, after,
                                  _changed_rules(before, after)))
            elif not before.allowed and sorted(set(before.codes)) != sorted(set(after.codes)):
                changes.append(Flip(case.number, case.kind, case.state, step.event, actor, before, after,
                                    _changed_rules(before, after)))
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, max(total, done))
    if progress is not None and (done == 0 or done % PROGRESS_EVERY):
        progress(done, max(total, done))
    return SimulationReport(new_policy.ref, at, kind, state, done, compared, skipped, tuple(flips), tuple(changes),
                            dict(pinned))


@dataclass(frozen=True)
class _Step:
    """One event to compare, the role that acts, and (when only some guards differ) those guards."""

    event: str
    role: str
    differing: tuple[tuple[GuardBase, ...], tuple[GuardBase, ...]] | None = None


class _Plan:
    """For one pinned policy: per (kind, state), the events worth comparing, who acts, and what differs.

    The proofs hold when the two policies agree on everything outside ``kinds`` that could reach a
    decision (time zone, roles, and any other top-level section; only the label, the messages, the
    service desk's hours and the vocabulary, which checks input and never a decision, may differ):
    equal event entries decide alike, so the event is skipped; with equal roles, the guards both
    entries share give the same verdicts on both sides, so only the guards that differ can make the
    decisions differ, and they are evaluated first; the full decisions are made only when their
    failing codes differ. Otherwise every possible event is decided in full.
    """

    def __init__(self, old: PolicySet, new: PolicySet) -> None:
        self.old, self.new = old, new
        self.same_base = old.hash == new.hash or (_deciding(old) == _deciding(new) and old.roles == new.roles)
        self._cache: dict[tuple[str, str], tuple[tuple[_Step, ...], int]] = {}
        self._actors: dict[str, Actor] = {}

    def actor(self, role: str, case: Case) -> Actor:
        """Who acts in ``role``: the case's own customer, else someone the pinned policy grants the role."""
        if role == "customer":  # the owner (the owner check is not what is simulated)
            return Actor(case.customer or "simulated-customer", "customer")
        found = self._actors.get(role)
        if found is None:
            found = self._actors[role] = granted_actor(self.old, self.new, role)
        return found

    def events(self, kind: str, state: str) -> tuple[tuple[_Step, ...], int]:
        """The steps to compare from ``state``, and how many possible events provably decide alike."""
        key = (kind, state)
        found = self._cache.get(key)
        if found is None:
            steps: list[_Step] = []
            possible = KINDS[kind].available(state)
            for event in possible:
                old, new = self.old.event(kind, event), self.new.event(kind, event)
                if self.same_base and old == new:
                    continue
                role = least_privileged(self.old, kind, event) or least_privileged(self.new, kind, event)
                if role is None:  # no role may fire it under either policy: refused both ways
                    continue
                differing = None
                if self.same_base and old is not None and new is not None and old.roles == new.roles:
                    differing = _difference(old.guards, new.guards)
                steps.append(_Step(event, role, differing))
            found = self._cache[key] = (tuple(steps), len(possible) - len(steps))
        return found

    def may_differ(self, step: _Step, case: Case, actor: Actor, now: datetime) -> bool:
        """Whether the guards that differ fail with different codes on the two sides (a cheap pre-check:
        the decisions themselves are made by ``decide`` when it says they may differ)."""
        assert step.differing is not None
        ctx = GuardContext(kind=case.kind, event=step.event, state=case.state, facts=case.facts, data={},
                           actor=actor, now=now, tz=self.old.tz, roles=self.old.roles,
                           responded=case.responded_at is not None, types=self.old.fact_types,
                           opened=case.opened_at)
        old, new = step.differing
        return _failing(old, ctx) != _failing(new, ctx)


_NOT_DECIDING = frozenset({"schema_", "label", "kinds", "messages", "service", "vocabulary"})


def _deciding(policy: PolicySet) -> dict[str, Any]:
    """The top-level sections of a policy, other than ``kinds``, that a decision could depend on."""
    return {name: value for name, value in policy.document if name not in _NOT_DECIDING}


def _difference(old: Sequence[GuardBase], new: Sequence[GuardBase]
                ) -> tuple[tuple[GuardBase, ...], tuple[GuardBase, ...]]:
    """The guards only in ``old`` and only in ``new`` (equal guards pair off, as a multiset)."""
    rest = list(new)
    only_old = []
    for g in old:
        if g in rest:
            rest.remove(g)
        else:
            only_old.append(g)
    return tuple(only_old), tuple(rest)


def _failing(guards: Sequence[GuardBase], ctx: GuardContext) -> frozenset[str]:
    return frozenset(v.reason_code for v in (g.evaluate(ctx) for g in guards if g.applies(ctx)) if not v.passed)


def least_privileged(policy: PolicySet, kind: str, event: str) -> str | None:
    """The least-privileged role ``policy`` lets fire ``kind.event`` (None if no role may)."""
    ep = policy.event(kind, event)
    if ep is None:
        return None
    book = policy.roles
    permitted = [r for r in policy.document.roles if any(book.acts_as(r, a) for a in ep.roles)]
    order = list(policy.document.roles)

    def rank(role: str) -> tuple[int, int, Decimal, int]:
        authority, limit = book.limit(role)
        power = (0, Decimal(0)) if not authority else (2, Decimal(0)) if limit is None else (1, limit)
        return len(book.lineage(role)), power[0], power[1], order.index(role)

    return min(permitted, key=rank) if permitted else None


def granted_actor(old: PolicySet, new: PolicySet, role: str) -> Actor:
    """Someone both policies let act as ``role`` if there is one (see their ``operators`` sections),
    else someone the pinned policy ``old`` does, else someone ``new`` does."""
    if role == "system":
        return Actor.system()

    def granted(policy: PolicySet) -> list[str] | None:  # None: open mode, anyone may
        operators = policy.document.operators
        return None if operators is None else sorted(i for i, roles in operators.items() if role in roles)

    a, b = granted(old), granted(new)
    both = b if a is None else a if b is None else [i for i in a if i in b] or a or b
    return Actor(both[0] if both else f"simulated-{role}", role)


def _changed_rules(before: Decision, after: Decision) -> tuple[str, ...]:
    """Guards whose verdict differs (a guard that does not apply on one side counts as passed there)."""
    def verdicts(d: Decision) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for v in d.verdicts:
            out[v.guard] = out.get(v.guard, True) and v.passed
        return out
    b, a = verdicts(before), verdicts(after)
    return tuple(g for g in dict.fromkeys([*b, *a]) if b.get(g, True) != a.get(g, True))
