"""The desk's work on a case, mixed into :class:`casework.Engine`: reject for a reason, notes, assignment, priority.

What it needs of the engine is its store, its policy versions, its clock and its public reading and firing
methods; the entries themselves are written by :mod:`casework.desk`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework.domain import Actor, Case, Note
from casework.machines import REJECT, spec
from casework.values import one_of

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policybook import PolicyBook
    from casework.store import Store


class DeskWork:
    """Mixed into :class:`casework.Engine` (see the module docstring)."""

    store: Store
    policies: PolicyBook

    def now(self) -> datetime:  # pragma: no cover - the engine's
        raise NotImplementedError

    def get(self, number: str, *, reveal: bool = False) -> Case:  # pragma: no cover - the engine's
        raise NotImplementedError

    def policy_for(self, policy_hash: str) -> PolicySet:  # pragma: no cover - the engine's
        raise NotImplementedError

    def fire(self, number: str, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None,
             key: str | None = None, expected_version: int | None = None,
             retries: int = 0) -> Case:  # pragma: no cover - the engine's
        raise NotImplementedError

    def reject(self, number: str, reason: str, *, actor: Actor, note: str | None = None,
               key: str | None = None) -> Case:
        """Fire ``reject`` naming ``reason``, one of the policy's rejection reasons (recorded as the case's
        ``rejection`` fact; :meth:`rejection_message` composes what the customer is told)."""
        return self.fire(number, REJECT, actor=actor, data={"rejection": reason, **({"note": note} if note else {})},
                         key=key)

    def rejection_message(self, number: str, *, audience: str = "customer", lang: str | None = None) -> str | None:
        """What ``audience`` is told about the rejection of case ``number``, from its pinned policy's rejection
        reasons, in ``lang`` (default: the case's ``locale``, else English); None when not rejected for one."""
        from casework.messages import AUDIENCES, lang_for, rejection

        one_of(audience, AUDIENCES, "audience", field="audience")
        case = self.get(number, reveal=True)
        code = case.facts.get("rejection")
        if code is None or case.state not in spec(case.kind).settled:
            return None
        return rejection(self.policy_for(case.policy.hash), str(code), audience, lang_for(case.facts, lang),
                         context={"number": case.number})

    def note(self, number: str, text: str, *, actor: Actor, audience: str | None = None) -> Case:
        """Add a note to the case's thread: an audited ``note`` entry that changes neither state nor facts.
        ``audience``: ``internal`` (the desk only; the default for staff) or ``customer`` (the customer
        sees it; always so for a customer's own note). See :mod:`casework.desk`."""
        from casework import desk

        data = desk.note_data(text, audience, actor)
        return desk.write(self.store, self.policies, number, desk.NOTE_EVENT, data, actor=actor, now=self.now(),
                          judge=desk.may_note)

    def assign(self, number: str, to: str | None, *, actor: Actor) -> Case:
        """Assign the case to operator ``to`` (None: unassign it): an audited ``assign`` entry; customers may
        not. The assignee is the case's ``assignee`` (``find(assignee=...)``, ``find(unassigned=True)``)."""
        from casework import desk

        return desk.write(self.store, self.policies, number, desk.ASSIGN_EVENT, desk.assign_data(to), actor=actor,
                          now=self.now(), judge=desk.may_assign(actor))

    def prioritize(self, number: str, priority: int, *, actor: Actor) -> Case:
        """Set the case's priority (0-9, higher is more urgent): an audited ``prioritize`` entry, by the roles the
        policy's ``desk.priority_roles`` names (and those that inherit them)."""
        from casework import desk

        return desk.write(self.store, self.policies, number, desk.PRIORITY_EVENT, desk.priority_data(priority),
                          actor=actor, now=self.now(), judge=desk.may_prioritize(actor))

    def thread(self, number: str, *, audience: str | None = None) -> list[Note]:
        """The case's notes, oldest first: ``note`` entries and events fired with a note (``audience``
        ``customer``: only the notes the customer sees)."""
        from casework.desk import thread

        return thread(self.store.history(self.get(number, reveal=True).number), audience=audience)
