"""The one decision: may this actor fire this event on this case now, and why (not)?

>>> from casework import Actor, load_policy
>>> from casework.transition import opened
>>> from datetime import datetime, UTC
>>> policy, now = load_policy(), datetime(2026, 11, 22, 2, tzinfo=UTC)
>>> case = opened("RF-20261122-000001", "refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00",
...                                                "customer": "c-1"}, policy, now)
>>> decide(policy, case, "approve", Actor("alice", "agent"), {}, now).allowed
True

Pure: the policy version, the case, the event's (already checked) data, the actor and the instant
are all given. The engine, the sweep, bulk import, simulate and the policy-test runner decide with
this function and no other, so they cannot drift apart.

Besides the machine, the role and the policy's guards, the decision says whether the event's data
may be written at all: every fact in it must be one the actor's role writes (``fact_not_permitted``),
and none may change a fact that the rules judged on the case's way here or that this event's guards
judge (``fact_judged``): the guards judge the values the case will hold, never values the event
brings along to pass them. Changing a judged fact is an ``amend``: it lists each change (old and new
value) and is judged again by every guard that may have judged the facts it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.domain import SYSTEM_ONLY, THREAD, Actor, Case, Decision, Verdict
from casework.machines import AMEND, REJECT, REOPEN, spec
from casework.policies.context import FACT_JUDGED, FACT_NOT_PERMITTED, GuardContext
from casework.values import format_duration

if TYPE_CHECKING:
    from casework.policies import PolicySet


def decide(policy: PolicySet, case: Case, event: str, actor: Actor, data: Mapping[str, Any],
           now: datetime) -> Decision:
    """Every verdict on ``event``: the machine's (is it available?), the role's, the data's, each guard's,
    the owner's.

    Every guard is evaluated (a refusal lists every missing piece at once); an event not available
    from the case's state is refused with ``not_available`` alone.
    """
    ks = spec(case.kind)
    target = ks.target(case.state, event)
    if target is None:
        possible = ks.available(case.state)  # (never none: a closed case may still be reopened or rated)
        verdict = Verdict("machine", False, "not_available",
                          f"{event} is not available from state {case.state}; possible: {', '.join(possible)}",
                          {"state": case.state, "available": list(possible)})
        return Decision(case.kind, event, case.state, None, (verdict,), policy.ref)
    written: list[Verdict] = []
    if data:
        written, data = _writes(policy, case, event, actor, data)
    ctx = GuardContext(kind=case.kind, event=event, state=case.state, facts=F.merge(case.facts, data), data=data,
                       actor=actor, now=now, tz=policy.tz, roles=policy.roles,
                       responded=case.responded_at is not None, types=policy.fact_types,
                       opened=case.opened_at)
    verdicts = policy.evaluate(ctx)
    if event == AMEND:
        verdicts = (*verdicts, *_amendment(policy, case, ctx))
    if event == REJECT and policy.document.rejections:
        verdicts = (*verdicts, _rejection_named(policy, data))
    if event == REOPEN and case.closed and case.state_since is not None:
        verdicts = (*verdicts, _reopen_window(policy, case, now))
    if written:  # after who may act (the operators and roles verdicts), before the guards
        at = 2 if verdicts[0].guard == "operators" else 1
        verdicts = (*verdicts[:at], *written, *verdicts[at:])
    not_theirs = owner_verdict(case, actor)
    if not_theirs is not None:
        verdicts = (not_theirs, *verdicts)
    return Decision(case.kind, event, case.state, target, verdicts, policy.ref)


def owner_verdict(case: Case, actor: Actor) -> Verdict | None:
    """A customer acts only on their own cases: the refusal when ``actor`` is a customer whose case it is not
    (None otherwise). Events (:func:`decide`) and the desk's own entries (:mod:`casework.desk`) alike."""
    owner = case.customer
    if actor.role != "customer" or owner == actor.id:
        return None
    whose = f"this case is customer {owner}'s" if owner else "this case has no customer"
    return Verdict("owner", False, "role_not_permitted",
                   f"customer {actor.id} may act only on their own cases; {whose}",
                   {"actor": actor.id, "customer": owner})


def opening_roles(policy: PolicySet, kind: str, actor: Actor) -> tuple[Verdict, ...]:
    """Who opens: whether the ``operators`` section granted the actor its role (a refusal only) and whether the
    role may open a ``kind`` case (``open_roles``). Depends on the kind and the actor only (a bulk import asks
    once per kind)."""
    kp = policy.kind(kind)
    role_ok = any(policy.roles.acts_as(actor.role, r) for r in kp.open_roles)
    verdict = Verdict("open_roles", role_ok, None if role_ok else "role_not_permitted",
                      f"role {actor.role} {'may' if role_ok else 'may not'} open a {kind}"
                      + ("" if role_ok else f"; allowed: {', '.join(kp.open_roles)}"),
                      {"role": actor.role, "allowed": list(kp.open_roles)})
    not_granted = policy.grant_verdict(actor)
    return (verdict,) if not_granted is None else (not_granted, verdict)


