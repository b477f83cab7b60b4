"""The service clock's decisions: which deadlines of a case have run out, and what to do about them.

Pure functions over a case and its policy; :meth:`casework.Engine.sweep` applies them, each as a
normal audited transition fired by the ``system`` actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.domain import Case, Tracking
from casework.machines import KINDS, spec

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policies.schema import Escalation

BREACH_EVENT = "sla_breach"  # an engine-level event: records a breach, never moves the case


@dataclass(frozen=True, slots=True)
class SweepAction:
    """One due thing on one case: a timer to fire, or a breach to mark."""

    number: str
    kind: str  # "timer", "breach" or "event" (a missed desk deadline's event)
    name: str  # the event fired, or the breached target ("first_response", "resolution", a desk deadline's name)
    due: datetime
    state: str
    outcome: str = "due"  # due (dry run), applied, refused, skipped

    def outcome_of(self, outcome: str) -> SweepAction:
        """This action with its outcome (applied, refused, skipped)."""
        return SweepAction(self.number, self.kind, self.name, self.due, self.state, outcome)

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "action": self.kind, "name": self.name, "due": self.due.isoformat(),
                "state": self.state, "outcome": self.outcome}


@dataclass(frozen=True)
class SweepReport:
    at: datetime
    dry_run: bool
    cases_due: int
    actions: tuple[SweepAction, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for a in self.actions if a.outcome == outcome)

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "dry_run": self.dry_run, "cases_due": self.cases_due,
                "applied": self.count("applied"), "refused": self.count("refused"),
                "skipped": self.count("skipped"), "actions": [a.to_json() for a in self.actions]}


def due_actions(case: Case, policy: PolicySet, at: datetime) -> list[SweepAction]:
    """What is due on ``case`` at ``at``: breaches first (they happened first), then the timer."""
    ks = spec(case.kind)
    out: list[SweepAction] = []
    breaches = set(case.breaches)
    if not case.closed:
        if (case.responded_at is None and case.first_response_due is not None
                and case.first_response_due <= at and "first_response" not in breaches):
            out.append(SweepAction(case.number, "breach", "first_response", case.first_response_due, case.state))
        if (case.state not in ks.settled and case.resolution_due is not None and case.resolution_due <= at
                and "resolution" not in breaches and not policy.waits_on_customer(case.kind, case.state)):
            out.append(SweepAction(case.number, "breach", "resolution", case.resolution_due, case.state))
        desk = policy.desk_deadline(case.kind, case.state)
        desk_due = None if desk is None or case.state_since is None else \
            policy.desk_due(case.kind, case.state, case.state_since)
        if desk is not None and desk_due is not None and desk_due <= at and desk.name not in breaches:
            out.append(SweepAction(case.number, "breach", desk.name, desk_due, case.state))
            if desk.event is not None:
                out.append(SweepAction(case.number, "event", desk.event, desk_due, case.state))
    timer = policy.timer(case.kind, case.state)
    if timer is not None and case.timer_due is not None and case.timer_due <= at:
        out.append(SweepAction(case.number, "timer", timer.event, case.timer_due, case.state))
    return out


def breach_data(case: Case, policy: PolicySet, breach: str) -> dict[str, Any]:
    """The facts a breach adds: the breach itself, and the escalation the policy asks for."""
    esc = policy.escalation(breach)
    return {"breaches": [breach], **(routing(case, esc) if esc is not None else {})}


def routing(case: Case, esc: Escalation) -> dict[str, Any]:
    """What an escalation (a breach's, or an event's ``route``) sets: a priority no lower than the case's, its
    queue, and its assignee unless someone already has the case."""
    data: dict[str, Any] = {"priority": max(case.priority, esc.priority)}
    if esc.queue:
        data["queue"] = esc.queue
    if esc.assign_to and not case.assignee:
        data["assignee"] = esc.assign_to
    return data


def deadlines(policy: PolicySet, kind: str, state: str, since: datetime | None, closed: bool,
              responded: datetime | None, first_response_due: datetime | None, resolution_due: datetime | None,
              tracking: Tracking) -> tuple[datetime | None, datetime | None]:
    """``(timer_due, due_at)`` of a case in ``state`` since ``since``: its timer and its next deadline.

    Pending deadlines: the first response (until a response, or once breached), the resolution
    (until the case settles, or once breached), the desk deadline of the current state (until the case
    leaves it, or once breached in this stay: entering the state again starts a new one) and the timer of the
    current state (unless it was already tried and refused in this stay).
    """
    breaches = tracking.breaches
    timer_due = None
    if since is not None and policy.timer(kind, state) is not None \
            and tracking.timer_refused != stay_token(state, since):
        timer_due = policy.timer_due(kind, state, since)
    due = timer_due
    if not closed:
        if responded is None and "first_response" not in breaches:
            due = _earlier(due, first_response_due)
        if state not in KINDS[kind].settled and "resolution" not in breaches \
                and not policy.waits_on_customer(kind, state):  # the resolution clock pauses there
            due = _earlier(due, resolution_due)
        desk = policy.desk_deadline(kind, state)
        if desk is not None and since is not None and desk.name not in breaches:
            due = _earlier(due, policy.desk_due(kind, state, since))
    return timer_due, due


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None or (b is not None and b < a) else a


def stay_token(state: str, since: datetime | None) -> str:
    """Names one stay in one state, so a refused timer is not retried until the state changes."""
    return f"{state}@{since.isoformat() if since else ''}"


def timer_token(case: Case) -> str:
    """The token of the case's current stay in its state (see :func:`stay_token`)."""
    return stay_token(case.state, case.state_since)
