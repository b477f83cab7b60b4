"""Re-pinning open cases to another policy version, each move an audited ``adopt_policy`` entry.

From the move on, the case is decided by the new version. Deadlines already promised (first
response, resolution) stand; the state's timer follows the new policy. Refused: a closed case and a
customer (InvalidInput), and an actor that the new version's ``operators`` section does not grant
the role it claims (TransitionDenied for one case; InvalidInput before a batch, see
:func:`check_adopter`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework import intake
from casework.domain import Actor, Case, Decision, PolicyRef, Verdict
from casework.errors import CaseNotFound, ConcurrentUpdate, InvalidInput, TransitionDenied
from casework.machines import check_filters, spec
from casework.policybook import PolicyBook
from casework.store import Store
from casework.transition import step
from casework.values import suggest

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.simulate import SimulationReport

ADOPT_EVENT = "adopt_policy"  # an engine-level event: moves the pinned policy, never the state
PROGRESS_EVERY = 500  # cases between two progress calls
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AdoptReport:
    """What :func:`adopt_open_cases` did: cases moved, cases already on the policy, cases left alone."""

    policy: PolicyRef
    adopted: tuple[str, ...]
    already: int
    skipped: tuple[tuple[str, str], ...] = ()  # (number, why): closed or changed meanwhile

    def to_json(self) -> dict[str, Any]:
        return {"policy": self.policy.to_json(), "adopted": len(self.adopted), "numbers": list(self.adopted),
                "already_on_policy": self.already,
                "skipped": [{"number": n, "reason": why} for n, why in self.skipped]}


def check_adopter(policy: PolicySet, actor: Actor) -> None:
    """Refuse (InvalidInput) an actor who may not move cases to ``policy``: a customer, or one whose
    role ``policy``'s operators section does not grant (the adopted version decides who may adopt it)."""
    check_operator(policy, actor, "move a case to another policy version", "to adopt it")


def check_operator(policy: PolicySet, actor: Actor, doing: str, purpose: str) -> None:
    """Refuse (InvalidInput) an actor who may not act on ``policy`` as a whole (adopt it, publish it): a
    customer, or one whose role ``policy``'s operators section does not grant."""
    intake.check_actor(actor, policy)
    if actor.role == "customer":
        raise InvalidInput(f"a customer may not {doing}", field="role")
    not_granted = policy.grant_verdict(actor)
    if not_granted is not None:
        raise InvalidInput(f"{not_granted.message}; {purpose}, {policy.name}'s operators section must grant it",
                           field="actor")


def cannot_take(policy: PolicySet, case: Case) -> str | None:
    """Why ``policy`` cannot decide ``case`` from where it stands (None when it can): it has no rules for the
    case's kind, or no event of that kind from the case's state (the case would be stuck there)."""
    kind = policy.document.kinds.get(case.kind)
    if kind is None:
        return f"policy {policy.label} ({policy.ref.short}) has no rules for {case.kind} cases"
    machine = spec(case.kind)
    if case.state not in machine.final and not set(machine.available(case.state)) & set(kind.events):
        return (f"policy {policy.label} ({policy.ref.short}) has no {case.kind} event from state {case.state}: "
                "the case would be stuck there")
    return None


