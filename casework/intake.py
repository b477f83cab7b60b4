"""What comes in, checked against a policy version: actors, opening facts and event data.

Pure functions (no database, no clock): the engine, bulk import, the sweep and the policy-test
runner all take their input through here, so a value is accepted or refused the same way whatever
the door it came through. Malformed input raises :class:`InvalidInput`: it is not an attempt, and is
not recorded. Whether the actor may open a case, act, or write the facts it gives is the rules'
question, not intake's: :func:`casework.decide.decide` and :func:`casework.decide.decide_opening`
answer it, so such a refusal is recorded like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.domain import Actor
from casework.errors import InvalidInput
from casework.machines import spec
from casework.values import did_you_mean, one_of

if TYPE_CHECKING:
    from casework.policies import PolicySet


def check_actor(actor: Actor, policy: PolicySet) -> None:
    """An actor has an id of sensible length and one of the policy's roles."""
    if not isinstance(actor, Actor) or not actor.id:
        raise InvalidInput(f"actor {actor!r} needs an id and a role", field="actor")
    F.check_text(actor.id, "actor", F.MAX_ID)
    one_of(actor.role, policy.document.roles, "role", field="role")


def check_vocabulary(policy: PolicySet, kind: str, values: Mapping[str, Any]) -> None:
    """Values the policy names (reason, condition, channel, evidence types, flags) are ones it knows."""
    vocab = policy.document.vocabulary
    reasons = policy.kind(kind).reasons if kind in policy.document.kinds else None
    if "reason" in values and reasons is not None:
        one_of(values["reason"], reasons, f"{kind} reason", field="reason")
    if "condition" in values:
        one_of(values["condition"], vocab.conditions, "item condition", field="condition")
    if "channel" in values:
        one_of(values["channel"], vocab.channels, "channel", field="channel")
    if "rejection" in values and policy.document.rejections:
        one_of(values["rejection"], policy.document.rejections, "rejection reason", field="rejection")
    for item in values.get("evidence", []):
        one_of(item["type"], vocab.evidence, "evidence type", field="evidence")
    for flag in values.get("flags", []):
        one_of(flag, vocab.flags, "customer flag", field="flags")
    for name, allowed in policy.declared_values.items():  # the policy's own enum and list facts
        if name in values:
            for value in values[name] if isinstance(values[name], list) else [values[name]]:
                one_of(value, allowed, name, field=name)


def declared_facts(policy: PolicySet, values: dict[str, Any]) -> dict[str, Any]:
    """``values``, once every fact in them is one the policy declares (its ``facts:`` section), else
    InvalidInput naming the undeclared ones with did-you-mean.

    A policy that declares the catch-all ``"*"`` keeps undeclared facts; one without a ``facts:`` section
    leaves facts open-ended. What the system keeps is not judged here (refused where it is given).
    """
    declared = policy.document.facts
    if declared is None or F.CATCH_ALL in declared:
        return values
    unknown = sorted(k for k in values if k not in declared and k not in F.ENGINE_KEPT)
    if unknown:
        named = ", ".join(f"{k!r}{did_you_mean(k, declared)}" for k in unknown)
        many = len(unknown) > 1
        raise InvalidInput(f"fact{'s' if many else ''} {named} {'are' if many else 'is'} not declared by the policy "
                           f"{policy.label!r}; declared facts: {', '.join(sorted(declared))}",
                           field=unknown[0], value=unknown[0])
    return values


def event_data(policy: PolicySet, kind: str, event: str, data: Mapping[str, Any] | None, actor: Actor
               ) -> dict[str, Any]:
    """An event's data, normalised: the event exists for the kind, the actor has a role of the policy, each
    value is well-formed and in the policy's vocabulary (a ``rejection`` one of the policy's rejection reasons)."""
    ks = spec(kind)
    if event not in ks.events:
        raise InvalidInput(f"unknown {kind} event {event!r}{did_you_mean(event, ks.events)}; "
                           f"{kind} events: {', '.join(ks.events)}", field="event", value=event)
    check_actor(actor, policy)
    clean = declared_facts(policy, F.normalize({} if data is None else data, policy.tz, policy.declared_types,
                                               field="data"))
    check_vocabulary(policy, kind, clean)
    return clean


def check_opening(policy: PolicySet, kind: str, actor: Actor) -> None:
    """An opening's kind is one the engine knows and the policy has rules for; the actor is well-formed (whether
    it may open is the rules' question: :func:`casework.decide.decide_opening`)."""
    spec(kind)
    if kind not in policy.document.kinds:
        raise InvalidInput(f"the policy {policy.label!r} has no rules for {kind} cases", field="kind")
    check_actor(actor, policy)


def opening_facts(policy: PolicySet, kind: str, facts: Mapping[str, Any], actor: Actor,
                  channel: str | None = None) -> dict[str, Any]:
    """The facts a case opens with: normalised, owned, in the policy's vocabulary, with every required one.

    Every case has its customer: a customer opens in their own name (given or not); anyone else names
    the customer the case is for. Whether the actor may open the case with these facts is the rules'
    question (:func:`casework.decide.decide_opening`), so that a refusal is recorded.
    """
    clean = declared_facts(policy, F.normalize(facts, policy.tz, policy.declared_types))
    if channel is not None:
        clean["channel"] = channel
    if actor.role == "customer":
        clean.setdefault("customer", actor.id)
    check_vocabulary(policy, kind, clean)
    missing = [f for f in (*policy.kind(kind).required, "customer") if f not in clean]
    if missing:
        owner = " (every case is for a customer: name them, or open it as them)" if "customer" in missing else ""
        raise InvalidInput(f"a {kind} case needs {', '.join(missing)}; missing: {', '.join(missing)}{owner}",
                           field=missing[0])
    return clean
