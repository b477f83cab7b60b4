"""The desk's work on a case, mixed into :class:`casework.Engine`: reject for a reason, notes, assignment, priority.

What it needs of the engine is its store, its policy versions, its clock and its public reading and firing
methods; the entries themselves are written by :mod:`casework.desk`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework.desk import Note
from casework.domain import Actor, Case
from casework.engine_parts import EngineParts
from casework.errors import InvalidInput
from casework.machines import REJECT, spec
from casework.values import one_of

if TYPE_CHECKING:
    from casework.bulk_actions import BulkReport


class DeskWork(EngineParts):
    """Mixed into :class:`casework.Engine` (see the module docstring)."""

    def bulk_fire(self, /, event: str, *, actor: Actor, data: Mapping[str, Any] | None = None, key: str | None = None,
                  apply: bool = False, **filters: Any) -> BulkReport:
        """Fire ``event`` on every case the filters of :meth:`find` select (``kind=``, ``state=``, ``queue=``,
        ``view=``, ``text=``, ...), each decided and audited on its own; ``apply=False`` (the default) only
        previews each case's decision. ``key`` names the bulk action (default: one derived from the event,
        the filters and the data): run again under the same key it applies nothing twice (see
        :mod:`casework.bulk_actions`)."""
        import json

        from casework import bulk_actions as B

        B.check_filters(filters)
        if not any(v not in (None, False, "") for k, v in filters.items() if k not in ("now", "me")):
            raise InvalidInput("a bulk action needs at least one filter (kind, state, queue, view, ...); it never "
                               "selects every case by default", field="filters")
        key = key or B.bulk_key(event, filters, data)
        F.check_text(key, "key", F.MAX_ID - 60)  # room for ':' and the case number in each case's key
        cases = self.find(**filters, limit=None, reveal=True)

        def remembered(case_key: str) -> str | None:
            found = self.store.idempotent_result(actor.id, case_key, "")
            return None if found is None else str(json.loads(found[2])["outcome"])

        return B.bulk_fire(cases, event, actor=actor, data=data, key=key, apply=apply, remembered=remembered,
                           check=lambda n: self.check(n, event, actor=actor, data=data),
                           fire=lambda n, k: self.fire(n, event, actor=actor, data=data, key=k))

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

    def reply(self, number: str, code: str, *, actor: Actor, lang: str | None = None) -> Case:
        """Send the customer the policy's canned reply ``code`` (one of its ``replies:``), written out in the
        customer's language (``lang``, else the case's ``locale``, else English) with ``{number}`` and the case's
        facts filled in: an audited ``note`` the customer sees, recording the reply's code and language."""
        from casework import desk

        return desk.write(self.store, self.policies, number, desk.NOTE_EVENT, desk.reply_data(code, lang, actor),
                          actor=actor, now=self.now(), judge=desk.may_note)

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

    def resolution_paused(self, case: Case) -> bool:
        """Whether ``case``'s resolution clock is paused: it is in a state where, by its pinned policy, the desk
        waits on the customer (the deadline resumes, pushed by the time paused, when it leaves)."""
        return self.policy_for(case.policy.hash).waits_on_customer(case.kind, case.state)

    def thread(self, number: str, *, audience: str | None = None) -> list[Note]:
        """The case's notes, oldest first: ``note`` entries and events fired with a note (``audience``
        ``customer``: only the notes the customer sees)."""
        from casework.desk import thread

        return thread(self.store.history(self.get(number, reveal=True).number), audience=audience)
