"""Complaint (投诉): slow handling or poor service; acknowledged, investigated, maybe escalated."""

from casework.machines.base import AMEND, REOPEN, KindSpec, Move

SPEC = KindSpec(
    kind="complaint",
    prefix="CP",
    title="Complaint",
    initial="submitted",
    states=("submitted", "acknowledged", "investigating", "escalated", "resolved", "cancelled",
            "closed"),
    moves=(
        Move("acknowledge", ("submitted",), "acknowledged"),
        Move("investigate", ("acknowledged", "escalated"), "investigating"),
        Move("escalate", ("submitted", "acknowledged", "investigating"), "escalated"),
        Move("resolve", ("acknowledged", "investigating", "escalated"), "resolved"),
        Move(REOPEN, ("resolved", "closed"), "investigating"),
        Move("cancel", ("submitted", "acknowledged", "investigating", "escalated"), "cancelled"),
        Move("close", ("resolved", "cancelled"), "closed"),
        # A correction of facts the rules judged (an amount, a date, a reason...): judged again, on record.
        Move(AMEND, ("submitted", "acknowledged", "investigating", "escalated"), None),
        # Satisfaction: the customer rates a closed case (1-5, with a comment).
        Move("rate", ("closed",), None),
    ),
    final=frozenset({"closed"}),
    settled=frozenset({"resolved", "cancelled", "closed"}),
)