def adopt(store: Store, policies: PolicyBook, number: str, policy: PolicySet, *, actor: Actor,
          now: datetime) -> Case:
    """Re-pin the open case ``number`` to ``policy`` in one transaction (unchanged if already on it)."""
    intake.check_actor(actor, policy)
    if actor.role == "customer":
        raise InvalidInput("a customer may not move a case to another policy version", field="role")
    policies.remember(policy)
    with store.transaction() as tx:
        stored = tx.get(number)
        if stored is None:
            raise CaseNotFound(number, suggest(number, tx.numbers_like(number), 3))
        case = stored.case
        if case.closed:
            raise InvalidInput(f"case {number} is closed; only open cases can move to another policy version",
                               field="number", value=number)
        if case.policy.hash == policy.hash:
            return case
        why = cannot_take(policy, case)
        if why is not None:
            raise InvalidInput(f"case {number} cannot move: {why}", field="number", value=number)
        not_granted = policy.grant_verdict(actor)
        data = {"policy_from": case.policy.hash, "policy_to": policy.hash}
        if not_granted is None:
            verdict = Verdict("policy", True, "policy_adopted", f"moved from policy {case.policy.label} "
                              f"({case.policy.short}) to {policy.label} ({policy.ref.short})",
                              {**data, "label_from": case.policy.label, "label_to": policy.label})
            t = step(case, stored.last_seq, stored.last_hash, event=ADOPT_EVENT, to_state=case.state,
                     verdicts=(verdict,), actor=actor, data=data, now=now, policy=policy)
            tx.update_case(stored, t.case, t.entry.seq, t.entry.hash)
        else:  # refused: on the case's trail like every refused attempt, under the version it stays on
            t = step(case, stored.last_seq, stored.last_hash, event=ADOPT_EVENT, to_state=None,
                     verdicts=(not_granted,), actor=actor, data=data, now=now,
                     policy=policies.version(case.policy.hash))
            tx.extend_trail(stored, t.entry.seq, t.entry.hash)
        tx.append([(stored.id, t.entry, t.texts, t.case)])
    if not_granted is not None:
        raise TransitionDenied(Decision(case.kind, ADOPT_EVENT, case.state, None, (not_granted,), policy.ref), number)
    return t.case


@dataclass(frozen=True)
class AdoptionPlan:
    """What moving open cases to ``policy`` would do, before anything is moved: who moves them, which cases
    (open, of the kind and state asked, not on ``policy`` yet) and how their decisions would change."""

    policy: PolicyRef
    actor: Actor
    numbers: tuple[str, ...]
    simulation: SimulationReport


def plan(store: Store, policies: PolicyBook, new_policy: PolicySet, *, actor: Actor, now: datetime,
         kind: str | None = None, state: str | None = None, progress: Progress | None = None) -> AdoptionPlan:
    """Check who adopts (:func:`check_adopter`), choose the open cases, and simulate the new version on them."""
    from casework.simulate import simulate

    check_adopter(new_policy, actor)
    numbers = open_numbers(store, kind=kind, state=state, not_on=new_policy.hash)
    report = simulate(store, policies, new_policy, now, kind=kind, state=state, progress=progress)
    return AdoptionPlan(new_policy.ref, actor, tuple(numbers), report)


def open_numbers(store: Store, *, kind: str | None = None, state: str | None = None,
                 not_on: str | None = None) -> list[str]:
    """Numbers of the open cases matching ``kind``/``state`` (and not pinned to the policy hash ``not_on``)."""
    check_filters(kind, state)
    return [c.number for c in store.iter_open(kind, state) if c.policy.hash != not_on]


def adopt_open_cases(store: Store, policies: PolicyBook, new_policy: PolicySet, *, actor: Actor,
                     now: Callable[[], datetime], kind: str | None = None, state: str | None = None,
                     numbers: Iterable[str] | None = None, progress: Progress | None = None) -> AdoptReport:
    """Re-pin open cases (those given, else every open one of ``kind``/``state``) to ``new_policy``.

    Each case gets its own audited entry and transaction (see :func:`adopt`); a case closed or
    changed by someone else meanwhile is skipped with the reason, never half-moved.
    """
    check_adopter(new_policy, actor)
    chosen = list(numbers) if numbers is not None else open_numbers(store, kind=kind, state=state)
    adopted: list[str] = []
    skipped: list[tuple[str, str]] = []
    already = 0
    for i, number in enumerate(chosen):
        current = store.get(number)
        try:
            if current is None:
                raise CaseNotFound(number)
            if current.case.closed:
                skipped.append((number, "closed" if numbers is not None else "closed meanwhile"))
            elif current.case.policy.hash == new_policy.hash:
                already += 1
            elif (why := cannot_take(new_policy, current.case)) is not None:
                skipped.append((number, why))
            else:
                adopt(store, policies, number, new_policy, actor=actor, now=now())
                adopted.append(number)
        except ConcurrentUpdate:
            skipped.append((number, "changed by someone else meanwhile; run adopt again"))
        except InvalidInput:
            again = store.get(number)
            if again is None or not again.case.closed:
                raise
            skipped.append((number, "closed meanwhile"))
        if progress is not None and ((i + 1) % PROGRESS_EVERY == 0 or i + 1 == len(chosen)):
            progress(i + 1, len(chosen))
    return AdoptReport(new_policy.ref, tuple(adopted), already, tuple(skipped))
