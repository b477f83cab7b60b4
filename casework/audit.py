"""The audit trail's integrity: canonical hashing of entries and replay of a case's history.

Each entry's hash is SHA-256 over a canonical JSON serialisation of every recorded column plus the
previous entry's hash, so changing, removing or reordering any entry breaks the chain from there on.
Pure functions: the store persists, this module judges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from casework.domain import NOTHING_TRACKED, AuditEntry, Case, CaseProblem, split
from casework.facts import merge
from casework.jsontext import canonical, canonical_bytes, fragment
from casework.machines import KINDS

GENESIS = "0" * 64
# Engine-level events that record something about a case without moving it through its machine.
META_EVENTS = frozenset({"sla_breach", "adopt_policy"})


def policy_chain_hash(prev: str, policy_hash: str) -> str:
    """The link of one policy version in the chain of every version the database has used."""
    return hashlib.sha256(f"{prev}:{policy_hash}".encode()).hexdigest()


def entry_hash(
    *, number: str, seq: int, at: str, event: str, from_state: str | None, to_state: str | None,
    outcome: str, actor: str, role: str, channel: str | None, verdicts: Any, data: Any,
    policy_hash: str, prev_hash: str, verdicts_text: str | None = None, data_text: str | None = None,
) -> str:
    """SHA-256 of the canonical JSON of every column and the previous hash.

    ``verdicts_text`` / ``data_text``, when given, are ``canonical(verdicts)`` / ``canonical(data)``
    already made (a transition serialises them once, for the hash and for the row alike).
    """
    payload = {
        "actor": actor, "at": at, "channel": channel,
        "data": fragment(data_text if data_text is not None else canonical(data)),
        "event": event, "from": from_state, "number": number, "outcome": outcome, "policy": policy_hash,
        "prev": prev_hash, "role": role, "seq": seq, "to": to_state,
        "verdicts": fragment(verdicts_text if verdicts_text is not None else canonical(verdicts)),
    }
    return hashlib.sha256(canonical_bytes(payload)).hexdigest()


def hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        number=entry.number, seq=entry.seq, at=entry.at.isoformat(), event=entry.event,
        from_state=entry.from_state, to_state=entry.to_state, outcome=entry.outcome, actor=entry.actor,
        role=entry.role, channel=entry.channel, verdicts=entry.verdicts, data=entry.data,
        policy_hash=entry.policy.hash, prev_hash=entry.prev_hash,
    )


def check_case(case: Case, entries: Iterable[AuditEntry], last_seq: int, last_hash: str) -> list[CaseProblem]:
    """Problems with one case: chain breaks, sequence gaps, and replay disagreeing with the row.

    Reports the first broken entry of the chain (later ones are untrustworthy anyway) and any
    disagreement between the stored case and what replaying its applied entries gives.
    """
    problems: list[CaseProblem] = []
    spec = KINDS.get(case.kind)
    if spec is None:
        return [CaseProblem(case.number, None, f"unknown kind {case.kind!r}")]
    prev = GENESIS
    expected_seq = 1
    state: str | None = None
    facts: Mapping[str, Any] = {}
    tracking = NOTHING_TRACKED
    pinned: str | None = None  # the policy version of the newest entry: the one the case is decided by
    broken = False
    count = 0
    applied = 0
    for e in entries:
        count += 1
        if broken:
            continue
        if e.seq != expected_seq:
            problems.append(CaseProblem(case.number, e.seq, f"sequence gap: expected {expected_seq}, found {e.seq}"))
            broken = True
            continue
        if e.prev_hash != prev:
            problems.append(CaseProblem(case.number, e.seq, "prev_hash does not match the previous entry"))
            broken = True
            continue
        if hash_of(e) != e.hash:
            problems.append(CaseProblem(case.number, e.seq, "entry hash mismatch: the entry was altered"))
            broken = True
            continue
        if e.outcome == "applied":
            applied += 1
            if e.seq == 1:
                if e.event != "open" or e.to_state != spec.initial:
                    problems.append(CaseProblem(case.number, e.seq, "first entry is not the opening"))
                    broken = True
                    continue
                state = spec.initial
            elif e.event in META_EVENTS:
                if e.from_state != state or e.to_state != state:
                    problems.append(CaseProblem(case.number, e.seq, f"replay: {e.event} must not change the state"))
                    broken = True
                    continue
            else:
                target = spec.target(state or "", e.event)
                if e.from_state != state or target is None or target != e.to_state:
                    problems.append(CaseProblem(
                        case.number, e.seq,
                        f"replay: {e.event} from {e.from_state} to {e.to_state} is not a legal move from {state}"))
                    broken = True
                    continue
                state = e.to_state
            given, kept = split(e.data)  # as transition.advance (and opened) take an entry's data
            facts, tracking = (given if e.seq == 1 else merge(facts, given)), tracking.absorb(kept)
        elif e.outcome != "refused":
            problems.append(CaseProblem(case.number, e.seq, f"unknown outcome {e.outcome!r}"))
            broken = True
            continue
        prev, pinned = e.hash, e.policy.hash
        expected_seq += 1
    if broken:
        return problems
    if count == 0:
        return [CaseProblem(case.number, None, "case has no audit trail")]
    if last_seq != expected_seq - 1 or last_hash != prev:
        problems.append(CaseProblem(case.number, None,
                                    f"trail ends at seq {expected_seq - 1}, the case row says {last_seq}"))
    if state != case.state:
        problems.append(CaseProblem(case.number, None,
                                    f"stored state {case.state!r} differs from replayed state {state!r}"))
    if applied != case.version:
        problems.append(CaseProblem(case.number, None,
                                    f"stored version {case.version} differs from {applied} applied entries"))
    if canonical(facts) != canonical(case.facts):
        problems.append(CaseProblem(case.number, None, "stored facts differ from replayed facts"))
    if tracking != case.tracking:
        problems.append(CaseProblem(case.number, None, "stored priority, queue, breaches or timer note differ from "
                                                       "the replayed ones"))
    if pinned != case.policy.hash:
        problems.append(CaseProblem(case.number, None, f"stored policy version {case.policy.short} is not the one "
                                                       f"its newest entry was decided by ({(pinned or '')[:12]})"))
    return problems
