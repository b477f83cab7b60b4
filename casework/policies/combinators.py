"""Guards combined: ``all_of``, ``any_of`` and ``not`` over guards (built-in kinds and expressions alike).

"A refund above 500.00 needs a photo, or a supervisor":

.. code-block:: yaml

    - guard: any_of
      id: photo_or_supervisor
      when: "amount > money('500.00')"
      guards:
        - {guard: evidence, any_of: [photo]}
        - {guard: expr, expr: "'supervisor' in roles", code: approval_limit_exceeded}

A branch whose own ``when:`` (or ``from``/``until``) does not match is left out: ``all_of`` holds when every
branch that applies holds, ``any_of`` when one does (or none applies), ``not`` when its rule, applying,
does not hold (``not`` names the ``code`` of its refusal). Refused, the verdict carries ``code`` (the
combinator's own, else its first failing branch's) and ``details.branches``: every failing branch's
verdict (guard, code, message, details). Passed or refused, ``details.outcomes`` says which branches applied
and whether each held, by path (``"2"``; ``"2.1"`` inside a nested combinator): ``policy test --coverage``
counts the pass and fail side of each branch from it. Without a code of its own, the operator and the customer are
told each failing branch in its own code's words (:func:`casework.messages.render`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from casework.domain import Verdict
from casework.policies.context import GuardContext
from casework.policies.expression_guard import fill
from casework.policies.guard_base import GuardBase

if TYPE_CHECKING:  # the union of every guard kind, combinators included (bound in guard_kinds)
    from casework.policies.guard_kinds import Guard

BRANCHES = "branches"  # the details key listing the failing branches' verdicts
OUTCOMES = "outcomes"  # the details key: every branch that applied, by its path ("2", "2.1"), and whether it held
COMBINATOR = "combinator"  # all_of or any_of: the messages of a refusal are each failing branch's


class _Combinator(GuardBase):
    code: str = Field("", description="the reason code of a refusal (default: the first failing branch's)")
    message: str | None = Field(None, description="the refusal, with {placeholders} from the failing branches' "
                                "details")

    def parts(self) -> list[GuardBase]:  # pragma: no cover - abstract
        raise NotImplementedError

    def judges(self) -> frozenset[str]:
        return super().judges().union(*(g.judges() for g in self.parts()))

    def refused(self, failing: list[Verdict], said: str, outcomes: dict[str, bool]) -> Verdict:
        """The refusal: the combinator's own code and message if it names them (its messages then speak for
        the branches), else its first failing branch's code and each failing branch explained."""
        details: dict[str, Any] = {**failing[0].details, BRANCHES: [v.to_json() for v in failing],
                                   COMBINATOR: self.guard_name(), OUTCOMES: outcomes}
        if self.code:
            details[COMBINATOR] = None  # (the policy's messages for its own code are shown, not each branch's)
        message = fill(self.message, details) if self.message else said
        return self.verdict(False, message, self.code or failing[0].code, **details)


def _verdicts(guards: list[GuardBase], ctx: GuardContext) -> tuple[list[Verdict], dict[str, bool]]:
    """The verdicts of the branches that apply, and their outcomes by path (1-based; a nested combinator's
    branches under its own: "2.1"), for ``policy test --coverage``."""
    verdicts: list[Verdict] = []
    outcomes: dict[str, bool] = {}
    for i, g in enumerate(guards, 1):
        if not g.applies(ctx):
            continue
        v = g.evaluate(ctx)
        verdicts.append(v)
        outcomes[str(i)] = v.passed
        inner = v.details.get(OUTCOMES) if isinstance(g, _Combinator) else None
        if isinstance(inner, dict):
            outcomes.update((f"{i}.{path}", held) for path, held in inner.items())
    return verdicts, outcomes


def _listed(verdicts: list[Verdict]) -> str:
    return "; ".join(f"({i}) {v.message}" for i, v in enumerate(verdicts, 1))


class _Branches(_Combinator):
    guards: list[Guard] = Field(min_length=1, description="the branches: guards of any kind")

    def parts(self) -> list[GuardBase]:
        return list(self.guards)


class AllOfGuard(_Branches):
    """Every branch that applies must hold."""

    guard: Literal["all_of"]

    def evaluate(self, ctx: GuardContext) -> Verdict:
        verdicts, outcomes = _verdicts(self.parts(), ctx)
        failing = [v for v in verdicts if not v.passed]
        if failing:
            return self.refused(failing, f"{len(failing)} of {len(verdicts)} must-hold rules fail: {_listed(failing)}",
                                outcomes)
        held: dict[str, Any] = {OUTCOMES: outcomes}  # (a pass carries no code)
        return self.verdict(True, f"all hold: {_listed(verdicts)}" if verdicts else "no branch applies", **held)


class AnyOfGuard(_Branches):
    """One branch that applies must hold (none applying: it holds)."""

    guard: Literal["any_of"]

    def evaluate(self, ctx: GuardContext) -> Verdict:
        verdicts, outcomes = _verdicts(self.parts(), ctx)
        held = [v for v in verdicts if v.passed]
        if verdicts and not held:
            return self.refused(verdicts, f"none of {len(verdicts)} alternatives holds: {_listed(verdicts)}", outcomes)
        said: dict[str, Any] = {OUTCOMES: outcomes}  # (a pass carries no code)
        return self.verdict(True, f"holds: {held[0].message}" if held else "no alternative applies", **said)


class NotGuard(_Combinator):
    """Its rule, where it applies, must not hold."""

    guard: Literal["not"]
    rule: Guard = Field(description="the guard that must not hold, e.g. {guard: fraud_flag, flags: [vip]}")
    code: str = Field(description="the reason code of a refusal: a built-in code or one declared under codes:")

    def parts(self) -> list[GuardBase]:
        return [self.rule]

    def evaluate(self, ctx: GuardContext) -> Verdict:
        verdicts, outcomes = _verdicts(self.parts(), ctx)
        if verdicts and verdicts[0].passed:
            return self.refused(verdicts, f"must not hold, but does: {verdicts[0].message}", outcomes)
        said = f"does not hold, as required: {verdicts[0].message}" if verdicts else "its rule does not apply"
        return self.verdict(True, said, **{**(verdicts[0].details if verdicts else {}), OUTCOMES: outcomes})


def bind(guard: Any) -> None:
    """Resolve ``Guard`` (the union of every guard kind, made in guard_kinds) in the combinators' fields."""
    for model in (_Branches, AllOfGuard, AnyOfGuard, NotGuard):
        model.model_rebuild(_types_namespace={"Guard": guard})