def decide_opening(policy: PolicySet, kind: str, facts: Mapping[str, Any], actor: Actor,
                   who: tuple[Verdict, ...] | None = None) -> Decision:
    """May ``actor`` open a ``kind`` case with ``facts`` (as :func:`casework.intake.opening_facts` made them)?

    Every verdict: who opens (``who``, else :func:`opening_roles`), the owner (a customer opens only in their
    own name) and the facts given (each one the role may give when opening: ``PolicySet.opening_writable``;
    never what the system keeps). An opening has no guards of its own: the rules judge a case's facts when
    its events are decided. Allowed: ``to_state`` is the kind's initial state.
    """
    verdicts = list(opening_roles(policy, kind, actor) if who is None else who)
    owner = facts.get("customer")
    if actor.role == "customer" and owner != actor.id:
        verdicts.insert(0, Verdict("owner", False, "role_not_permitted",
                                   f"customer {actor.id} may open cases only in their own name, not customer "
                                   f"{owner}'s", {"actor": actor.id, "customer": owner}))
    writable = policy.opening_writable(actor.role, kind)
    forbidden = sorted(k for k in facts if _may_not_write(k, actor, writable))
    if forbidden:
        verdicts.append(_not_permitted(actor, forbidden, writable, f" when opening a {kind}"))
    allowed = all(v.passed for v in verdicts)
    return Decision(kind, "open", "", spec(kind).initial if allowed else None, tuple(verdicts), policy.ref)


def _writes(policy: PolicySet, case: Case, event: str, actor: Actor, data: Mapping[str, Any]
            ) -> tuple[list[Verdict], Mapping[str, Any]]:
    """The refusals of facts in ``data`` that may not be written (none: ``[]``), and the data the guards judge:
    without those facts, so that every guard judges what the case holds."""
    writable = policy.writable(actor.role)
    forbidden = sorted(k for k in data if _may_not_write(k, actor, writable))
    verdicts: list[Verdict] = []
    if forbidden:
        verdicts.append(_not_permitted(actor, forbidden, writable))
    changed: list[str] = []
    if event != AMEND:  # (an amend is the one event whose data may change them)
        judged = policy.judged(case.kind, case.state, event)
        changed = sorted(k for k in data if k in judged and k in case.facts and k not in forbidden
                         and F.merge({k: case.facts[k]}, {k: data[k]})[k] != case.facts[k])
        if changed:
            was = {k: case.facts[k] for k in changed}
            verdicts.append(Verdict("judged_facts", False, FACT_JUDGED,
                                    f"{_listed(changed, was)} {'was' if len(changed) == 1 else 'were'} judged by the "
                                    f"rules; only an amend (judged again) may change "
                                    f"{'it' if len(changed) == 1 else 'them'}",
                                    {"facts": changed, "held": was, "given": {k: data[k] for k in changed}}))
    if not forbidden and not changed:
        return verdicts, data
    dropped = {*forbidden, *changed}
    return verdicts, {k: v for k, v in data.items() if k not in dropped}


def _not_permitted(actor: Actor, forbidden: list[str], writable: frozenset[str] | None, when: str = "") -> Verdict:
    may = "any fact" if writable is None else ", ".join(sorted(writable)) or "none"
    return Verdict("facts", False, FACT_NOT_PERMITTED,
                   f"role {actor.role} may not write {', '.join(forbidden)}{when}; it may write: {may}",
                   {"role": actor.role, "facts": forbidden, "writable": None if writable is None else sorted(writable)})


def _may_not_write(key: str, actor: Actor, writable: frozenset[str] | None) -> bool:
    """What was paid out is written by the paying step only; the values the system keeps by the engine's
    own actor only; any other fact by the roles the policy lets write it."""
    if key == F.PAID_OUT:
        return True
    if key in SYSTEM_ONLY:
        return not actor.is_engine
    return writable is not None and key not in writable


def _amendment(policy: PolicySet, case: Case, ctx: GuardContext) -> list[Verdict]:
    """An amend's own verdicts: what it changes (old and new values), then every guard that may have judged a
    changed fact, judged again on the amended facts."""
    changes = {k: {"from": case.facts.get(k), "to": ctx.facts[k]} for k in ctx.data
               if case.facts.get(k) != ctx.facts[k] and k not in SYSTEM_ONLY and k not in THREAD}
    if not changes:
        return [Verdict("amendment", False, "field_missing", "an amend needs a fact whose value it changes",
                        {"missing": ["a changed fact"]})]
    described = "; ".join(f"{k} {c['from'] if c['from'] is not None else '(none)'} -> {c['to']}"
                          for k, c in sorted(changes.items()) if k != "evidence")
    verdicts = [Verdict("amendment", True, None, f"amends {described or 'evidence'}",
                        {"changes": changes})]
    verdicts.extend(policy.rejudge(ctx, frozenset(changes)))
    return verdicts


def _rejection_named(policy: PolicySet, data: Mapping[str, Any]) -> Verdict:
    """A reject names the reason it rejects for, one of the policy's ``rejections`` (recorded as a code)."""
    reasons = list(policy.document.rejections)
    given = data.get("rejection")
    if given is None:
        return Verdict("rejection", False, "field_missing",
                       f"a reject names its rejection reason (rejection), one of: {', '.join(reasons)}",
                       {"missing": ["rejection"], "accepted": reasons})
    return Verdict("rejection", True, None, f"rejected for {given}", {"rejection": given})


def _reopen_window(policy: PolicySet, case: Case, now: datetime) -> Verdict:
    """A closed case is reopened only within the kind's ``reopen_within`` of its closing."""
    assert case.state_since is not None
    until = policy.reopen_until(case.kind, case.state_since)
    if until is None:
        return Verdict("reopen_within", True, None, "no limit on reopening after closing", {})
    elapsed, window = now - case.state_since, format_duration(until - case.state_since)
    local = until.astimezone(policy.tz).strftime("%Y-%m-%d %H:%M")
    within = now <= until
    return Verdict("reopen_within", within, None if within else "window_expired",
                   f"closed {elapsed.days} days ago; it may be reopened until {local} ({window} after closing)",
                   {"since": "closed", "elapsed_days": elapsed.days, "window": window, "until": until.isoformat()})


def _listed(keys: list[str], values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {values[k]}" for k in keys)
