"""Plain domain values: who acts, what a case is, what the rules decided, what the trail holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from casework.frozen import quick_init

ROLES = ("customer", "agent", "supervisor", "system")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who fires an event: an id (a person, a service account) and the role they act in.

    >>> Actor("alice", "agent")
    Actor(id='alice', role='agent')
    """

    id: str
    role: str
    # Whether this is the engine itself (its timers and sweeps, in process); see Actor.system().
    is_engine: ClassVar[bool] = False

    @classmethod
    def system(cls) -> Actor:
        """The engine's own actor: its timers and sweeps, and in-process code acting for it.

        It acts as ``system`` under every policy. An outside caller that merely says
        ``Actor("system", "system")`` (``--actor system --role system``) is not it: such a claim is
        accepted only in open mode or when the policy's ``operators`` section grants it.

        >>> Actor.system() == Actor("system", "system")
        False
        """
        return _ENGINE


@dataclass(frozen=True, slots=True)
class _EngineActor(Actor):
    """The one instance behind ``Actor.system()``: made here, never from a caller's input."""

    is_engine: ClassVar[bool] = True


_ENGINE = _EngineActor("system", "system")


@quick_init
@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy version: its human label and its content hash."""

    label: str
    hash: str

    @property
    def short(self) -> str:
        return self.hash[:12]

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "hash": self.hash}


@quick_init
@dataclass(frozen=True, slots=True)
class Verdict:
    """One guard's answer. ``code`` is stable and machine-readable; ``message`` is for people.

    ``details`` carries the observed and the required values; ``source`` is where in the policy
    file the guard is written (``policies.yaml:42``).
    """

    guard: str
    passed: bool
    code: str | None  # a refusal's reason code; a pass carries none (None), or a marker of what was recorded
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    @property
    def reason_code(self) -> str:
        """The code of a refusal ('' for a pass), for where only refusals are shown."""
        return self.code or ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "guard": self.guard,
            "passed": bool(self.passed),  # a JSON boolean, always (the relay's reading of reasons relies on it)
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }
        if self.source:
            out["source"] = self.source
        return out

    def reason_json(self) -> dict[str, Any]:
        return {"code": self.reason_code, "message": self.message, "details": self.details}


@quick_init
@dataclass(frozen=True, slots=True)
class Decision:
    """Whether ``event`` may happen to a case now, and every guard's verdict on it."""

    kind: str
    event: str
    from_state: str
    to_state: str | None
    verdicts: tuple[Verdict, ...]
    policy: PolicyRef | None

    @property
    def allowed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def reasons(self) -> list[Verdict]:
        """The failed verdicts: why the event is refused (empty when allowed)."""
        return [v for v in self.verdicts if not v.passed]

    @property
    def codes(self) -> list[str]:
        return [v.reason_code for v in self.reasons]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "allowed": self.allowed,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "reasons": [r.reason_json() for r in self.reasons],
            "verdicts": [v.to_json() for v in self.verdicts],
            "policy": self.policy.to_json() if self.policy else None,
        }


# Values only the system's own steps (sweeps, timers, re-pinning) write. They are recorded in the entry's
# data but are not facts: ``priority``, ``queue``, ``breaches`` and ``timer_refused`` become the case's
# typed ``Tracking``; ``timer`` (which state's timer fired) and ``policy_from``/``policy_to`` (a re-pinning)
# stay in the audit entry only.
# ``assignee`` is written by the desk's own ``assign`` entries (and an escalation), never with an event's data.
SYSTEM_ONLY = frozenset({"assignee", "breaches", "priority", "queue", "timer", "timer_refused", "policy_from",
                         "policy_to"})
TRACKED = frozenset({"assignee", "breaches", "priority", "queue", "timer_refused"})


# What an entry says to the case's notes thread: a note, and whom it is for (``internal``: the desk only;
# ``customer``: the customer sees it), and for a canned reply its code and the language it was written out in.
# Recorded in the entry, never a fact: the thread is the trail's notes.
THREAD = frozenset({"note", "audience", "reply", "reply_lang"})
_APART = SYSTEM_ONLY | THREAD


