"""The service-clock sweep: fire due timers and mark missed deadlines, each as an audited transition."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.domain import Actor, Case, Verdict
from casework.errors import ConcurrentUpdate, TransitionDenied
from casework.sla import BREACH_EVENT, SweepAction, SweepReport, breach_data, due_actions, timer_token, with_deadlines
from casework.store import Lost, StoredCase

if TYPE_CHECKING:
    from casework.engine import Engine
    from casework.policies import PolicySet


def sweep(engine: Engine, *, now: datetime | None = None, dry_run: bool = False, limit: int | None = None,
      progress: Callable[[int, int], None] | None = None) -> SweepReport:
    """Fire every due timer and mark every breached deadline, as the ``system`` actor.

    Each action is a normal audited transition, guarded by compare-and-set on the version the
    sweep read, so several sweepers may run at once: a case is acted on by one of them only.
    Running it twice at the same instant does nothing the second time. ``now`` evaluates (and
    acts) as of another instant; ``dry_run`` only reports what is due.
    """
    at = (now or engine._now()).astimezone(UTC)
    numbers = engine.store.due_numbers(at, limit)
    actions: list[SweepAction] = []
    previous = engine._clock_override
    engine._clock_override = at
    try:
        for i, number in enumerate(numbers):
            stored = engine.store.get(number)
            if stored is not None:
                actions.extend(_sweep_case(engine, stored, at, dry_run))
            if progress is not None:
                progress(i + 1, len(numbers))
    finally:
        engine._clock_override = previous
    return SweepReport(at, dry_run, len(numbers), tuple(actions))

def _sweep_case(engine: Engine, stored: StoredCase, at: datetime, dry_run: bool) -> list[SweepAction]:
    case = stored.case
    policy = engine.policy_for(case.policy.hash)
    done: list[SweepAction] = []
    for action in due_actions(case, policy, at):
        if dry_run:
            done.append(action)
            continue
        try:
            if action.kind == "breach":
                case = _record_breach(engine, case, policy, action.name)
                done.append(replace(action, outcome="applied"))
                continue
            timer = policy.timer(case.kind, case.state)
            data = {"timer": case.state, **({"note": timer.note} if timer and timer.note else {})}
            try:
                case = engine.fire(case.number, action.name, actor=Actor.system(), data=data,
                                 expected_version=case.version)
                done.append(replace(action, outcome="applied"))
            except TransitionDenied:
                # Refused by the rules: note it so this stay in the state is not retried every sweep.
                current = engine.get(case.number)
                case = _record_breach(engine, current, policy, None, {"timer_refused": timer_token(case)})
                done.append(replace(action, outcome="refused"))
        except ConcurrentUpdate:
            done.append(replace(action, outcome="skipped"))
            break  # someone else moved the case: its next sweep decides afresh
    return done

def _record_breach(engine: Engine, case: Case, policy: PolicySet, breach: str | None,
               extra: Mapping[str, Any] | None = None) -> Case:
    """Append an applied ``sla_breach`` entry (the state does not change) and return the case."""
    data = F.normalize({**(breach_data(case, policy, breach) if breach else {}), **(extra or {})})
    with engine.store.transaction() as tx:
        stored = tx.get(case.number)
        if stored is None or stored.case.version != case.version:
            raise ConcurrentUpdate(case.number, case.version, stored.case.version if stored else None)
        now = engine._now()
        verdict = Verdict("sla", True, "sla_breach", f"{breach} deadline missed" if breach else "timer refused",
                          {"breach": breach})
        entry = engine._entry(case.number, stored.last_seq + 1, stored.last_hash, now, BREACH_EVENT, case.state,
                            case.state, "applied", Actor.system(), case.facts.get("channel"), (verdict,),
                            data, policy)
        new = with_deadlines(replace(case, version=case.version + 1, facts=F.merge(case.facts, data),
                                     updated_at=now), policy)
        try:
            tx.apply(stored, new, entry)
        except Lost:
            raise ConcurrentUpdate(case.number, case.version) from None
    return new
