"""The fixed vocabulary of guards a policy may attach to an event.

Each guard is a typed, parametrised predicate (a pydantic model, so the YAML is validated) with an
``evaluate`` that returns a :class:`~casework.domain.Verdict`: a stable ``code``, a message with the
observed and the required value, and ``details``. Nothing in a policy is ever evaluated as code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from casework import facts as F
from casework.domain import Verdict
from casework.policies.context import GuardContext
from casework.policies.expressions import Expression
from casework.values import format_duration, money_str, parse_duration, parse_money


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


def _money(value: Any) -> Decimal:
    return parse_money(value, "amount")


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Money = Annotated[Decimal, BeforeValidator(_money)]


class Condition(BaseModel):
    """``when:`` — the guard applies only if every listed fact has one of the listed values.

    ``role`` matches the actor's role (or a role it inherits); other keys match case facts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: list[str] | None = None
    category: list[str] | None = None
    condition: list[str] | None = None
    channel: list[str] | None = None
    role: list[str] | None = None

    def matches(self, ctx: GuardContext) -> bool:
        for key in ("reason", "category", "condition", "channel"):
            wanted = getattr(self, key)
            if wanted is not None and ctx.facts.get(key) not in wanted:
                return False
        return self.role is None or any(ctx.roles.acts_as(ctx.actor.role, r) for r in self.role)

    def judges(self) -> frozenset[str]:
        """The case facts this condition reads."""
        return frozenset(k for k in ("reason", "category", "condition", "channel") if getattr(self, k) is not None)


class GuardBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = Field(None, description="a name for this rule, shown in explanations")
    when: Condition | Expression | None = Field(
        None, description="apply this guard only when these facts match, or when this expression is true")

    code: str = "ok"

    def applies(self, ctx: GuardContext) -> bool:
        if self.when is None:
            return True
        if isinstance(self.when, Expression):
            # A fact the condition reads that the case does not hold: the rule does not apply (as a
            # ``reason`` the case lacks matches no list). A condition that fails to evaluate applies it.
            outcome = self.when.run(ctx.facts, ctx.types, ctx.now, ctx.tz)
            return not outcome.missing and (outcome.value is True or outcome.error is not None)
        return self.when.matches(ctx)

    def evaluate(self, ctx: GuardContext) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError

    # The facts the guard judges: named outright (``facts``), or by its parameters (``fact_params``).
    facts: ClassVar[tuple[str, ...]] = ()
    fact_params: ClassVar[tuple[str, ...]] = ()

    def judges(self) -> frozenset[str]:
        """The case facts this guard judges (its ``when`` included): once a transition it decided was
        applied, they change only by an ``amend``, which this guard judges again."""
        named = {*self.facts, *(getattr(self, p) for p in self.fact_params)}
        if isinstance(self.when, Expression):
            return frozenset(named | self.when.judges())
        return frozenset(named | self.when.judges()) if self.when is not None else frozenset(named)

    def verdict(self, passed: bool, message: str, code: str | None = None, **details: Any) -> Verdict:
        return Verdict(
            guard=self.id or self.guard_name(),
            passed=passed,
            code=code or self.code,
            message=message,
            details=details,
        )

    def guard_name(self) -> str:
        return str(getattr(self, "guard", "guard"))

    def missing(self, field: str, what: str) -> Verdict:
        return self.verdict(False, f"{what} is not known; this rule needs it", "field_missing", field=field)


FUTURE_DATE = "date_in_future"  # a window's start date lies ahead of now
FACT_NOT_PERMITTED = "fact_not_permitted"  # event data holds a fact the acting role may not write
FACT_JUDGED = "fact_judged"  # event data would change a fact the rules judged (only amend may)


class WindowGuard(GuardBase):
    """The request must come within a time window after a case date (delivery by default)."""

    guard: Literal["window"]
    code: Literal["window_expired"] = "window_expired"
    since: str = Field("delivered", description="the fact holding the start date")
    within: Duration = Field(description="the window, e.g. 7d")
    by_reason: dict[str, Duration] = Field(default_factory=dict)
    by_category: dict[str, Duration] = Field(default_factory=dict)
    label: str | None = Field(None, description="what the window is for, e.g. 'a no-reason return'")

    def judges(self) -> frozenset[str]:
        by = {"category"} if self.by_category else set()
        return super().judges() | {self.since, *by, *({"reason"} if self.by_reason else ())}

    def window_for(self, facts: Mapping[str, Any]) -> timedelta:
        category, reason = facts.get("category"), facts.get("reason")
        if category in self.by_category:
            return self.by_category[category]
        if reason in self.by_reason:
            return self.by_reason[reason]
        return self.within

    def evaluate(self, ctx: GuardContext) -> Verdict:
        raw = ctx.facts.get(self.since)
        if raw is None:
            return self.missing(self.since, f"the {self.since} date")
        start = F.instant(ctx.facts, self.since, ctx.tz)
        assert start is not None
        window = self.window_for(ctx.facts)
        label = f" for {self.label}" if self.label else ""
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
        over = count >= self.at_least
        exempt = self.unless_role is not None and ctx.roles.acts_as(ctx.actor.role, self.unless_role)
        details: dict[str, Any] = {"counter": self.counter, "observed": count, "threshold": self.at_least,
                   "required_role": self.unless_role}
        if not over:
            return self.verdict(True, f"{self.counter} is {count}, below {self.at_least}", **details)
        who = f"; only a {self.unless_role} may proceed" if self.unless_role else ""
        if exempt:
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
        details = {"field": self.amount, "observed": money_str(amount), "limit_field": self.limit,
                   "limit": money_str(limit)}
        if self.positive and amount <= 0:
            return self.verdict(False, f"{self.amount} is {money_str(amount)}; it must be above 0.00", **details)
        passed = amount <= limit
        relation = "within" if passed else "exceeds"
        message = f"{self.amount} {money_str(amount)} {relation} {self.limit} {money_str(limit)}"
        return self.verdict(passed, message, **details)


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
        role = ctx.actor.role
        if not authority:
            return self.verdict(False, f"role {role} has no approval authority; {self.amount} is "
                                f"{money_str(amount)}", role=role, observed=money_str(amount), limit=None)
        if limit is None:
            return self.verdict(True, f"role {role} has no approval limit", role=role,
                                observed=money_str(amount), limit=None)
        passed = amount <= limit
        relation = "within" if passed else "over"
        return self.verdict(passed, f"{self.amount} {money_str(amount)} is {relation} the {role} approval "
                            f"limit of {money_str(limit)}", role=role, observed=money_str(amount),
                            limit=money_str(limit))


class RequiredGuard(GuardBase):
    """Fields that must be given, in the event's own data (``from: event``) or the case facts."""

    guard: Literal["required"]
    code: Literal["field_missing"] = "field_missing"
    fields: list[str] = Field(min_length=1)
    source: Literal["event", "case"] = Field("event", alias="from")

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