def split(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An entry's data as ``(facts, tracked)``: the customer's facts, and the system-kept values the case
    tracks apart from them (see SYSTEM_ONLY; the rest of the system's values, and the thread's, stay in the
    entry only)."""
    if not _APART.intersection(data):
        return dict(data), {}
    facts = {k: v for k, v in data.items() if k not in _APART}
    return facts, {k: v for k, v in data.items() if k in TRACKED}


@quick_init
@dataclass(frozen=True, slots=True)
class Tracking:
    """What the system keeps on a case apart from the customer's facts: escalation and the service clock.

    ``priority`` and ``queue`` are set by escalations (a breached deadline), ``breaches`` lists the
    deadlines missed (a desk deadline's until the case enters its state again: one breach per stay),
    ``timer_refused`` names the stay in a state whose timer the rules refused (so it is not retried every
    sweep). Only the system's own entries (``sla_breach``) change them.
    """

    priority: int = 1
    queue: str | None = None
    breaches: tuple[str, ...] = ()
    timer_refused: str | None = None
    assignee: str | None = None

    def absorb(self, kept: Mapping[str, Any]) -> Tracking:
        """After an entry whose data held these system-kept values (breaches accumulate)."""
        if not kept:
            return self
        breaches = self.breaches
        if "breaches" in kept:
            new = [str(b) for b in kept["breaches"] if b not in breaches]
            if new:
                breaches = tuple(sorted({*breaches, *new}))
        return Tracking(priority=int(kept.get("priority", self.priority)), queue=kept.get("queue", self.queue),
                        breaches=breaches, timer_refused=kept.get("timer_refused", self.timer_refused),
                        assignee=kept.get("assignee", self.assignee))


    def new_stay(self, deadline: str | None) -> Tracking:
        """On entering a state whose desk deadline is ``deadline``: a new stay, a new deadline, so an earlier
        stay's breach of it no longer counts against this one (the trail keeps that breach)."""
        if deadline is None or deadline not in self.breaches:
            return self
        return Tracking(priority=self.priority, queue=self.queue,
                        breaches=tuple(b for b in self.breaches if b != deadline),
                        timer_refused=self.timer_refused, assignee=self.assignee)


NOTHING_TRACKED = Tracking()


@quick_init
@dataclass(frozen=True, slots=True)
class Case:
    """A snapshot of one after-sales case as stored.

    ``facts`` is JSON-shaped: money as decimal strings, dates as ISO strings, ``evidence`` as a
    list of ``{"type": ..., "ref": ...}``. Use :mod:`casework.facts` to read typed values.
    """

    number: str
    kind: str
    state: str
    version: int
    facts: dict[str, Any]
    policy: PolicyRef
    opened_at: datetime
    updated_at: datetime
    first_response_due: datetime | None = None
    responded_at: datetime | None = None
    due_at: datetime | None = None
    closed: bool = False
    resolution_due: datetime | None = None
    timer_due: datetime | None = None
    state_since: datetime | None = None
    tracking: Tracking = NOTHING_TRACKED

    @property
    def order_id(self) -> str | None:
        v = self.facts.get("order_id")
        return str(v) if v is not None else None

    @property
    def customer(self) -> str | None:
        v = self.facts.get("customer")
        return str(v) if v is not None else None

    @property
    def priority(self) -> int:
        return self.tracking.priority

    @property
    def queue(self) -> str | None:
        return self.tracking.queue

    @property
    def breaches(self) -> list[str]:
        return list(self.tracking.breaches)

    @property
    def assignee(self) -> str | None:
        return self.tracking.assignee

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at <= now

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind,
            "state": self.state,
            "version": self.version,
            "facts": self.facts,
            "policy": self.policy.to_json(),
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "first_response_due": _iso(self.first_response_due),
            "responded_at": _iso(self.responded_at),
            "due_at": _iso(self.due_at),
            "closed": self.closed,
            "resolution_due": _iso(self.resolution_due),
            "timer_due": _iso(self.timer_due),
            "state_since": _iso(self.state_since),
            "priority": self.priority,
            "queue": self.queue,
            "breaches": self.breaches,
            "assignee": self.assignee,
        }


def reasons_of(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reasons among an entry's recorded verdicts (as stored): each one that did not pass, as
    ``{code, message, details}``."""
    return [
        {"code": v["code"], "message": v["message"], "details": v.get("details", {})}
        for v in verdicts
        if not v.get("passed", False)
    ]


@quick_init
@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of a case's audit trail: an applied transition or a refused attempt."""

    number: str
    seq: int
    at: datetime
    event: str
    from_state: str | None
    to_state: str | None
    outcome: str  # "applied" or "refused"
    actor: str
    role: str
    channel: str | None
    verdicts: list[dict[str, Any]]
    data: dict[str, Any]
    policy: PolicyRef
    prev_hash: str
    hash: str

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return reasons_of(self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "event": self.event,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "outcome": self.outcome,
            "actor": self.actor,
            "role": self.role,
            "channel": self.channel,
            "reasons": self.reasons,
            "verdicts": self.verdicts,
            "data": self.data,
            "policy": self.policy.to_json(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def verdict_from_json(d: dict[str, Any]) -> Verdict:
    return Verdict(d["guard"], bool(d["passed"]), d.get("code"), d["message"], dict(d.get("details", {})),
                   d.get("source"))


def decision_from_json(d: dict[str, Any]) -> Decision:
    pol = d.get("policy")
    return Decision(
        kind=d["kind"], event=d["event"], from_state=d["from_state"], to_state=d.get("to_state"),
        verdicts=tuple(verdict_from_json(v) for v in d["verdicts"]),
        policy=PolicyRef(pol["label"], pol["hash"]) if pol else None,
    )


def case_from_json(d: dict[str, Any]) -> Case:
    """The case ``Case.to_json`` wrote (also as older versions wrote it, with system values among the facts)."""
    def when(key: str) -> datetime | None:
        v = d.get(key)
        return datetime.fromisoformat(v) if v else None

    opened, updated = when("opened_at"), when("updated_at")
    assert opened is not None and updated is not None
    facts, _ = split(d["facts"])
    tracking = Tracking(priority=int(d.get("priority", 1)), queue=d.get("queue"),
                        breaches=tuple(d.get("breaches", ())), timer_refused=d.get("timer_refused"),
                        assignee=d.get("assignee"))
    return Case(
        number=d["number"], kind=d["kind"], state=d["state"], version=int(d["version"]),
        facts=facts, policy=PolicyRef(d["policy"]["label"], d["policy"]["hash"]), tracking=tracking,
        opened_at=opened, updated_at=updated, first_response_due=when("first_response_due"),
        responded_at=when("responded_at"), due_at=when("due_at"), closed=bool(d.get("closed", False)),
        resolution_due=when("resolution_due"), timer_due=when("timer_due"), state_since=when("state_since"),
    )
