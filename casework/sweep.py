"""The service-clock sweep: fire due timers and mark missed deadlines, each as an audited transition.

Due cases are handled ``batch`` at a time, a transaction per batch: the batch's cases are read with
one statement, each case's actions are decided and stepped in memory one after another (exactly the
entries ``Engine.fire`` and a breach mark would write, chained), and each case is then written with
one compare-and-set on the version that was read, the batch's entries with one ``executemany``. A
case another writer changed meanwhile is skipped whole (nothing of it is written); rows are updated
in id order, so sweepers running at once on PostgreSQL cannot deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from casework import facts as F
from casework import intake
from casework.decide import decide
from casework.domain import Actor, AuditEntry, Case, Verdict
from casework.errors import InvalidInput, Unreadable, WriteConflict
from casework.policybook import PolicyBook
from casework.sla import BREACH_EVENT, SweepAction, SweepReport, breach_data, due_actions, timer_token
from casework.store import Appended, Store, StoredCase, Transaction
from casework.transition import EntryTexts, step

SYSTEM = Actor.system()


def sweep(store: Store, policies: PolicyBook, at: datetime, *, present: datetime | None = None, dry_run: bool = False,
          limit: int | None = None, progress: Callable[[int, int], None] | None = None, batch: int = 200
          ) -> SweepReport:
    """Fire every timer due at ``at`` and mark every deadline breached by then, as the ``system`` actor.

    Each action is a normal audited transition at ``at``, guarded by compare-and-set on the version
    the sweep read, so several sweepers may run at once: a case is acted on by one of them only.
    Running it twice at the same instant does nothing the second time. ``dry_run`` only reports what
    is due. ``batch`` cases are handled per transaction; ``progress(done, total)`` after each batch.
    A sweep that writes acts no later than ``present`` (the clock's now, when given): its entries would be
    dated ahead of the ones written after them, and a trail's times must not go backwards. For the same
    reason a sweep that writes as of an earlier instant is refused if a due case's trail already has an
    entry later than it (nothing is written).
    """
    if present is not None and at > present and not dry_run:
        raise InvalidInput(f"now {at.isoformat()} is later than the present ({present.astimezone(UTC).isoformat()})"
                           "; a sweep that writes acts at the present or earlier; use a dry run to see what "
                           "will be due", field="now", value=at)
    F.check_whole(batch, "batch", 1)
    numbers = store.due_numbers(at, limit)
    past = not dry_run and present is not None and at < present
    if past:
        not_before(store.last_entry_times(numbers), at)
    actions: list[SweepAction] = []
    for lo in range(0, len(numbers), batch):
        chunk = numbers[lo:lo + batch]
        actions.extend(_due(store, policies, chunk, at) if dry_run else _sweep_chunk(store, policies, chunk, at, past))
        if progress is not None:
            progress(lo + len(chunk), len(numbers))
    return SweepReport(at, dry_run, len(numbers), tuple(actions))


def not_before(last: Mapping[str, datetime], at: datetime) -> None:
    """InvalidInput when a case's newest entry is later than ``at``: entries written at ``at`` would date its
    trail backwards."""
    later = sorted((t, n) for n, t in last.items() if t > at)
    if later:
        t, number = later[-1]
        raise InvalidInput(f"now {at.isoformat()} is earlier than the last entry of case {number} "
                           f"({t.astimezone(UTC).isoformat()}); a sweep that writes acts no earlier than the last "
                           "entry of a case it acts on (a trail's times never go backwards); use a later --now, or "
                           "a dry run", field="now", value=at)


def _due(store: Store, policies: PolicyBook, numbers: Sequence[str], at: datetime) -> list[SweepAction]:
    """What a sweep would do to these cases (read only)."""
    due: list[SweepAction] = []
    for number in numbers:
        stored = store.get(number)
        if stored is not None:
            due.extend(due_actions(stored.case, policies.version(stored.case.policy.hash), at))
    return due


def _sweep_chunk(store: Store, policies: PolicyBook, numbers: Sequence[str], at: datetime, past: bool = False
                 ) -> list[SweepAction]:
    """One batch; if it fails (a damaged row, an altered policy, a database error), the batch again
    case by case, so the cases before the one at fault are swept as they would be one at a time;
    then the failure is raised."""
    try:
        with store.transaction() as tx:
            if past:  # again where it is written: another writer may have written since the first look
                not_before(tx.last_entry_times(numbers), at)
            return _sweep_batch(tx, policies, numbers, at)
    except InvalidInput:
        raise
    except Unreadable as exc:
        if len(numbers) == 1:
            raise Unreadable(f"{exc}; run 'casework verify'", url=store.url) from None
    except (ValueError, TypeError, KeyError) as exc:
        if len(numbers) == 1:  # a stored value the rules cannot read: name the case
            raise Unreadable(f"case {numbers[0]}: damaged row ({exc}); run 'casework verify'", url=store.url) from None
    except Exception:
        if len(numbers) == 1:
            raise
    done: list[SweepAction] = []
    for number in numbers:
        done.extend(_sweep_chunk(store, policies, [number], at, past))
    return done


def _sweep_batch(tx: Transaction, policies: PolicyBook, numbers: Sequence[str], at: datetime) -> list[SweepAction]:
    """Act on one batch of due cases in one transaction; the actions in ``numbers`` order.

    The batch's compare-and-sets go in one ``executemany``; if any lost (another writer changed a case
    since it was read), the batch is rolled back and swept case by case, where only that case is
    skipped (it decides afresh next sweep).
    """
    done: dict[str, list[SweepAction]] = {}
    updates: list[tuple[StoredCase, Case, int, str]] = []
    written: list[Appended] = []
    for stored in sorted(tx.get_many(numbers).values(), key=lambda s: s.id):  # one lock order for every sweeper
        chain = _Chain(stored, policies, at)
        acted = chain.act()
        if chain.entries:
            done[stored.case.number] = acted
            updates.append((stored, chain.case, chain.seq, chain.hash))
            written.extend((stored.id, entry, texts, after) for entry, texts, after in chain.entries)
    try:
        tx.update_cases(updates)
    except WriteConflict:
        if len(updates) > 1:
            raise
        return [a.outcome_of("skipped") for a in done.popitem()[1][:1]]
    tx.append(written)
    return [a for number in numbers for a in done.get(number, ())]


class _Chain:
    """One case's due actions stepped in memory, one after another, as the audit entries they make."""

    def __init__(self, stored: StoredCase, policies: PolicyBook, at: datetime) -> None:
        self.case: Case = stored.case
        self.policy = policies.version(stored.case.policy.hash)
        self.at = at
        self.seq = stored.last_seq
        self.hash = stored.last_hash
        self.entries: list[tuple[AuditEntry, EntryTexts, Case]] = []  # each with the case after it

    def act(self) -> list[SweepAction]:
        done: list[SweepAction] = []
        for action in due_actions(self.case, self.policy, self.at):
            if action.state != self.case.state:  # an earlier action (a missed deadline's event) moved the case
                done.append(action.outcome_of("skipped"))
            elif action.kind == "breach":
                self.mark(breach_data(self.case, self.policy, action.name), action.name)
                done.append(action.outcome_of("applied"))
            elif action.kind == "event":
                fired = self.fire(action.name, f"{self.case.state} deadline missed")
                done.append(action.outcome_of("applied" if fired else "refused"))
            else:
                token = timer_token(self.case)
                timer = self.policy.timer(self.case.kind, self.case.state)
                if self.fire(action.name, timer.note if timer else None):
                    done.append(action.outcome_of("applied"))
                else:
                    # Refused by the rules: note it so this stay in the state is not retried every sweep.
                    self.mark({"timer_refused": token}, None)
                    done.append(action.outcome_of("refused"))
        return done

    def fire(self, event: str, note: str | None) -> bool:
        """What ``Engine.fire(number, event, actor=system)`` records: applied (True) or refused."""
        case = self.case
        given = {"timer": case.state, **({"note": note} if note else {})}
        data = intake.event_data(self.policy, case.kind, event, given, SYSTEM)
        decision = decide(self.policy, case, event, SYSTEM, data, self.at)
        self._step(event, decision.to_state if decision.allowed else None, decision.verdicts, data)
        return decision.allowed

    def mark(self, data: Mapping[str, Any], breach: str | None) -> None:
        """An applied ``sla_breach`` entry (the state does not change)."""
        verdict = Verdict("sla", True, "sla_breach", f"{breach} deadline missed" if breach else "timer refused",
                          {"breach": breach})
        self._step(BREACH_EVENT, self.case.state, (verdict,), data)  # made by the system, in normal form

    def _step(self, event: str, to_state: str | None, verdicts: Sequence[Verdict], data: Mapping[str, Any]) -> None:
        t = step(self.case, self.seq, self.hash, event=event, to_state=to_state, verdicts=verdicts, actor=SYSTEM,
                 data=data, now=self.at, policy=self.policy)
        self.case, self.seq, self.hash = t.case, t.entry.seq, t.entry.hash
        self.entries.append((t.entry, t.texts, t.case))
