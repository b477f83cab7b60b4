"""What every guard is: an id, when it applies (``when:``, ``from``/``until``), a verdict; and the ``when:`` mapping.

The built-in guards are in :mod:`casework.policies.guards`, the expression guard in
:mod:`casework.policies.expression_guard`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from casework.domain import Verdict
from casework.policies.context import GuardContext
from casework.policies.expressions import Expression
from casework.policies.periods import Period
from casework.values import parse_duration


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


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


class GuardBase(Period):
    """A guard: its id, when it applies (``when:``, and ``from``/``until``: see casework.policies.periods)."""

    id: str | None = Field(None, description="a name for this rule, shown in explanations")
    when: Condition | Expression | None = Field(
        None, description="apply this guard only when these facts match, or when this expression is true")

    code: str = "ok"

    # Where the guard is written (``FILE:LINE``), which its verdicts carry: None on the document's own guards, set
    # on the copy a PolicySet judges with (``placed``). Not a field, so a guard's equality, schema and dump stay
    # its rule's alone (``policy simulate`` skips events whose guards are equal wherever they are written).
    written_at: ClassVar[str | None] = None

    def placed(self, source: str | None) -> Self:
        """A copy of this guard whose verdicts say they are written at ``source``."""
        copy = self.model_copy()
        # Stored beside the fields in the copy's __dict__, as functools.cached_property stores (the model is frozen,
        # and a private attribute would be read through BaseModel.__getattr__ on every verdict).
        copy.__dict__["written_at"] = source
        return copy

    def applies(self, ctx: GuardContext) -> bool:
        if not self.in_force(ctx):
            return False
        if self.when is None:
            return True
        if isinstance(self.when, Expression):
            # A fact the condition reads that the case does not hold: the rule does not apply (as a
            # ``reason`` the case lacks matches no list). A condition that fails to evaluate applies it.
            outcome = self.when.run(ctx.facts, ctx.types, ctx.now, ctx.tz, ctx.who() if self.when.who else None,
                                    ctx.read)
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
            code=None if passed else code or self.code,  # a pass carries no failure code
            message=message,
            details=details,
            source=self.written_at,
        )

    def guard_name(self) -> str:
        return str(getattr(self, "guard", "guard"))

    def missing(self, field: str, what: str) -> Verdict:
        return self.verdict(False, f"{what} is not known; this rule needs it", "field_missing", field=field)


FUTURE_DATE = "date_in_future"  # a window's start date lies ahead of now
