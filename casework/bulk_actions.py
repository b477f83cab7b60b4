"""Bulk actions: one event fired on every case a filter finds, each case decided and audited on its own.

A bulk action is previewed first (:func:`bulk_fire` with ``apply=False``: every case's decision, nothing
written) and then applied (``apply=True``): each case is fired with :meth:`casework.Engine.fire` under its
own idempotency key, the bulk action's key and the case number (``bulk-3f9c…:RF-20261122-000042``), so
every case gets its own decision and audit entry, and running the same bulk action again applies nothing
twice: a case it already applied to is reported ``already``, and a case it was refused for replays that
refusal (the key remembers it) until the action is run under another key.

The bulk action's key is the caller's, or one derived from the action itself (event, filters, data): the
same command run twice is the same bulk action.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from casework.domain import Actor, Case, Decision
from casework.errors import NOT_AVAILABLE, CaseNotFound, ConcurrentUpdate, InvalidInput, TransitionDenied
from casework.jsontext import canonical
from casework.machines import spec

APPLIED, REFUSED, ALREADY = "applied", "refused", "already"
CONCURRENT = "concurrent_update"  # the reason of a case another writer changed while the bulk action ran
# The filters of Engine.find a bulk action may select cases by (the filters of ``casework list``).
FILTERS = frozenset({"kind", "state", "order_id", "customer", "overdue", "due_before", "queue", "assignee",
                     "unassigned", "channel", "text", "due_within", "view", "now", "waiting", "me"})


@dataclass(frozen=True)
class BulkItem:
    """One case of a bulk action: ``applied`` (or, previewed, would be), ``refused`` with its reasons, or
    ``already`` applied by an earlier run of the same bulk action."""

    number: str
    outcome: str
    to_state: str | None
    reasons: tuple[tuple[str, str], ...] = ()  # (code, message) of each reason it was refused

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "outcome": self.outcome, "to_state": self.to_state,
                "reasons": [{"code": c, "message": m} for c, m in self.reasons]}


@dataclass(frozen=True)
class BulkReport:
    """What a bulk action did (``preview``: would do) to each case it found, and the summary."""

    event: str
    key: str
    preview: bool
    items: tuple[BulkItem, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for i in self.items if i.outcome == outcome)

    @property
    def refused_by_reason(self) -> dict[str, int]:
        """Refused cases per reason code (a case refused for two reasons counts under both), most first."""
        counted = Counter(code for i in self.items if i.outcome == REFUSED for code in dict(i.reasons))
        return dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "key": self.key, "preview": self.preview, "matched": len(self.items),
                "applied": self.count(APPLIED), "refused": self.count(REFUSED), "already": self.count(ALREADY),
                "refused_by_reason": self.refused_by_reason, "cases": [i.to_json() for i in self.items]}


def bulk_key(event: str, filters: Mapping[str, Any], data: Mapping[str, Any] | None) -> str:
    """The key of a bulk action given no key of its own: the same event, filters and data, the same key."""
    text = canonical({"event": event, "filters": {k: str(v) for k, v in filters.items() if v not in (None, False)},
                      "data": json.loads(json.dumps(data or {}, default=str))})
    return "bulk-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_filters(filters: Mapping[str, Any]) -> None:
    unknown = sorted(set(filters) - FILTERS)
    if unknown:
        raise InvalidInput(f"unknown bulk filter {unknown[0]!r}; accepted: {', '.join(sorted(FILTERS))}",
                           field="filters", value=unknown[0])


def case_key(key: str, number: str) -> str:
    return f"{key}:{number}"


def _refused(number: str, decision: Decision) -> BulkItem:
    return BulkItem(number, REFUSED, decision.to_state,
                    tuple((r.reason_code, r.message) for r in decision.reasons))


def bulk_fire(cases: list[Case], event: str, *, actor: Actor, data: Mapping[str, Any] | None, key: str,
              apply: bool, remembered: Callable[[str], str | None],
              check: Callable[[str], Decision], fire: Callable[[str, str], Case]) -> BulkReport:
    """Decide (``apply=False``) or fire (``apply=True``) ``event`` on each of ``cases``, oldest first.

    ``remembered(case_key)``: the outcome an earlier run stored under that case's key (``applied``,
    ``refused``) or None; ``check(number)``: the decision now; ``fire(number, case_key)``: the keyed fire.
    """
    kinds = sorted({c.kind for c in cases})
    if kinds and not any(event in spec(kind).events for kind in kinds):
        raise InvalidInput(f"unknown event {event!r} for the cases found ({', '.join(kinds)}); "
                           f"{kinds[0]} events: {', '.join(spec(kinds[0]).events)}", field="event", value=event)
    items: list[BulkItem] = []
    for case in sorted(cases, key=lambda c: (c.opened_at, c.number)):
        number, k = case.number, case_key(key, case.number)
        if event not in spec(case.kind).events:  # a kind without the event: nothing to decide or record
            items.append(BulkItem(number, REFUSED, None, ((NOT_AVAILABLE, f"a {case.kind} has no event {event}"),)))
            continue
        before = remembered(k)
        if before == APPLIED:
            items.append(BulkItem(number, ALREADY, None))
            continue
        if not apply and before is None:
            decision = check(number)
            items.append(BulkItem(number, APPLIED, decision.to_state) if decision.allowed
                         else _refused(number, decision))
            continue
        try:
            after = fire(number, k)
            items.append(BulkItem(number, APPLIED, after.state))
        except TransitionDenied as denied:  # refused now, or the refusal this key remembers
            items.append(_refused(number, denied.decision))
        except ConcurrentUpdate as lost:
            items.append(BulkItem(number, REFUSED, None, ((CONCURRENT, str(lost)),)))
        except CaseNotFound:  # pragma: no cover - cases are never deleted; a hand-edited database
            continue
    return BulkReport(event, key, not apply, tuple(items))


__all__ = ["ALREADY", "APPLIED", "FILTERS", "REFUSED", "BulkItem", "BulkReport", "bulk_fire", "bulk_key",
           "case_key", "check_filters"]
