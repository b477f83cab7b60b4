"""What comes in, checked against a policy version: actors, opening facts and event data.

Pure functions (no database, no clock): the engine, bulk import, the sweep and the policy-test
runner all take their input through here, so a value is accepted or refused the same way whatever
the door it came through. Malformed input raises :class:`InvalidInput`; an actor the policy does not
let open a case (or a customer opening in another's name) raises :class:`TransitionDenied` carrying
the refusal. Whether the actor may write the facts in an event's data is the rules' question, not
intake's: :func:`casework.decide.decide` answers it, so such a refusal is recorded like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.domain import SYSTEM_ONLY, Actor, Decision, Verdict
from casework.errors import InvalidInput, TransitionDenied
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
    value is well-formed and in the policy's vocabulary."""
    ks = spec(kind)
    if event not in ks.events:
        raise InvalidInput(f"unknown {kind} event {event!r}{did_you_mean(event, ks.events)}; "
                           f"{kind} events: {', '.join(ks.events)}", field="event", value=event)
    check_actor(actor, policy)
    clean = declared_facts(policy, F.normalize(data or {}, policy.tz, policy.declared_types))
    check_vocabulary(policy, kind, clean)
    return clean


def open_authority(policy: PolicySet, kind: str, actor: Actor) -> Verdict:
    """May ``actor`` open a ``kind`` case? The passing ``open_roles`` verdict, or TransitionDenied.

    Depends on the kind and the actor only, so a bulk import asks once per kind.
    """
    spec(kind)
    if kind not in policy.document.kinds:
        raise InvalidInput(f"the policy {policy.label!r} has no rules for {kind} cases", field="kind")
    check_actor(actor, policy)
    kp = policy.kind(kind)
    role_ok = any(policy.roles.acts_as(actor.role, r) for r in kp.open_roles)
    verdict = Verdict("open_roles", role_ok, None if role_ok else "role_not_permitted",
                      f"role {actor.role} {'may' if role_ok else 'may not'} open a {kind}"
                      + ("" if role_ok else f"; allowed: {', '.join(kp.open_roles)}"),
                      {"role": actor.role, "allowed": list(kp.open_roles)})
    not_granted = policy.grant_verdict(actor)
    if not role_ok or not_granted is not None:
        refusals = (verdict,) if not_granted is None else (not_granted, verdict)
        raise TransitionDenied(Decision(kind, "open", "", None, refusals, policy.ref))
    return verdict


def opening_facts(policy: PolicySet, kind: str, facts: Mapping[str, Any], actor: Actor,
                  channel: str | None = None) -> dict[str, Any]:
    """The facts a case opens with: normalised, owned, in the policy's vocabulary, with every required one.

    Every case has its customer: a customer opens in their own name (given or not); anyone else names
    the customer the case is for.
    """
    clean = declared_facts(policy, F.normalize(facts, policy.tz, policy.declared_types))
    kept = F.ENGINE_KEPT.intersection(clean) - (SYSTEM_ONLY if actor.is_engine else frozenset())
    if kept:
        raise InvalidInput(f"fact {min(kept)!r} is kept by the system; it cannot be given when opening a case",
                           field=min(kept))
    if channel is not None:
        clean["channel"] = channel
    if actor.role == "customer":
        owner = clean.setdefault("customer", actor.id)
        if owner != actor.id:
            raise TransitionDenied(Decision(kind, "open", "", None, (Verdict(
                "owner", False, "role_not_permitted",
                f"customer {actor.id} may open cases only in their own name, not customer {owner}'s",
                {"actor": actor.id, "customer": owner}),), policy.ref))
    check_vocabulary(policy, kind, clean)
    missing = [f for f in (*policy.kind(kind).required, "customer") if f not in clean]
    if missing:
        owner = " (every case is for a customer: name them, or open it as them)" if "customer" in missing else ""
        raise InvalidInput(f"a {kind} case needs {', '.join(missing)}; missing: {', '.join(missing)}{owner}",
                           field=missing[0])
    return clean
