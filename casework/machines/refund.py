"""Refund (退款): the customer asks for money back on an order; an agent reviews and decides."""

from casework.machines.base import AMEND, REOPEN, KindSpec, Move

SPEC = KindSpec(
    kind="refund",
    prefix="RF",
    title="Refund",
    initial="submitted",
    states=("submitted", "under_review", "awaiting_evidence", "approved", "refunded", "rejected",
            "cancelled", "closed"),
    moves=(
        Move("review", ("submitted",), "under_review"),
        Move("request_evidence", ("submitted", "under_review"), "awaiting_evidence"),
        Move("provide_evidence", ("awaiting_evidence",), "under_review"),
        Move("provide_evidence", ("submitted", "under_review"), None),
        Move("approve", ("submitted", "under_review"), "approved"),
        Move("reject", ("submitted", "under_review", "awaiting_evidence"), "rejected"),
        Move("pay", ("approved",), "refunded"),
        Move("cancel", ("submitted", "under_review", "awaiting_evidence"), "cancelled"),
        Move("close", ("refunded", "rejected", "cancelled"), "closed"),
        # A correction of facts the rules judged (an amount, a date, a reason...): judged again, on record.
        Move(AMEND, ("submitted", "under_review", "awaiting_evidence", "approved"), None),
        # Back to work after closing, where the policy allows it (within its reopen_within).
        Move(REOPEN, ("closed",), "under_review"),
        # Satisfaction: the customer rates a closed case (1-5, with a comment).
        Move("rate", ("closed",), None),
    ),
    final=frozenset({"closed"}),
    settled=frozenset({"refunded", "rejected", "cancelled", "closed"}),
    payouts={"pay": "amount"},
)
