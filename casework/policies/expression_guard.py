"""A guard written as an expression (``guard: expr``): a rule the built-in guards have no shorthand for.

.. code-block:: yaml

    - guard: expr
      id: photo_above_500
      when: "amount > money('500.00')"
      expr: "'photo' in evidence"
      code: evidence_missing
      message: "a refund of {amount} (above 500.00) needs a photo"
      details: {missing: photo}

The guard passes when ``expr`` is true. Refused, its verdict carries ``code`` (a reason code: a built-in
one, or one the policy declares), ``message`` with its ``{placeholders}`` filled from the facts the
expression read (money as ``600.00``, evidence as its types) and ``details`` (those facts, and the
guard's own ``details``); the verdict's source line points at the rule and its expression. A fact it
reads that the case does not hold refuses it with ``field_missing``.
"""

from __future__ import annotations

from string import Formatter
from typing import Any, Literal

from pydantic import Field

from casework.domain import Verdict
from casework.policies.context import GuardContext
from casework.policies.expressions import Expression
from casework.policies.guard_base import GuardBase


class _Keep(dict[str, Any]):
    """A placeholder with no value is written back as it was."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, values: dict[str, Any]) -> str:
    """``template`` with ``{placeholders}`` from ``values`` (a list as ``a, b``); an unknown one stays."""
    shown = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return Formatter().vformat(template, (), _Keep(shown))
    except (ValueError, IndexError, AttributeError):  # checked at load; a template that still fails is shown as is
        return template


class ExpressionGuard(GuardBase):
    """The request must make ``expr`` true; else it is refused with ``code`` and ``message``."""

    guard: Literal["expr"]
    expr: Expression = Field(description="a CEL expression that must be true, e.g. 'photo' in evidence")
    code: str = Field(description="the reason code of a refusal: a built-in code or one declared under codes:")
    message: str | None = Field(None, description="the refusal, with {placeholders} for the facts the expression "
                                "reads, e.g. 'a refund of {amount} needs a photo'")
    details: dict[str, str | int | bool | list[str]] = Field(
        default_factory=dict, description="added to the refusal's details (e.g. missing: photo, for the "
        "evidence_missing messages)")

    def judges(self) -> frozenset[str]:
        return super().judges() | self.expr.judges()

    def gives(self) -> frozenset[str]:
        """The details a refusal by this guard carries (for the placeholders of its code's messages)."""
        read = self.when.reads() if isinstance(self.when, Expression) else frozenset()
        return frozenset({*self.expr.reads(), *read, *self.details, "missing"} if self.code == "field_missing"
                         else {*self.expr.reads(), *read, *self.details})

    def evaluate(self, ctx: GuardContext) -> Verdict:
        outcome = self.expr.run(ctx.facts, ctx.types, ctx.now, ctx.tz, ctx.who() if self.expr.who else None, ctx.read)
        read = self.when.shown(ctx.facts, ctx.types) if isinstance(self.when, Expression) else {}
        details: dict[str, Any] = {**read, **outcome.values}
        if outcome.value is not True:
            details.update(self.details)
        if outcome.missing:
            missing = list(outcome.missing)
            return self.verdict(False, f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not known; "
                                "this rule needs it", "field_missing", **{**details, "missing": missing})
        if outcome.error is not None:
            return self.verdict(False, f"the rule could not be judged on these facts: {outcome.error}",
                                error=outcome.error, **details)
        passed = outcome.value is True
        said = "; ".join(f"{k} {(', '.join(map(str, v)) or 'none') if isinstance(v, list) else v}"
                         for k, v in sorted(outcome.values.items()))
        if passed:
            message = f"{self.expr.text} holds" + (f" ({said})" if said else "")
        elif self.message:
            message = fill(self.message, details)
        else:
            message = f"{self.expr.text} does not hold" + (f" ({said})" if said else "")
        return self.verdict(passed, message, **details)
