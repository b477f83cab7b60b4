"""The desk's saved views of the queue and the time filters of ``find``, turned into the store's filters.

Four views are built in: ``breaching_soon`` (open cases with a deadline within the policy's ``desk.soon``,
default 2h), ``mine`` (the cases assigned to the acting operator), ``unassigned`` (open cases nobody has)
and ``waiting_on_customer`` (cases in a state the policy's ``waiting_states`` name). A policy declares more
in ``desk.views`` (a view of a built-in's name replaces it). A view's filters fill in the filters not given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from casework.errors import InvalidInput
from casework.values import one_of

if TYPE_CHECKING:
    from casework.policies import PolicySet
    from casework.policies.calendar import Deadline
    from casework.policies.schema import DeskView

BUILTIN_VIEWS = ("breaching_soon", "mine", "unassigned", "waiting_on_customer")


def views(policy: PolicySet) -> dict[str, DeskView]:
    """Every saved view of ``policy`` by name: the built-in four and the policy's own."""
    from casework.policies.schema import DeskView

    desk = policy.document.desk
    return {"breaching_soon": DeskView(due_within=desk.soon), "mine": DeskView(mine=True),
            "unassigned": DeskView(unassigned=True), "waiting_on_customer": DeskView(waiting=True), **desk.views}


def waiting_states(policy: PolicySet) -> tuple[tuple[str, str], ...]:
    """The ``(kind, state)`` pairs where the desk waits on the customer."""
    return tuple((kind, s) for kind, kp in policy.document.kinds.items() for s in kp.waiting_states)


def store_filters(policy: PolicySet, at: datetime, filters: dict[str, Any], *, view: str | None, me: str | None,
                  overdue: bool, due_within: str | timedelta | Deadline | None, waiting: bool) -> dict[str, Any]:
    """``filters`` (``Store.find``'s) with the view's filled in and the time filters resolved at ``at``:
    ``overdue`` is due by ``at``, ``due_within`` (``2h``, ``'4 service hours'`` or a timedelta) due by then
    from ``at``; ``waiting``: in a waiting state. ``me``: whose cases ``mine`` means."""
    from casework.policies.calendar import Deadline

    out = dict(filters)
    if view is not None:
        known = views(policy)
        chosen = known[one_of(view, known, "view", field="view")]
        for name in ("kind", "state", "queue", "channel"):
            if out.get(name) is None:
                out[name] = getattr(chosen, name)
        if chosen.mine:
            if not me:
                raise InvalidInput(f"the view {view!r} shows the acting operator's cases; give the actor",
                                   field="actor")
            out["assignee"] = out.get("assignee") or me
        out["unassigned"] = out.get("unassigned") or chosen.unassigned
        waiting, overdue = waiting or chosen.waiting, overdue or chosen.overdue
        if due_within is None and chosen.due_within is not None:
            due_within = chosen.due_within
    by = out.get("due_before")
    if overdue:
        by = at if by is None else min(by, at)
    if due_within is not None:
        if isinstance(due_within, timedelta):
            within = Deadline(due_within)
        elif isinstance(due_within, Deadline):
            within = due_within
        else:
            within = Deadline.parse(due_within, "due_within")
        until = policy.calendar.deadline(at, within)
        by = until if by is None else min(by, until)
    out["due_before"] = by
    if waiting:
        out["states"] = waiting_states(policy)
    return out


__all__ = ["BUILTIN_VIEWS", "store_filters", "views", "waiting_states"]
