"""The service-clock sweep: fire due timers and mark missed deadlines, each as an audited transition.

Due cases are handled ``batch`` at a time, a transaction per batch: the batch's cases are read with
one statement, each case's actions are decided and applied in memory one after another (exactly the
entries ``Engine.fire`` and a breach mark would write, chained), and each case is then written with
one compare-and-set on the version that was read, its new entries with one ``executemany`` for the
batch. A case another writer changed meanwhile is skipped whole (nothing of it is written); rows are
updated in id order, so sweepers running at once on PostgreSQL cannot deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.domain import Actor, AuditEntry, Case, Verdict
from casework.errors import InvalidInput
from casework.sla import BREACH_EVENT, SweepAction, SweepReport, breach_data, due_actions, next_deadlines, timer_token
from casework.store import Lost, StoredCase, Unreadable

if TYPE_CHECKING:
    from casework.engine import Engine

SYSTEM = Actor.system()


def sweep(engine: Engine, *, now: datetime | None = None, dry_run: bool = False, limit: int | None = None,
          progress: Callable[[int, int], None] | None = None, batch: int = 200) -> SweepReport:
    """Fire every due timer and mark every breached deadline, as the ``system`` actor.

    Each action is a normal audited transition, guarded by compare-and-set on the version the
    sweep read, so several sweepers may run at once: a case is acted on by one of them only.
    Running it twice at the same instant does nothing the second time. ``now`` evaluates (and
    acts) as of another instant; ``dry_run`` only reports what is due. ``batch`` cases are
    handled per transaction; ``progress(done, total)`` is called after each batch.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InvalidInput(f"batch {batch!r} must be a whole number of at least 1", field="batch")
    at = (now or engine._now()).astimezone(UTC)
    numbers = engine.store.due_numbers(at, limit)
    actions: list[SweepAction] = []
    previous = getattr(engine._as_of, "at", None)
    engine._as_of.at = at  # this thread's engine time, for every entry the sweep writes
    try:
        for lo in range(0, len(numbers), batch):
            chunk = numbers[lo:lo + batch]
            actions.extend(_due_now(engine, chunk, at) if dry_run else _sweep_chunk(engine, chunk, at))
            if progress is not None:
                progress(lo + len(chunk), len(numbers))
    finally:
        engine._as_of.at = previous
    return SweepReport(at, dry_run, len(numbers), tuple(actions))


def _due_now(engine: Engine, numbers: Sequence[str], at: datetime) -> list[SweepAction]:
    """What a sweep would do to these cases (read only)."""
    due: list[SweepAction] = []
    for number in numbers:
        stored = engine.store.get(number)
        if stored is not None:
            due.extend(due_actions(stored.case, engine.policy_for(stored.case.policy.hash), at))
    return due


def _sweep_chunk(engine: Engine, numbers: Sequence[str], at: datetime) -> list[SweepAction]:
    """One batch; if it fails (a damaged row, an altered policy, a database error), the batch again
    case by case, so the cases before the one at fault are swept as they would be one at a time;
    then the failure is raised."""
    try:
        return _sweep_batch(engine, numbers, at)
    except (ValueError, TypeError, KeyError) as exc:
        if len(numbers) == 1:  # a stored value the rules cannot read: name the case
            raise Unreadable(f"case {numbers[0]}: damaged row ({exc}); run 'casework verify'",
                             url=engine.store.url) from None
    except Exception:
        if len(numbers) == 1:
            raise
    done: list[SweepAction] = []
    for number in numbers:
        done.extend(_sweep_chunk(engine, [number], at))
    return done


