"""Open many cases fast, for simulations and benchmarks, exactly as ``Engine.open`` would store them.

``Engine.open`` costs one transaction per case; 100,000 of them would take minutes. This writes the
same rows in a handful of multi-row inserts inside one store transaction: each case with its opening
audit entry (hash-chained from the genesis hash, as the engine computes it), numbered from the same
counter, so ``Engine.verify()`` passes and later ``open`` calls keep numbering after them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from casework import Actor, Case, Engine, Verdict
from casework import facts as F
from casework.audit import GENESIS
from casework.machines import spec
from casework.sla import with_deadlines
from casework.store import _dumps, audit, cases

CHUNK = 5000
CUSTOMER = Actor("cust-bulk", "customer")


def bulk_open(engine: Engine, kind: str, facts: Sequence[Mapping[str, Any]], *,
              actor: Actor = CUSTOMER, channel: str = "app") -> list[str]:
    """Open one ``kind`` case per facts mapping at the engine's clock; returns their numbers in order."""
    policy = engine.policy
    ks = spec(kind)
    now = engine._now()
    kp = policy.kind(kind)
    template = with_deadlines(Case(
        number="", kind=kind, state=ks.initial, version=1, facts={}, policy=policy.ref, opened_at=now,
        updated_at=now, first_response_due=policy.first_response_due(kind, now, channel),
        resolution_due=policy.resolution_due(kind, now), state_since=now), policy)
    verdict = Verdict("open_roles", True, "role_not_permitted", f"role {actor.role} may open a {kind}",
                      {"role": actor.role, "allowed": list(kp.open_roles)})
    day = now.astimezone(policy.tz).strftime("%Y%m%d")
    prefix = f"{ks.prefix}-{day}"
    numbers: list[str] = []
    with engine.store.transaction() as tx:
        last = tx.conn.execute(sa.text(
            "INSERT INTO counters (name, value) VALUES (:name, :n) "
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + :n RETURNING value"),
            {"name": prefix, "n": len(facts)}).scalar_one()
        first = int(last) - len(facts) + 1
        start_id = tx.conn.execute(sa.select(sa.func.coalesce(sa.func.max(cases.c.id), 0))).scalar_one()
        for lo in range(0, len(facts), CHUNK):
            case_rows, entries = [], []
            for i, given in enumerate(facts[lo:lo + CHUNK], start=lo):
                clean = F.normalize({**given, "channel": channel})
                if actor.role == "customer":
                    clean.setdefault("customer", actor.id)
                case = replace(template, number=f"{prefix}-{first + i:06d}", facts=clean)
                entry = engine._entry(case.number, 1, GENESIS, now, "open", None, ks.initial, "applied", actor,
                                      channel, (verdict,), clean, policy)
                case_rows.append(_case_row(case, entry.hash))
                entries.append(entry)
                numbers.append(case.number)
            tx.conn.execute(cases.insert(), case_rows)
            ids = dict(tx.conn.execute(sa.select(cases.c.number, cases.c.id).where(cases.c.id > start_id)
                                       .where(cases.c.number.in_([e.number for e in entries]))).all())
            tx.conn.execute(audit.insert(), [_audit_row(ids[e.number], e) for e in entries])
    return numbers


def _case_row(case: Case, last_hash: str) -> dict[str, Any]:
    return {"number": case.number, "kind": case.kind, "state": case.state, "version": case.version,
            "facts": _dumps(case.facts), "policy_hash": case.policy.hash, "order_id": case.order_id,
            "customer": case.customer, "channel": case.facts.get("channel"), "opened_at": case.opened_at,
            "updated_at": case.updated_at, "first_response_due": case.first_response_due,
            "responded_at": case.responded_at, "due_at": case.due_at, "is_open": not case.closed,
            "resolution_due": case.resolution_due, "timer_due": case.timer_due, "state_since": case.state_since,
            "priority": case.priority, "queue": case.queue, "last_seq": 1, "last_hash": last_hash}


def _audit_row(case_id: int, e: Any) -> dict[str, Any]:
    return {"case_id": case_id, "number": e.number, "seq": e.seq, "at": e.at, "event": e.event,
            "from_state": e.from_state, "to_state": e.to_state, "outcome": e.outcome, "actor": e.actor,
            "role": e.role, "channel": e.channel, "verdicts": _dumps(e.verdicts), "data": _dumps(e.data),
            "policy_hash": e.policy.hash, "prev_hash": e.prev_hash, "hash": e.hash}
