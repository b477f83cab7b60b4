"""casework: a workflow engine for e-commerce after-sales cases.

Refunds, returns/exchanges, order-amount disputes and complaints are explicit state machines whose
transitions are guarded by YAML policies; every change and every refused attempt is stored with a
tamper-evident audit trail.

>>> from casework import Engine, Actor
>>> engine = Engine("sqlite:///:memory:")
>>> case = engine.open("refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"},
...                    actor=Actor("c-1", "customer"))
>>> case.state
'submitted'
"""

from typing import TYPE_CHECKING, Any

from casework.audit import AuditKey
from casework.changes import Change
from casework.clock import Clock, FixedClock, system_clock
from casework.database import DEFAULT_DB, database_url, upgrade_database
from casework.desk import Note
from casework.domain import Actor, AuditEntry, Case, Decision, PolicyRef, Tracking, Verdict
from casework.engine import Engine
from casework.errors import (
    BrokerUnavailable,
    CaseNotFound,
    CaseworkError,
    ConcurrentUpdate,
    EventNotAvailable,
    IdempotencyConflict,
    InvalidImportFile,
    InvalidInput,
    PolicyError,
    PolicyProblem,
    PolicyTestsFailed,
    Refused,
    SchemaOutOfDate,
    StoreError,
    TransitionDenied,
    UniqueViolation,
    UnknownPolicyVersion,
    Unreadable,
    WriteConflict,
)
from casework.findings import CaseProblem, ChainReport, Digest, VerifyReport
from casework.firing import FireRequest
from casework.machines import KINDS, KindSpec
from casework.values import parse_evidence, parse_instant, parse_money, parse_zone

__version__ = "0.1.0"

_LAZY = {"PolicySet", "explain", "load_policy", "parse_policy"}


def __getattr__(name: str) -> Any:
    # The policy machinery (pydantic models of the policy schema) loads on first use, so commands
    # that only read cases start faster.
    if name in _LAZY:
        from casework import policies

        return getattr(policies, name)
    if name == "AsyncEngine":  # asyncio is imported only by those who use it
        from casework.async_engine import AsyncEngine

        return AsyncEngine
    if name in ("Relay", "RelayProgress"):  # the broker's client loads only for the relay
        from casework import relay

        return getattr(relay, name)
    raise AttributeError(f"module 'casework' has no attribute {name!r}")


if TYPE_CHECKING:
    from casework.async_engine import AsyncEngine
    from casework.policies import PolicySet, explain, load_policy, parse_policy
    from casework.relay import Relay, RelayProgress

__all__ = [
    "DEFAULT_DB",
    "KINDS",
    "Actor",
    "AsyncEngine",
    "AuditEntry",
    "AuditKey",
    "BrokerUnavailable",
    "Case",
    "CaseNotFound",
    "CaseProblem",
    "CaseworkError",
    "ChainReport",
    "Change",
    "Clock",
    "ConcurrentUpdate",
    "Decision",
    "Digest",
    "Engine",
    "EventNotAvailable",
    "FireRequest",
    "FixedClock",
    "IdempotencyConflict",
    "InvalidImportFile",
    "InvalidInput",
    "KindSpec",
    "Note",
    "PolicyError",
    "PolicyProblem",
    "PolicyRef",
    "PolicySet",
    "PolicyTestsFailed",
    "Refused",
    "Relay",
    "RelayProgress",
    "SchemaOutOfDate",
    "StoreError",
    "Tracking",
    "TransitionDenied",
    "UniqueViolation",
    "UnknownPolicyVersion",
    "Unreadable",
    "Verdict",
    "VerifyReport",
    "WriteConflict",
    "__version__",
    "database_url",
    "explain",
    "load_policy",
    "parse_evidence",
    "parse_instant",
    "parse_money",
    "parse_policy",
    "parse_zone",
    "system_clock",
    "upgrade_database",
]
