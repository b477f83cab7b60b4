"""The desk's own entries on a case: notes and assignments, each audited, none moving the case.

A note (``note``) or an assignment (``assign``) is an applied entry of the case's trail that keeps the
case in its state, written by :func:`casework.transition.step` like every other entry (so
:mod:`casework.replay` recomputes what it changes); a refused one is on the trail too, with why not.
The notes thread is read back from the trail (:func:`thread`): the ``note`` entries and every applied
event that carried a note (``fire ... --note``, a timer's note).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from casework import facts as F
from casework import intake
from casework.decide import owner_verdict
from casework.domain import Actor, AuditEntry, Case, Decision, Verdict
from casework.errors import CaseNotFound, InvalidInput, TransitionDenied
from casework.transition import step
from casework.values import one_of, suggest

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policybook import PolicyBook
    from casework.store import Store

NOTE_EVENT = "note"
ASSIGN_EVENT = "assign"
PRIORITY_EVENT = "prioritize"
PRIORITIES = range(10)  # 0-9, as an escalation sets them (higher: more urgent)
INTERNAL, TO_CUSTOMER = "internal", "customer"
NOTE_AUDIENCES = (INTERNAL, TO_CUSTOMER)
Judge = Callable[["PolicySet", Case], list[Verdict]]


@dataclass(frozen=True, slots=True)
class Note:
    """One note of a case's thread: the entry it was written with (a ``note`` of its own, or an event's
    ``--note``), who wrote it, and whom it is for (``internal`` or ``customer``); ``reply``: the policy's canned
    reply it was written out from, if it was one."""

    seq: int
    at: datetime
    event: str
    actor: str
    role: str
    audience: str
    text: str
    reply: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "event": self.event, "actor": self.actor,
                "role": self.role, "audience": self.audience, "text": self.text, "reply": self.reply}



def write(store: Store, policies: PolicyBook, number: str, event: str,
          data: dict[str, object] | Callable[[PolicySet, Case], dict[str, object]], *, actor: Actor,
          now: datetime, judge: Judge) -> Case:
    """Record the desk's ``event`` with ``data`` on case ``number`` in one transaction: applied (the case
    stays in its state) when every verdict of ``judge`` and the policy's grant pass, else refused on the
    trail and raised as :class:`TransitionDenied`."""
    with store.transaction() as tx:
        stored = tx.get(number)
        if stored is None:
            raise CaseNotFound(number, suggest(number, tx.numbers_like(number), 3))
        case = stored.case
        policy = policies.version(case.policy.hash)
        if callable(data):  # made from the pinned policy and the case (a canned reply)
            data = data(policy, case)
        intake.check_actor(actor, policy)
        not_granted = policy.grant_verdict(actor)
        refusals = [v for v in (not_granted, owner_verdict(case, actor)) if v is not None]
        verdicts = [*refusals, *judge(policy, case)]
        allowed = all(v.passed for v in verdicts)
        t = step(case, stored.last_seq, stored.last_hash, event=event, to_state=case.state if allowed else None,
                 verdicts=verdicts, actor=actor, data=data, now=now, policy=policy)
        if allowed:
            tx.update_case(stored, t.case, t.entry.seq, t.entry.hash)
        else:
            tx.extend_trail(stored, t.entry.seq, t.entry.hash)
        tx.append([(stored.id, t.entry, t.texts, t.case)])
    if not allowed:
        raise TransitionDenied(Decision(case.kind, event, case.state, None, tuple(verdicts), policy.ref), number)
    return t.case


def note_data(text: str, audience: str | None, actor: Actor) -> dict[str, object]:
    """A note's entry data, checked: some text, and whom it is for (default: the customer for a customer's
    own note, else the desk only); a customer's note is always one the customer sees."""
    F.check_text(text, "note", F.MAX_TEXT)
    if not text.strip():
        raise InvalidInput("a note needs some text", field="note", value=text)
    chosen = audience or (TO_CUSTOMER if actor.role == "customer" else INTERNAL)
    one_of(chosen, NOTE_AUDIENCES, "note audience", field="audience")
    if actor.role == "customer" and chosen != TO_CUSTOMER:
        raise InvalidInput("a customer's note is one the customer sees; it cannot be internal", field="audience",
                           value=chosen)
    return {"note": text, "audience": chosen}


