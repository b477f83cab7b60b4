"""The one transition step: a case, an event and its decision in; the next case and its chained entry out.

Pure (no database, no clock). :func:`opening` makes a new case and its first entry (and
:func:`refused_opening` the entry of an opening refused, which has no case); :func:`step`
makes every later one: a decided event (applied or refused), or one of the engine's own applied
entries that record something without moving the case (``sla_breach``, ``adopt_policy``).
:func:`advance` is the one way to derive the next ``Case``, and :func:`record` the one way to
make an audit entry (its hash is :func:`casework.audit.entry_hash`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.audit import GENESIS, entry_hash
from casework.domain import NOTHING_TRACKED, Actor, AuditEntry, Case, PolicyRef, Verdict, split
from casework.frozen import quick_init
from casework.jsontext import canonical
from casework.machines import REOPEN, KindSpec, spec
from casework.sla import deadlines, routing

if TYPE_CHECKING:
    from casework.policies import PolicySet

EntryTexts = tuple[str, str]  # an entry's verdicts and data as the canonical JSON its row stores


@quick_init
@dataclass(frozen=True, slots=True)
class Transition:
    """What one step writes: the case after it (unchanged when refused) and its audit entry."""

    case: Case
    entry: AuditEntry
    texts: EntryTexts

    @property
    def applied(self) -> bool:
        return self.entry.outcome == "applied"


def number_series(ks: KindSpec, policy: PolicySet, now: datetime) -> str:
    """The counter a new case's number is drawn from: kind prefix and the local date (``RF-20261122``)."""
    return f"{ks.prefix}-{now.astimezone(policy.tz):%Y%m%d}"


def case_number(series: str, n: int) -> str:
    return f"{series}-{n:06d}"


def opened(number: str, kind: str, data: dict[str, Any], policy: PolicySet, now: datetime) -> Case:
    """A new case as it is opened with ``data`` (its facts, and any values the system keeps apart from
    them): its initial state and the deadlines the policy sets."""
    ks = spec(kind)
    facts, kept = split(data)
    tracking = NOTHING_TRACKED.absorb(kept)
    first_response, resolution = policy.opening_deadlines(kind, now, facts.get("channel"))
    if tracking.priority != NOTHING_TRACKED.priority:
        resolution = policy.resolution_due(kind, now, tracking.priority)
    timer_due, due = deadlines(policy, kind, ks.initial, now, False, None, first_response, resolution, tracking)
    return Case(number=number, kind=kind, state=ks.initial, version=1, facts=facts, policy=policy.ref,
                opened_at=now, updated_at=now, first_response_due=first_response, responded_at=None, due_at=due,
                closed=False, resolution_due=resolution, timer_due=timer_due, state_since=now, tracking=tracking)


def advance(case: Case, policy: PolicySet, *, event: str, to_state: str, data: Mapping[str, Any],
            now: datetime) -> Case:
    """The case after an applied entry: moved to ``to_state`` (or kept in its state), ``data`` merged into
    its facts (the system's own values into its ``tracking``, see ``domain.split``), decided from now on
    by ``policy`` (the pinned one, or the one it is moved to), deadlines recomputed.

    A response is recorded the first time an event the policy counts as one is applied, or the case
    settles; the state's timer and its desk deadline restart when the state changes (a desk deadline is
    breached once per stay in its state).
    """
    ks = spec(case.kind)
    responded = case.responded_at
    if responded is None and (policy.counts_as_response(case.kind, event) or to_state in ks.settled):
        responded = now
    since = now if to_state != case.state else case.state_since
    closed = to_state in ks.final
    given, kept = split(data)
    facts = F.merge(case.facts, given) if given else case.facts  # unchanged: the same (never mutated) mapping
    tracking = case.tracking.absorb(kept)
    if to_state != case.state:  # a new stay: the state's desk deadline runs again, and may be breached again
        desk = policy.desk_deadline(case.kind, to_state)
        tracking = tracking.new_stay(desk.name if desk is not None else None)
    if closed and tracking.queue is not None:
        tracking = replace(tracking, queue=None)  # a closed case leaves its queue
    resolution = _resolution_after(case, policy, to_state, tracking.priority, now)
    if event == REOPEN and (fresh := policy.reopened_resolution(case.kind, resolution, now)) is not None:
        # a new promise: due from the reopening, and its breach (if the old one was missed) can happen again
        resolution = fresh
        tracking = replace(tracking, breaches=tuple(b for b in tracking.breaches if b != "resolution"))
    timer_due, due = deadlines(policy, case.kind, to_state, since, closed, responded, case.first_response_due,
                               resolution, tracking)
    return Case(number=case.number, kind=case.kind, state=to_state, version=case.version + 1, facts=facts,
                policy=policy.ref, opened_at=case.opened_at, updated_at=now,
                first_response_due=case.first_response_due, responded_at=responded, due_at=due, closed=closed,
                resolution_due=resolution, timer_due=timer_due, state_since=since, tracking=tracking)


