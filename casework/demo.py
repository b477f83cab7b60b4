"""The after-sales stories of DOMAIN.md, played end to end against an engine.

Used by ``casework demo``; also a compact, runnable tour of the library API.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from casework.clock import FixedClock
from casework.domain import Actor, Case, Decision
from casework.engine import Engine
from casework.errors import InvalidInput, TransitionDenied

CUSTOMER = Actor("cust-1001", "customer")
AGENT = Actor("agent-li", "agent")
SUPERVISOR = Actor("sup-wang", "supervisor")
SYSTEM = Actor.system()


@dataclass(frozen=True)
class Step:
    """One thing that happened in a story: an opening, an applied event, or a refusal."""

    story: str
    actor: Actor
    event: str
    case: Case
    decision: Decision | None = None  # set when the event was refused

    @property
    def refused(self) -> bool:
        return self.decision is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "story": self.story, "event": self.event, "actor": self.actor.id, "role": self.actor.role,
            "number": self.case.number, "state": self.case.state,
            "outcome": "refused" if self.refused else "applied",
        }
        if self.decision is not None:
            out["reasons"] = [r.reason_json() for r in self.decision.reasons]
        return out


STORIES = (
    "A refund approved and paid",
    "A no-reason return asked for 9 days after delivery is refused",
    "A defective item returned on day 10 is accepted and exchanged",
    "An amount dispute without a payment voucher, then adjusted",
    "A complaint acknowledged, escalated and resolved",
    "A refund over the agent's limit: refused for the agent, approved by a supervisor",
)


def fresh_database(file: str | None = None) -> Path:
    """Where the demo plays: ``file`` if it does not exist yet, else a new temporary file."""
    if file is None:
        return Path(tempfile.mkdtemp(prefix="casework-demo-")) / "demo.db"
    if Path(file).exists():
        raise InvalidInput(f"--file {file!r} already exists; the demo needs a fresh database", field="file")
    return Path(file)


def demo_engine(path: Path, policies: str | None = None) -> tuple[Engine, FixedClock]:
    """An engine on ``path`` whose clock starts now and is moved by the stories."""
    clock = FixedClock(datetime.now(UTC))
    return Engine(str(path), policies=policies, clock=clock), clock


def run(engine: Engine, clock: FixedClock) -> Iterator[Step]:
    """Play every story; yields each step as it happens."""
    today = clock().astimezone(engine.policy.tz).date()

    def opened(story: str, kind: str, facts: Mapping[str, Any], actor: Actor = CUSTOMER,
               channel: str = "app") -> Step:
        clock.advance(minutes=3)
        return Step(story, actor, "open", engine.open(kind, facts, actor=actor, channel=channel))

    def fire(story: str, case: Case, event: str, actor: Actor, **data: Any) -> Step:
        clock.advance(minutes=5)
        try:
            return Step(story, actor, event, engine.fire(case.number, event, actor=actor, data=data))
        except TransitionDenied as denied:
            return Step(story, actor, event, engine.get(case.number), denied.decision)

    s = STORIES[0]
    step = opened(s, "refund", {"order_id": "SO-88001", "amount": "59.00", "paid": "59.00",
                                "reason": "not_as_described", "evidence": ["order_record"]})
    yield step
    for event, actor in (("review", AGENT), ("approve", AGENT), ("pay", SYSTEM), ("close", AGENT)):
        step = fire(s, step.case, event, actor)
        yield step

    s = STORIES[1]
    step = opened(s, "return", {"order_id": "SO-88002", "amount": "129.00",
                                "category": "apparel", "reason": "no_reason", "condition": "unused",
                                "delivered": (today - timedelta(days=9)).isoformat(),
                                "evidence": ["order_record"]})
    yield step
    yield (step := fire(s, step.case, "approve", AGENT))
    yield (step := fire(s, step.case, "reject", AGENT, rejection="deadline_passed",
                          note="outside the 7-day no-reason window"))
    yield fire(s, step.case, "close", SYSTEM)

    s = STORIES[2]
    step = opened(s, "return", {"order_id": "SO-88003", "amount": "899.00",
                                "category": "electronics", "reason": "defective", "condition": "used",
                                "delivered": (today - timedelta(days=10)).isoformat(),
                                "evidence": ["order_record", "photo=IMG_2041.jpg"]})
    yield step
    for event, actor in (("review", AGENT), ("approve", AGENT), ("ship", CUSTOMER), ("receive", AGENT),
                         ("exchange", AGENT), ("close", SYSTEM)):
        step = fire(s, step.case, event, actor)
        yield step

    s = STORIES[3]
    step = opened(s, "dispute", {"order_id": "SO-88004", "amount": "20.00", "paid": "199.00"},
                  channel="hotline")
    yield step
    yield (step := fire(s, step.case, "investigate", AGENT))
    yield (step := fire(s, step.case, "request_evidence", AGENT))
    yield (step := fire(s, step.case, "provide_evidence", CUSTOMER, evidence=["payment_voucher=PAY-5531.png"]))
    yield (step := fire(s, step.case, "investigate", AGENT))
    yield (step := fire(s, step.case, "adjust", AGENT, adjustment="20.00"))
    yield fire(s, step.case, "close", SYSTEM)

    s = STORIES[4]
    step = opened(s, "complaint", {"order_id": "SO-88005", "reason": "slow handling"}, channel="email")
    yield step
    yield (step := fire(s, step.case, "acknowledge", AGENT))
    yield (step := fire(s, step.case, "escalate", CUSTOMER, evidence=["written_complaint"]))
    yield (step := fire(s, step.case, "investigate", SUPERVISOR))
    yield (step := fire(s, step.case, "resolve", SUPERVISOR, note="apologised; 20.00 voucher issued"))
    yield fire(s, step.case, "close", CUSTOMER)

    s = STORIES[5]
    step = opened(s, "refund", {"order_id": "SO-88006", "amount": "3500.00", "paid": "3500.00",
                                "reason": "not_delivered", "evidence": ["order_record"]})
    yield step
    yield (step := fire(s, step.case, "review", AGENT))
    yield (step := fire(s, step.case, "approve", AGENT))
    yield (step := fire(s, step.case, "approve", SUPERVISOR))
    yield fire(s, step.case, "pay", SYSTEM)
