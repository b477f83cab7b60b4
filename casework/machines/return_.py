"""Return / exchange (退换货): goods travel back, are inspected, then money or a replacement goes out.

(The module is ``return_`` because ``return`` is a Python keyword; the kind is ``return``.)
"""

from casework.machines.base import AMEND, REOPEN, KindSpec, Move

SPEC = KindSpec(
    kind="return",
    prefix="RT",
    title="Return / exchange",
    initial="submitted",
    states=("submitted", "under_review", "awaiting_evidence", "approved", "in_transit", "received",
            "refunded", "exchanged", "rejected", "cancelled", "closed"),
    moves=(
        Move("review", ("submitted",), "under_review"),
        Move("request_evidence", ("submitted", "under_review"), "awaiting_evidence"),
        Move("provide_evidence", ("awaiting_evidence",), "under_review"),
        Move("provide_evidence", ("submitted", "under_review"), None),
        Move("approve", ("submitted", "under_review"), "approved"),
        # Rejected at review, or after inspection of the goods that came back.
        Move("reject", ("submitted", "under_review", "awaiting_evidence", "received"), "rejected"),
        Move("ship", ("approved",), "in_transit"),
        Move("receive", ("in_transit",), "received"),
        Move("refund", ("received",), "refunded"),
        Move("exchange", ("received",), "exchanged"),
        Move("cancel", ("submitted", "under_review", "awaiting_evidence", "approved"), "cancelled"),
        Move("close", ("refunded", "exchanged", "rejected", "cancelled"), "closed"),
        # A correction of facts the rules judged (an amount, a date, a reason...): judged again, on record.
        Move(AMEND, ("submitted", "under_review", "awaiting_evidence", "approved", "in_transit",
                         "received"), None),
        # Back to work after closing, where the policy allows it (within its reopen_within).
        Move(REOPEN, ("closed",), "under_review"),
        # Satisfaction: the customer rates a closed case (1-5, with a comment).
        Move("rate", ("closed",), None),
    ),
    final=frozenset({"closed"}),
    settled=frozenset({"refunded", "exchanged", "rejected", "cancelled", "closed"}),
    payouts={"refund": "amount"},
)