def _sweep_batch(engine: Engine, numbers: Sequence[str], at: datetime) -> list[SweepAction]:
    """Act on one batch of due cases in one transaction; the actions in ``numbers`` order."""
    done: dict[str, list[SweepAction]] = {}
    with engine.store.transaction() as tx:
        found = tx.get_many(numbers)
        written: list[tuple[int, AuditEntry, tuple[str, str] | None]] = []
        for stored in sorted(found.values(), key=lambda s: s.id):  # one lock order for every sweeper
            chain = _Chain(engine, stored)
            acted = chain.act(at)
            if not chain.entries:
                continue
            try:
                tx.update_case(stored, chain.case, chain.seq, chain.hash)
            except Lost:
                # Another writer changed the case since it was read: it decides afresh next sweep.
                done[stored.case.number] = [acted[0].outcome_of("skipped")]
                continue
            done[stored.case.number] = acted
            written.extend((stored.id, entry, texts) for entry, texts in chain.entries)
        tx.append_many(written)
    return [a for number in numbers for a in done.get(number, ())]


class _Chain:
    """One case's due actions applied in memory, one after another, as the audit entries they make."""

    def __init__(self, engine: Engine, stored: StoredCase) -> None:
        self.engine = engine
        self.case: Case = stored.case
        self.policy = engine.policy_for(stored.case.policy.hash)
        self.seq = stored.last_seq
        self.hash = stored.last_hash
        self.entries: list[tuple[AuditEntry, tuple[str, str]]] = []

    def act(self, at: datetime) -> list[SweepAction]:
        done: list[SweepAction] = []
        for action in due_actions(self.case, self.policy, at):
            if action.kind == "breach":
                self.breach(action.name)
                done.append(action.outcome_of("applied"))
                continue
            token = timer_token(self.case)
            if self.fire(action.name):
                done.append(action.outcome_of("applied"))
            else:
                # Refused by the rules: note it so this stay in the state is not retried every sweep.
                self.breach(None, {"timer_refused": token})
                done.append(action.outcome_of("refused"))
        return done

    def fire(self, event: str) -> bool:
        """What ``Engine.fire(number, event, actor=system)`` records: applied (True) or refused."""
        case, engine = self.case, self.engine
        timer = self.policy.timer(case.kind, case.state)
        data = engine._event_data(case, event, {"timer": case.state,
                                                **({"note": timer.note} if timer and timer.note else {})}, SYSTEM)
        decision = engine._decide(case, event, SYSTEM, data)
        to_state = decision.to_state if decision.allowed else None
        self._append(event, to_state, "applied" if decision.allowed else "refused", decision.verdicts, data,
                     data.get("channel") or case.facts.get("channel"))
        if to_state is not None:
            self.case = engine._advance(case, event, to_state, data, engine._now(), self.policy)
        return to_state is not None

    def breach(self, breach: str | None, extra: Mapping[str, Any] | None = None) -> None:
        """An applied ``sla_breach`` entry (the state does not change)."""
        case = self.case
        data = F.normalize({**(breach_data(case, self.policy, breach) if breach else {}), **(extra or {})})
        verdict = Verdict("sla", True, "sla_breach", f"{breach} deadline missed" if breach else "timer refused",
                          {"breach": breach})
        self._append(BREACH_EVENT, case.state, "applied", (verdict,), data, case.facts.get("channel"))
        facts = F.merge(case.facts, data)
        timer_due, due = next_deadlines(case, self.policy, facts)  # only the facts change what is due
        # Built directly (not dataclasses.replace, which inspects the fields on every call).
        self.case = Case(number=case.number, kind=case.kind, state=case.state, version=case.version + 1,
                         facts=facts, policy=case.policy, opened_at=case.opened_at, updated_at=self.engine._now(),
                         first_response_due=case.first_response_due, responded_at=case.responded_at, due_at=due,
                         closed=case.closed, resolution_due=case.resolution_due, timer_due=timer_due,
                         state_since=case.state_since)

    def _append(self, event: str, to_state: str | None, outcome: str, verdicts: tuple[Verdict, ...],
                data: Mapping[str, Any], channel: str | None) -> None:
        self.seq += 1
        entry, texts = self.engine._entry_and_text(
            self.case.number, self.seq, self.hash, self.engine._now(), event, self.case.state, to_state, outcome,
            SYSTEM, channel, verdicts, data, self.policy, written_only=True)
        self.hash = entry.hash
        self.entries.append((entry, texts))
