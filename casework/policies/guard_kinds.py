"""Every kind of guard a policy may name (``guard: KIND``), and every reason code the engine knows."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from casework.policies import combinators, tables
from casework.policies.combinators import AllOfGuard, AnyOfGuard, NotGuard
from casework.policies.context import FACT_JUDGED, FACT_NOT_PERMITTED
from casework.policies.expression_guard import ExpressionGuard
from casework.policies.guard_base import FUTURE_DATE, GuardBase
from casework.policies.guards import (
    AmountWithinGuard,
    ApprovalLimitGuard,
    CategoryGuard,
    ConditionGuard,
    EvidenceGuard,
    FraudCounterGuard,
    FraudFlagGuard,
    RangeGuard,
    RequiredGuard,
    RespondedGuard,
    WindowGuard,
)
from casework.policies.tables import TableGuard

Guard = Annotated[
    WindowGuard | CategoryGuard | ConditionGuard | EvidenceGuard | FraudFlagGuard | FraudCounterGuard
    | AmountWithinGuard | ApprovalLimitGuard | RequiredGuard | RespondedGuard | RangeGuard | ExpressionGuard
    | AllOfGuard | AnyOfGuard | NotGuard | TableGuard,
    Field(discriminator="guard"),
]
# The guards that hold guards: their fields name Guard, bound here.
combinators.bind(Guard)
tables.bind(Guard)

GUARD_TYPES: dict[str, type[GuardBase]] = {
    "window": WindowGuard,
    "category_excluded": CategoryGuard,
    "condition": ConditionGuard,
    "evidence": EvidenceGuard,
    "fraud_flag": FraudFlagGuard,
    "fraud_counter": FraudCounterGuard,
    "amount_within": AmountWithinGuard,
    "approval_limit": ApprovalLimitGuard,
    "required": RequiredGuard,
    "responded": RespondedGuard,
    "range": RangeGuard,
    "expr": ExpressionGuard,
    "all_of": AllOfGuard,
    "any_of": AnyOfGuard,
    "not": NotGuard,
    "table": TableGuard,
}
# Guards whose refusals carry a code the policy names (or their branches' codes), not one of their own.
NAMED_CODES: tuple[type[GuardBase], ...] = (ExpressionGuard, AllOfGuard, AnyOfGuard, NotGuard, TableGuard)


def known_codes() -> list[str]:
    """Every reason code the engine and the built-in guards can produce (an expression guard names its own)."""
    guard_codes = {str(cls.model_fields["code"].default) for cls in GUARD_TYPES.values() if cls not in NAMED_CODES}
    return sorted({"not_available", "role_not_permitted", "field_missing", FUTURE_DATE, FACT_NOT_PERMITTED,
                   FACT_JUDGED} | guard_codes)
