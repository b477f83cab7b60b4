"""What a case's audit trail says its row must hold: the trail replayed through the one transition step.

Pure (no database): the entries of one case, in sequence order, and the policy versions they name go
in; the case they derive comes out, with every problem found on the way. The opening entry becomes
the case through :func:`casework.transition.opened` and every later applied entry advances it through
:func:`casework.transition.advance` — the very functions that made the row — at the entry's own time
and under the version it names, so state, version, facts, tracking, deadlines, the first response,
open/closed and the pinned version are recomputed exactly as they were written. Then
:func:`compare` names every column of the stored row that differs.

Entries must also agree with one another: each is hashed as recorded and chained to the one before;
every entry but a re-pinning (``adopt_policy``) is decided by the version the case is pinned to at
that point, so a row switched to another stored version is caught by the first entry decided after
the switch, or by the row itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.audit import GENESIS, META_EVENTS, hash_of
from casework.domain import AuditEntry, Case
from casework.findings import CaseProblem
from casework.jsontext import canonical
from casework.machines import KINDS, PREFIXES
from casework.transition import advance, opened

if TYPE_CHECKING:
    from casework.policies import PolicySet

ADOPT_EVENT = "adopt_policy"
# The columns a case row keeps from its opening (what it is found and reported by).
OPENING_COLUMNS = ("order_id", "customer", "channel")
PolicyOf = Callable[[str], "PolicySet | None"]  # a stored version by hash; None when missing or altered


@dataclass
class Replayed:
    """A trail replayed: the case it derives (None when it could not be replayed), where the trail ends,
    the opening's columns, and the problems found (the first broken entry, if any, first)."""

    number: str
    case: Case | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    entries: int = 0
    opening: dict[str, Any] = field(default_factory=dict)
    problems: list[CaseProblem] = field(default_factory=list)

    def broken(self, seq: int | None, problem: str) -> None:
        self.problems.append(CaseProblem(self.number, seq, problem))


def kind_of(number: str) -> str | None:
    """The kind a case number names by its prefix (``RF-…`` is a refund)."""
    return PREFIXES.get(number.split("-", 1)[0])


def replay(number: str, entries: Iterable[AuditEntry], policy_of: PolicyOf) -> Replayed:
    """Replay the trail of case ``number``; stops at the first broken entry (later ones cannot be trusted)."""
    out = Replayed(number)
    kind = kind_of(number)
    if kind is None:
        out.broken(None, f"case number {number!r} names no kind")
        return out
    spec = KINDS[kind]
    case: Case | None = None
    for e in entries:
        out.entries += 1
        if out.problems:
            continue
        problem = _link_problem(e, number, out)
        if problem is None and e.outcome == "applied":
            problem, case = _apply(e, case, kind, policy_of, spec.initial)
        elif problem is None and e.outcome == "refused":
            problem = _refusal_problem(e, case)
        elif problem is None:
            problem = f"unknown outcome {e.outcome!r}"
        if problem is not None:
            out.broken(e.seq, problem)
            continue
        if case is not None and e.seq == 1:
            out.opening = {"order_id": case.order_id, "customer": case.customer, "channel": case.facts.get("channel")}
        out.last_seq, out.last_hash = e.seq, e.hash
    if out.entries == 0:
        out.broken(None, "case has no audit trail")
    out.case = None if out.problems else case
    return out


def _link_problem(e: AuditEntry, number: str, out: Replayed) -> str | None:
    if e.number != number:
        return f"entry belongs to case {e.number}"
    if e.seq != out.last_seq + 1:
        return f"sequence gap: expected {out.last_seq + 1}, found {e.seq}"
    if e.prev_hash != out.last_hash:
        return "prev_hash does not match the previous entry"
    if hash_of(e) != e.hash:
        return "entry hash mismatch: the entry was altered"
    return None


def _refusal_problem(e: AuditEntry, case: Case | None) -> str | None:
    if case is None:
        return "first entry is not the opening"
    if e.from_state != case.state or e.to_state is not None:
        return f"refused {e.event} recorded from {e.from_state}, but the case was in {case.state}"
    if e.policy.hash != case.policy.hash:
        return f"decided by policy version {e.policy.short}, but the case was pinned to {case.policy.short}"
    return None


def _apply(e: AuditEntry, case: Case | None, kind: str, policy_of: PolicyOf, initial: str
           ) -> tuple[str | None, Case | None]:
    """The case after applied entry ``e`` (or the problem with it)."""
    policy = policy_of(e.policy.hash)
    if case is None:
        if e.seq != 1 or e.event != "open" or e.to_state != initial or e.from_state is not None:
            return "first entry is not the opening", None
        if policy is None:
            return f"policy version {e.policy.short} it was decided by is missing or altered", None
        return None, opened(e.number, kind, dict(e.data), policy, e.at)
    if e.event in META_EVENTS:
        if e.from_state != case.state or e.to_state != case.state:
            return f"replay: {e.event} must not change the state", case
        pinned_to = _pin_after(e, case)
        if pinned_to is not None:
            return pinned_to, case
    else:
        target = KINDS[kind].target(case.state, e.event)
        if e.from_state != case.state or target is None or target != e.to_state:
            return f"replay: {e.event} from {e.from_state} to {e.to_state} is not a legal move from {case.state}", case
        if e.policy.hash != case.policy.hash:
            return f"decided by policy version {e.policy.short}, but the case was pinned to {case.policy.short}", case
    if policy is None:
        return f"policy version {e.policy.short} it was decided by is missing or altered", case
    assert e.to_state is not None
    return None, advance(case, policy, event=e.event, to_state=e.to_state, data=e.data, now=e.at)


