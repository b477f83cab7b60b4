"""The fixed vocabulary of guards a policy may attach to an event.

Each guard is a typed, parametrised predicate (a pydantic model, so the YAML is validated) with an
``evaluate`` that returns a :class:`~casework.domain.Verdict`: a stable ``code``, a message with the
observed and the required value, and ``details``. Nothing in a policy is ever evaluated as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from casework import facts as F
from casework.domain import Verdict
from casework.policies.context import GuardContext
from casework.policies.guard_base import FUTURE_DATE, Duration, GuardBase
from casework.policies.periods import DatedWindow
from casework.values import format_duration, money_str


class WindowGuard(GuardBase):
    """The request must come within a time window after a case date (delivery by default)."""

    guard: Literal["window"]
    code: Literal["window_expired"] = "window_expired"
    since: str = Field("delivered", description="the fact holding the start date")
    within: Duration = Field(description="the window, e.g. 7d")
    by_reason: dict[str, Duration | DatedWindow] = Field(
        default_factory=dict, description="another window per reason: 14d, or {within: 14d, from:, until:}")
    by_category: dict[str, Duration | DatedWindow] = Field(
        default_factory=dict, description="another window per category (before by_reason): 15d, or for a "
        "period {within: 15d, from: 2026-11-11, until: 2026-11-30}")
    label: str | None = Field(None, description="what the window is for, e.g. 'a no-reason return'")

    def judges(self) -> frozenset[str]:
        by = {"category"} if self.by_category else set()
        return super().judges() | {self.since, *by, *({"reason"} if self.by_reason else ())}

    def window_for(self, facts: Mapping[str, Any], ctx: GuardContext | None = None) -> timedelta:
        """The window for a case with ``facts``: its category's, else its reason's, else ``within``. An
        override for a period counts only for a decision (``ctx``) within it."""
        return self._window(facts, ctx)[0]

    def _window(self, facts: Mapping[str, Any], ctx: GuardContext | None) -> tuple[timedelta, str]:
        for by, key in ((self.by_category, "category"), (self.by_reason, "reason")):
            found = by.get(facts.get(key))  # type: ignore[arg-type]
            if isinstance(found, timedelta):
                return found, ""
            if found is not None and ctx is not None and found.in_force(ctx):
                return found.within, found.period_text()
        return self.within, ""

    def evaluate(self, ctx: GuardContext) -> Verdict:
        raw = ctx.facts.get(self.since)
        if raw is None:
            return self.missing(self.since, f"the {self.since} date")
        start = F.instant(ctx.facts, self.since, ctx.tz)
        assert start is not None
        window, period = self._window(ctx.facts, ctx)
        label = (f" for {self.label}" if self.label else "") + (f" ({period})" if period else "")
        is_date_only = isinstance(raw, str) and len(raw) == 10
        if is_date_only and window % timedelta(days=1) == timedelta(0):
            # A date without a time counts in calendar days in the policy's time zone.
            elapsed_days = (ctx.now.astimezone(ctx.tz).date() - start.date()).days
            passed = elapsed_days <= window.days
            observed = f"{elapsed_days} day{'s' if elapsed_days != 1 else ''}"
            details: dict[str, Any] = {"since": self.since, "elapsed_days": elapsed_days,
                                       "window_days": window.days}
        else:
            elapsed = ctx.now - start
            passed = elapsed <= window
            observed = format_duration(timedelta(seconds=int(elapsed.total_seconds()) // 60 * 60))
            details = {"since": self.since, "elapsed_seconds": int(elapsed.total_seconds()),
                       "window_seconds": int(window.total_seconds())}
        details["window"] = format_duration(window)
        if period:
            details["period"] = period
        if ctx.now < start if not is_date_only else start.date() > ctx.now.astimezone(ctx.tz).date():
            # A window counts from something that has happened: a date ahead of now is wrong data, not "in time".
            return self.verdict(False, f"{self.since} {raw} is later than now; the window{label} counts from a "
                                       f"{self.since} date that has passed", FUTURE_DATE, date=raw, **details)
        message = f"{self.since} {observed} ago; the window{label} is {format_duration(window)}"
        return self.verdict(passed, message, **details)


class CategoryGuard(GuardBase):
    """Some item categories are excluded from this kind of request."""

    guard: Literal["category_excluded"]
    code: Literal["category_excluded"] = "category_excluded"
    categories: list[str] = Field(min_length=1)

    facts = ("category",)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        category = ctx.facts.get("category")
        passed = category not in self.categories
        if passed:
            message = f"category {category or '(none)'} is not excluded"
        else:
            message = f"category {category} is excluded; excluded categories: {', '.join(self.categories)}"
        return self.verdict(passed, message, category=category, excluded=list(self.categories))


class ConditionGuard(GuardBase):
    """The item must be in one of the accepted conditions."""

    guard: Literal["condition"]
    code: Literal["condition_unacceptable"] = "condition_unacceptable"
    allowed: list[str] = Field(min_length=1)

    facts = ("condition",)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        condition = ctx.facts.get("condition")
        if condition is None:
            return self.verdict(
                False,
                f"the item's condition is not known; accepted: {', '.join(self.allowed)}",
                condition=None, accepted=list(self.allowed),
            )
        passed = condition in self.allowed
        message = f"item condition is {condition}; accepted: {', '.join(self.allowed)}"
        return self.verdict(passed, message, condition=condition, accepted=list(self.allowed))


class EvidenceGuard(GuardBase):
    """Evidence that must be present: every type in ``all_of`` and at least one in ``any_of``."""

    guard: Literal["evidence"]
    code: Literal["evidence_missing"] = "evidence_missing"
    # Judges no fact that could change: evidence accumulates, so what it judged stays present.
    all_of: list[str] = Field(default_factory=list)
    any_of: list[str] = Field(default_factory=list)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        have = F.evidence_types(ctx.facts)
        missing = [t for t in self.all_of if t not in have]
        if self.any_of and not have.intersection(self.any_of):
            missing.append(" or ".join(self.any_of))
        parts = []
        if self.all_of:
            parts.append(", ".join(self.all_of))
        if self.any_of:
            parts.append("one of " + "/".join(self.any_of))
        required = " and ".join(parts)
        if missing:
            message = f"missing evidence: {', '.join(missing)}; required: {required}"
        else:
            message = f"evidence present: {required}"
        return self.verdict(not missing, message, missing=missing, present=sorted(have),
                            all_of=list(self.all_of), any_of=list(self.any_of))


class FraudFlagGuard(GuardBase):
    """A customer flag (e.g. ``fraud_confirmed``) blocks the request."""

    guard: Literal["fraud_flag"]
    code: Literal["fraud_flagged"] = "fraud_flagged"
    flags: list[str] = Field(min_length=1)

    facts = ("flags",)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        present = [f for f in self.flags if f in ctx.facts.get("flags", [])]
        message = (f"customer is flagged {', '.join(present)}" if present
                   else f"customer has none of the flags {', '.join(self.flags)}")
        return self.verdict(not present, message, flags=present, blocking=list(self.flags))


class FraudCounterGuard(GuardBase):
    """Too many recent requests (a counter fact) needs a higher role to proceed."""

    guard: Literal["fraud_counter"]
    code: Literal["fraud_flagged"] = "fraud_flagged"
    counter: str = "refunds_last_30_days"
    at_least: int = Field(ge=1)
    unless_role: str | None = Field(None, description="a role that may still proceed, e.g. supervisor")

    fact_params = ("counter",)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        count = int(ctx.facts.get(self.counter, 0) or 0)
        details: dict[str, Any] = {"counter": self.counter, "observed": count, "threshold": self.at_least,
                   "required_role": self.unless_role}
        if count < self.at_least:
            return self.verdict(True, f"{self.counter} is {count}, below {self.at_least}", **details)
        who = f"; only a {self.unless_role} may proceed" if self.unless_role else ""
        if self.unless_role is not None and ctx.roles.acts_as(ctx.actor.role, self.unless_role):
            return self.verdict(True, f"{self.counter} is {count} (at least {self.at_least}){who}", **details)
        return self.verdict(False, f"{self.counter} is {count}, at least {self.at_least}{who}", **details)


class AmountWithinGuard(GuardBase):
    """An amount fact must not exceed another (what was paid, or the disputed difference)."""

    guard: Literal["amount_within"]
    code: Literal["amount_exceeds_paid"] = "amount_exceeds_paid"
    amount: str = "amount"
    limit: str = "paid"
    positive: StrictBool = Field(False, description="also require the amount to be above zero")

    fact_params = ("amount", "limit")

    def evaluate(self, ctx: GuardContext) -> Verdict:
        amount = F.money(ctx.facts, self.amount)
        limit = F.money(ctx.facts, self.limit)
        if amount is None:
            return self.missing(self.amount, f"the {self.amount}")
        if limit is None:
            return self.missing(self.limit, f"the {self.limit}")
        observed, most = money_str(amount), money_str(limit)
        details = {"field": self.amount, "observed": observed, "limit_field": self.limit, "limit": most}
        if self.positive and amount <= 0:
            return self.verdict(False, f"{self.amount} is {observed}; it must be above 0.00", **details)
        passed = amount <= limit
        relation = "within" if passed else "exceeds"
        return self.verdict(passed, f"{self.amount} {observed} {relation} {self.limit} {most}", **details)


class ApprovalLimitGuard(GuardBase):
    """The amount must be within the acting role's approval limit."""

    guard: Literal["approval_limit"]
    code: Literal["approval_limit_exceeded"] = "approval_limit_exceeded"
    amount: str = "amount"

    fact_params = ("amount",)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        amount = F.money(ctx.facts, self.amount)
        if amount is None:
            return self.missing(self.amount, f"the {self.amount}")
        authority, limit = ctx.roles.limit(ctx.actor.role)
        role, observed = ctx.actor.role, money_str(amount)
        if not authority:
            return self.verdict(False, f"role {role} has no approval authority; {self.amount} is {observed}",
                                role=role, observed=observed, limit=None)
        if limit is None:
            return self.verdict(True, f"role {role} has no approval limit", role=role, observed=observed, limit=None)
        passed, most = amount <= limit, money_str(limit)
        relation = "within" if passed else "over"
        return self.verdict(passed, f"{self.amount} {observed} is {relation} the {role} approval limit of {most}",
                            role=role, observed=observed, limit=most)


