"""Order-amount dispute (申诉错误订单金额): the customer says they were overcharged by ``amount``."""

from casework.machines.base import AMEND, REOPEN, KindSpec, Move

SPEC = KindSpec(
    kind="dispute",
    prefix="DP",
    title="Order-amount dispute",
    initial="submitted",
    states=("submitted", "awaiting_evidence", "investigating", "adjusted", "dismissed", "cancelled",
            "closed"),
    moves=(
        Move("investigate", ("submitted",), "investigating"),
        Move("request_evidence", ("submitted", "investigating"), "awaiting_evidence"),
        # New evidence sends the dispute back to the desk, where `investigate` checks it again.
        Move("provide_evidence", ("awaiting_evidence",), "submitted"),
        Move("provide_evidence", ("submitted", "investigating"), None),
        Move("adjust", ("investigating",), "adjusted"),
        Move("dismiss", ("submitted", "awaiting_evidence", "investigating"), "dismissed"),
        Move("cancel", ("submitted", "awaiting_evidence", "investigating"), "cancelled"),
        Move("close", ("adjusted", "dismissed", "cancelled"), "closed"),
        # A correction of facts the rules judged (an amount, a date, a reason...): judged again, on record.
        Move(AMEND, ("submitted", "awaiting_evidence", "investigating"), None),
        # Back to work after closing, where the policy allows it (within its reopen_within).
        Move(REOPEN, ("closed",), "investigating"),
        # Satisfaction: the customer rates a closed case (1-5, with a comment).
        Move("rate", ("closed",), None),
    ),
    final=frozenset({"closed"}),
    settled=frozenset({"adjusted", "dismissed", "cancelled", "closed"}),
    payouts={"adjust": "adjustment"},
)