def _pin_after(e: AuditEntry, case: Case) -> str | None:
    """The problem with a meta entry's policy version (None when it is the one the case is pinned to next)."""
    if e.event == ADOPT_EVENT:
        moved: Mapping[str, Any] = e.data
        if moved.get("policy_from") != case.policy.hash or moved.get("policy_to") != e.policy.hash:
            return "adopt_policy does not move the case from the version it was pinned to"
        return None
    if e.policy.hash != case.policy.hash:
        return f"decided by policy version {e.policy.short}, but the case was pinned to {case.policy.short}"
    return None


def check_refused_opening(e: AuditEntry, policy_of: PolicyOf) -> list[CaseProblem]:
    """Problems with an entry of no case, which must be an opening refused (``transition.refused_opening``): the
    first and only entry of its own trail, hashed as recorded, decided by a stored version, refused for a reason.
    (Its place in the global chain is checked with every entry's.)"""
    problem = None
    if kind_of(e.number) is None:
        problem = f"its series {e.number!r} names no kind"
    elif (e.seq, e.prev_hash, e.event, e.outcome, e.from_state, e.to_state) != (1, GENESIS, "open", "refused",
                                                                               None, None):
        problem = "an entry of no case that is not a refused opening (taken from a case's trail, or forged)"
    elif hash_of(e) != e.hash:
        problem = "entry hash mismatch: the entry was altered"
    elif policy_of(e.policy.hash) is None:
        problem = f"policy version {e.policy.short} it was decided by is missing or altered"
    elif not any(isinstance(v, dict) and v.get("passed") is False for v in e.verdicts):
        problem = "recorded as refused, but no verdict refused it"
    return [] if problem is None else [CaseProblem(e.number, e.seq, f"refused opening: {problem}")]


def check_case(case: Case, entries: Iterable[AuditEntry], last_seq: int, last_hash: str, policy_of: PolicyOf,
               columns: Mapping[str, Any] | None = None) -> list[CaseProblem]:
    """Problems with one case: its trail's first broken entry, else every column of its row (``case``, where
    its trail ends, and its opening ``columns`` if given) that differs from replaying the trail."""
    trail = replay(case.number, entries, policy_of)
    if trail.problems:
        return trail.problems
    return compare(case, trail.opening if columns is None else columns, last_seq, last_hash, trail)


def compare(stored: Case, columns: Mapping[str, Any], last_seq: int, last_hash: str, trail: Replayed
            ) -> list[CaseProblem]:
    """Every column of the stored row that differs from what the trail derives (``columns``: the row's
    opening columns, ``order_id``, ``customer``, ``channel``, as stored)."""
    number = stored.number
    problems = [CaseProblem(number, None, p) for p in _differences(stored, columns, trail)]
    if (last_seq, last_hash) != (trail.last_seq, trail.last_hash):
        problems.append(CaseProblem(number, None, f"trail ends at seq {trail.last_seq}, the case row says {last_seq}"))
    return problems


def _differences(stored: Case, columns: Mapping[str, Any], trail: Replayed) -> list[str]:
    derived = trail.case
    assert derived is not None
    found: list[str] = []
    if stored.kind != derived.kind:
        found.append(f"stored kind {stored.kind!r} differs from the kind its number names ({derived.kind!r})")
    for name in ("state", "version", "closed"):
        if getattr(stored, name) != getattr(derived, name):
            found.append(f"stored {_column(name)} {getattr(stored, name)!r} differs from the replayed "
                         f"{getattr(derived, name)!r}")
    if canonical(stored.facts) != canonical(derived.facts):
        found.append("stored facts differ from replayed facts")
    if stored.policy.hash != derived.policy.hash:
        found.append(f"stored policy version {stored.policy.short} is not the one its trail pins it to "
                     f"({derived.policy.short})")
    for name in ("opened_at", "updated_at", "first_response_due", "responded_at", "due_at", "resolution_due",
                 "timer_due", "state_since"):
        was, now = getattr(stored, name), getattr(derived, name)
        if was != now:
            found.append(f"stored {name} {_when(was)} differs from the replayed {_when(now)}")
    for name in ("priority", "queue", "breaches", "assignee"):
        if getattr(stored, name) != getattr(derived, name):
            found.append(f"stored {name} {getattr(stored, name)!r} differs from the replayed "
                         f"{getattr(derived, name)!r}")
    if stored.tracking.timer_refused != derived.tracking.timer_refused:
        found.append("stored timer note differs from the replayed one")
    for name in OPENING_COLUMNS:
        if columns.get(name) != trail.opening.get(name):
            found.append(f"stored {name} {columns.get(name)!r} differs from the opening's "
                         f"{trail.opening.get(name)!r}")
    return found


def _column(name: str) -> str:
    return "is_open (closed)" if name == "closed" else name


def _when(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "none"