class RequiredGuard(GuardBase):
    """Fields that must be given, in the event's own data (``from: event``) or the case facts."""

    guard: Literal["required"]
    code: Literal["field_missing"] = "field_missing"
    fields: list[str] = Field(min_length=1)
    source: Literal["event", "case"] = Field("event", alias="from")
    # ``from:`` says where the fields are, so this guard has no effective period of its own.
    from_: SkipJsonSchema[None] = Field(None, alias="from_date", exclude=True)

    def judges(self) -> frozenset[str]:
        # From the event: what the event itself must carry (a note), not a fact of the case judged.
        return super().judges() | (set(self.fields) if self.source == "case" else set())

    def evaluate(self, ctx: GuardContext) -> Verdict:
        where = ctx.data if self.source == "event" else ctx.facts
        missing = [f for f in self.fields if where.get(f) in (None, "", [])]
        if missing:
            message = f"missing {', '.join(missing)}; this event needs {', '.join(self.fields)}"
        else:
            message = f"given: {', '.join(self.fields)}"
        return self.verdict(not missing, message, missing=missing, required=list(self.fields))


class RespondedGuard(GuardBase):
    """The case must have had a first response (e.g. before a customer may escalate)."""

    guard: Literal["responded"]
    code: Literal["response_pending"] = "response_pending"

    def evaluate(self, ctx: GuardContext) -> Verdict:
        if ctx.responded:
            return self.verdict(True, "the case has had a first response")
        return self.verdict(False, "the case has not had a first response yet; wait for it or its deadline")


class RangeGuard(GuardBase):
    """A whole-number field (of the event, else the case) must lie within bounds, e.g. a 1-5 score."""

    guard: Literal["range"]
    code: Literal["value_out_of_range"] = "value_out_of_range"
    field: str
    min: int | None = None
    max: int | None = None

    fact_params = ("field",)

    def evaluate(self, ctx: GuardContext) -> Verdict:
        raw = ctx.data.get(self.field, ctx.facts.get(self.field))
        bounds = f"{self.min if self.min is not None else '…'} to {self.max if self.max is not None else '…'}"
        if raw is None:
            return self.missing(self.field, f"the {self.field}")
        value = int(raw)
        passed = (self.min is None or value >= self.min) and (self.max is None or value <= self.max)
        return self.verdict(passed, f"{self.field} is {value}; accepted: {bounds}", field=self.field,
                            observed=value, min=self.min, max=self.max)