def reply_data(code: str, lang: str | None, actor: Actor) -> Callable[[PolicySet, Case], dict[str, object]]:
    """A canned reply's entry data, made from the case's pinned policy: the reply ``code`` (one of its
    ``replies:``) written out in ``lang`` (default: the case's ``locale``), a note the customer sees."""
    from casework.messages import lang_for, language, reply

    if actor.role == "customer":
        raise InvalidInput("a canned reply is the desk's; a customer writes a note", field="reply", value=code)

    def data(policy: PolicySet, case: Case) -> dict[str, object]:
        replies = policy.document.replies
        if not replies:
            raise InvalidInput(f"reply {code!r}: the case's policy declares no replies (a 'replies:' section)",
                               field="reply", value=code)
        one_of(code, replies, "reply", field="reply")
        chosen = language(policy, lang) if lang is not None else lang_for(case.facts)
        text = reply(policy, code, chosen, context={**case.facts, "number": case.number})
        return {**note_data(text, TO_CUSTOMER, actor), "reply": code, "reply_lang": chosen}
    return data


def may_note(policy: PolicySet, case: Case) -> list[Verdict]:
    """Anyone with a role of the policy may add to the thread of a case they may see."""
    return [Verdict("thread", True, None, "notes may be written by every role", {})]


def assign_data(to: str | None) -> dict[str, object]:
    """An assignment's entry data: the operator it goes to (None: nobody)."""
    if to is not None:
        F.check_text(to, "assignee", F.MAX_ID)
        if not to.strip():
            raise InvalidInput("an assignee needs an id (or none, to unassign)", field="assignee", value=to)
    return {"assignee": to}


def may_assign(actor: Actor) -> Judge:
    """The desk assigns cases (every role but the customer)."""
    def judge(policy: PolicySet, case: Case) -> list[Verdict]:
        ok = actor.role != "customer"
        return [Verdict("assign", ok, None if ok else "role_not_permitted",
                        f"role {actor.role} {'may' if ok else 'may not'} assign cases",
                        {"role": actor.role})]
    return judge


def priority_data(priority: int) -> dict[str, object]:
    """A priority's entry data: a whole number from 0 to 9."""
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise InvalidInput(f"priority {priority!r} is not accepted; a priority is a whole number from 0 to 9",
                           field="priority", value=str(priority))
    return {"priority": priority}


def may_prioritize(actor: Actor) -> Judge:
    """The roles the policy's ``desk.priority_roles`` names set priorities."""
    def judge(policy: PolicySet, case: Case) -> list[Verdict]:
        allowed = policy.document.desk.priority_roles
        ok = any(policy.roles.acts_as(actor.role, r) for r in allowed)
        return [Verdict("priority_roles", ok, None if ok else "role_not_permitted",
                        f"role {actor.role} {'may' if ok else 'may not'} set a priority"
                        + ("" if ok else f"; allowed: {', '.join(allowed) or 'no role'}"),
                        {"role": actor.role, "allowed": list(allowed)})]
    return judge


def thread(entries: Iterable[AuditEntry], *, audience: str | None = None) -> list[Note]:
    """The notes of a trail, oldest first (only those ``audience`` sees, if given: the customer sees the
    notes for the customer, the desk every note)."""
    if audience is not None:
        one_of(audience, NOTE_AUDIENCES, "note audience", field="audience")
    notes = []
    for e in entries:
        text = e.data.get("note")
        if e.outcome != "applied" or not isinstance(text, str):
            continue
        whom = str(e.data.get("audience") or (TO_CUSTOMER if e.role == "customer" else INTERNAL))
        if audience in (None, INTERNAL) or whom == audience:
            reply = e.data.get("reply")
            notes.append(Note(e.seq, e.at, e.event, e.actor, e.role, whom, text,
                              reply if isinstance(reply, str) else None))
    return notes


__all__ = ["ASSIGN_EVENT", "INTERNAL", "NOTE_AUDIENCES", "NOTE_EVENT", "PRIORITY_EVENT", "TO_CUSTOMER", "assign_data",
           "may_assign", "may_note", "may_prioritize", "note_data", "priority_data", "reply_data", "thread",
           "write"]
