"""A decision on facts alone: what a policy would say about an event on a case that is not stored.

``casework policy explain`` and the policy-test runner build the case a set of facts describes with
:func:`hypothetical_case` and judge it with the one :func:`casework.decide.decide`, so an explanation
is exactly the decision the engine would make on a stored case holding those facts.

>>> from datetime import datetime, UTC
>>> from casework import Actor, load_policy
>>> d = explain(load_policy(), "refund", "approve", {"order_id": "A1", "amount": "59.00", "paid": "50.00"},
...             Actor("alice", "agent"), datetime(2026, 11, 22, 2, tzinfo=UTC), state="under_review")
>>> d.allowed, d.codes
(False, ['amount_exceeds_paid'])
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from casework import facts as F
from casework import intake
from casework.decide import decide
from casework.domain import Actor, Case, Decision
from casework.errors import InvalidInput
from casework.machines import KINDS, spec
from casework.policies.policyset import PolicySet
from casework.transition import opened
from casework.values import did_you_mean

HYPOTHETICAL = "(explain)"  # the number of a case that exists only to be judged


def hypothetical_case(policy: PolicySet, kind: str, facts: Mapping[str, Any], actor: Actor, at: datetime,
                      state: str | None = None, responded: bool | None = None, number: str = HYPOTHETICAL) -> Case:
    """The case ``facts`` describe: opened at ``at``, in ``state`` (default: the kind's first), responded to
    or not (default: once it has left its first state).

    Its facts pass the same intake as an opening's (normalised, declared, in the vocabulary), except the
    required ones: an explanation names only the facts its rules read. A customer acting on it owns it,
    as the engine makes the opener the owner.
    """
    if kind not in KINDS:
        raise InvalidInput(f"unknown case kind {kind!r}{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}",
                           field="kind", value=kind)
    if kind not in policy.document.kinds:
        raise InvalidInput(f"the policy {policy.label!r} has no rules for {kind} cases", field="kind", value=kind)
    ks = spec(kind)
    if state is not None and state not in ks.states:
        raise InvalidInput(f"unknown {kind} state {state!r}{did_you_mean(state, ks.states)}; "
                           f"{kind} states: {', '.join(ks.states)}", field="state", value=state)
    intake.check_actor(actor, policy)
    clean = intake.declared_facts(policy, F.normalize(facts, policy.tz, policy.declared_types))
    if actor.role == "customer" and "customer" not in clean:
        clean["customer"] = actor.id
    intake.check_vocabulary(policy, kind, clean)
    state = state or ks.initial
    responded = responded if responded is not None else state != ks.initial
    return replace(opened(number, kind, clean, policy, at), state=state, responded_at=at if responded else None)


def explain(policy: PolicySet, kind: str, event: str, facts: Mapping[str, Any], actor: Actor, now: datetime, *,
            state: str | None = None, data: Mapping[str, Any] | None = None, responded: bool | None = None
            ) -> Decision:
    """Every rule's verdict on ``event`` for a ``kind`` case holding ``facts`` in ``state`` at ``now``, fired
    by ``actor`` with ``data``: the decision the engine would make, each verdict with its ``FILE:LINE``.

    Bad input (an unknown kind, state or event, an undeclared fact, a malformed value) raises
    :class:`~casework.errors.InvalidInput`; a refusal is a decision, not an error.
    """
    case = hypothetical_case(policy, kind, facts, actor, now, state, responded)
    return decide(policy, case, event, actor, intake.event_data(policy, kind, event, data, actor), now)


def facts_from_json(source: str, text: str | None = None) -> dict[str, Any]:
    """The facts the JSON object in file ``source`` (``-``: standard input; ``text``: given) holds, numbers read
    as exact decimals (never binary floats); InvalidInput naming ``source`` when it is not one."""
    if text is None:
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read facts file {source}: {getattr(exc, 'strerror', None) or exc}",
                               field="facts_json", value=source) from None
    try:
        value = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise InvalidInput(f"{source}: not JSON ({exc}); expected an object of facts, like "
                           '{"amount": "600.00", "evidence": ["order_record"]}', field="facts_json") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{source}: expected a JSON object of facts, got {type(value).__name__}",
                           field="facts_json")
    return value