def _resolution_after(case: Case, policy: PolicySet, to_state: str, priority: int, now: datetime) -> datetime | None:
    """The resolution deadline after an entry: pushed by the time the case waited on the customer when it
    leaves a waiting state (the clock resumes exactly where it paused), and moved to the target of its new
    priority when the priority changes."""
    due = case.resolution_due
    if due is None:
        return None
    if to_state != case.state and case.state_since is not None and policy.waits_on_customer(case.kind, case.state):
        due = policy.resolution_resumed(case.kind, due, case.state_since, now, case.priority)
    if priority != case.priority:
        due = policy.resolution_reprioritized(case.kind, case.opened_at, due, case.priority, priority)
    return due


def record(number: str, seq: int, prev: str, at: datetime, event: str, from_state: str | None,
           to_state: str | None, outcome: str, actor: Actor, channel: str | None, verdicts: Sequence[Verdict],
           data: Mapping[str, Any], policy: PolicyRef) -> tuple[AuditEntry, EntryTexts]:
    """An audit entry chained to ``prev``, with its verdicts and data serialised once (for hash and row)."""
    verdict_json = [v.to_json() for v in verdicts]
    verdicts_text, data_text = canonical(verdict_json), canonical(data)
    h = entry_hash(number=number, seq=seq, at=at.isoformat(), event=event, from_state=from_state, to_state=to_state,
                   outcome=outcome, actor=actor.id, role=actor.role, channel=channel, verdicts=verdict_json,
                   data=data, policy_hash=policy.hash, prev_hash=prev, verdicts_text=verdicts_text,
                   data_text=data_text)
    entry = AuditEntry(number=number, seq=seq, at=at, event=event, from_state=from_state, to_state=to_state,
                       outcome=outcome, actor=actor.id, role=actor.role, channel=channel, verdicts=verdict_json,
                       data=dict(data), policy=policy, prev_hash=prev, hash=h)
    return entry, (verdicts_text, data_text)


def opening(number: str, kind: str, facts: dict[str, Any], policy: PolicySet, now: datetime, actor: Actor,
            *verdicts: Verdict) -> Transition:
    """A case opened by ``actor`` (``verdicts``: the opening's decision, all passed, and anything more the
    opening records, such as the override of the published policy) and its first entry."""
    case = opened(number, kind, facts, policy, now)
    entry, texts = record(number, 1, GENESIS, now, "open", None, case.state, "applied", actor, facts.get("channel"),
                          verdicts, facts, policy.ref)
    return Transition(case, entry, texts)


def refused_opening(series: str, facts: Mapping[str, Any], policy: PolicySet, now: datetime, actor: Actor,
                    verdicts: Sequence[Verdict]) -> tuple[AuditEntry, EntryTexts]:
    """The entry of an opening the rules refused: no case exists, so it is a trail of its own, one entry long,
    named by the series the case would have been numbered in (``RF-20261122``: the kind and the day) and
    sealed into the global chain like every entry."""
    return record(series, 1, GENESIS, now, "open", None, None, "refused", actor, facts.get("channel"), verdicts,
                  facts, policy.ref)


def step(case: Case, last_seq: int, last_hash: str, *, event: str, to_state: str | None,
         verdicts: Sequence[Verdict], actor: Actor, data: Mapping[str, Any], now: datetime,
         policy: PolicySet) -> Transition:
    """The entry after ``last_seq``/``last_hash`` and, when applied (``to_state`` given), the next case.

    A decided event passes ``decision.to_state`` if allowed (else None) and ``decision.verdicts``; an
    engine entry that records without moving the case passes the case's own state. An applied event
    that pays money out (``KindSpec.payouts``) records what it paid, ``paid_out``: the amount the rules
    approved, which no event's data can change (see :mod:`casework.decide`).
    """
    outcome = "refused" if to_state is None else "applied"
    if to_state is not None and (paying := spec(case.kind).payouts.get(event)) is not None:
        paid = data.get(paying, case.facts.get(paying))
        if paid is not None:
            data = {**data, F.PAID_OUT: paid}
    if to_state is not None and (ep := policy.event(case.kind, event)) is not None and ep.route is not None:
        data = {**data, **routing(case, ep.route)}  # recorded, so a replay routes it alike
    entry, texts = record(case.number, last_seq + 1, last_hash, now, event, case.state, to_state, outcome, actor,
                          data.get("channel") or case.facts.get("channel"), verdicts, data, policy.ref)
    after = case if to_state is None else advance(case, policy, event=event, to_state=to_state, data=data, now=now)
    return Transition(after, entry, texts)
