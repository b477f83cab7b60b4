"""The four case kinds, each defined once and built once into a shared ``transitions`` Machine."""

from __future__ import annotations

from casework.errors import InvalidInput
from casework.machines import complaint, dispute, refund, return_
from casework.machines.base import AMEND, REJECT, REOPEN, KindSpec, Move
from casework.values import one_of

KINDS: dict[str, KindSpec] = {spec.kind: spec for spec in (refund.SPEC, return_.SPEC, dispute.SPEC, complaint.SPEC)}
PREFIXES: dict[str, str] = {spec.prefix: spec.kind for spec in KINDS.values()}


def spec(kind: str) -> KindSpec:
    """The definition of ``kind``; raises :class:`InvalidInput` naming the kinds that exist."""
    try:
        return KINDS[kind]
    except KeyError:
        one_of(kind, KINDS, "case kind", field="kind")
        raise InvalidInput(f"unknown case kind {kind!r}") from None  # pragma: no cover


def check_filters(kind: str | None, state: str | None) -> None:
    """Raise InvalidInput (with "did you mean") for an unknown kind, or a state no kind (of ``kind``) has."""
    if kind is not None:
        spec(kind)
    if state is not None:
        states = sorted({s for k in ([KINDS[kind]] if kind else KINDS.values()) for s in k.states})
        one_of(state, states, "state")


__all__ = ["AMEND", "KINDS", "PREFIXES", "REJECT", "REOPEN", "KindSpec", "Move", "check_filters", "spec"]
