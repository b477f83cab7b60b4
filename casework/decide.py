"""The one decision: may this actor fire this event on this case now, and why (not)?

>>> from casework import Actor, load_policy
>>> from casework.transition import opened
>>> from datetime import datetime, UTC
>>> policy, now = load_policy(), datetime(2026, 11, 22, 2, tzinfo=UTC)
>>> case = opened("RF-20261122-000001", "refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"}, policy, now)
>>> decide(policy, case, "approve", Actor("alice", "agent"), {}, now).allowed
True

Pure: the policy version, the case, the event's (already checked) data, the actor and the instant
are all given. The engine, the sweep, bulk import, simulate and the policy-test runner decide with
this function and no other, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.domain import Actor, Case, Decision, Verdict
from casework.machines import spec
from casework.policies.context import GuardContext

if TYPE_CHECKING:
    from casework.policies import PolicySet


def decide(policy: PolicySet, case: Case, event: str, actor: Actor, data: Mapping[str, Any],
           now: datetime) -> Decision:
    """Every verdict on ``event``: the machine's (is it available?), the role's, each guard's, the owner's.

    Every guard is evaluated (a refusal lists every missing piece at once); an event not available
    from the case's state is refused with ``not_available`` alone.
    """
    ks = spec(case.kind)
    target = ks.target(case.state, event)
    if target is None:
        possible = ks.available(case.state)
        listed = ", ".join(possible) if possible else "none (the case is finished)"
        verdict = Verdict("machine", False, "not_available",
                          f"{event} is not available from state {case.state}; possible: {listed}",
                          {"state": case.state, "available": list(possible)})
        return Decision(case.kind, event, case.state, None, (verdict,), policy.ref)
    ctx = GuardContext(kind=case.kind, event=event, state=case.state, facts=F.merge(case.facts, data), data=data,
                       actor=actor, now=now, tz=policy.tz, roles=policy.roles,
                       responded=case.responded_at is not None)
    verdicts = policy.evaluate(ctx)
    owner = case.customer
    if actor.role == "customer" and owner is not None and owner != actor.id:
        verdicts = (Verdict("owner", False, "role_not_permitted",
                            f"customer {actor.id} may act only on their own cases; this case is customer {owner}'s",
                            {"actor": actor.id, "customer": owner}), *verdicts)
    return Decision(case.kind, event, case.state, target, verdicts, policy.ref)
