"""Integrity of the whole store: verify every chain and replay, export the audit trail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from casework.audit import GENESIS, check_case, policy_chain_hash
from casework.domain import CaseProblem, VerifyReport
from casework.privacy import mask
from casework.store import Store


def export(store: Store, *, personal: Sequence[str] = (), redact: bool = False) -> Iterator[dict[str, Any]]:
    """Every audit entry of every case, oldest case first, as JSON-ready dicts (for JSON Lines).

    With ``redact``, the ``personal`` facts are replaced by ``[redacted]`` in each entry's data.
    """
    for number, stored, trail, damage in store.iter_all():
        kind = stored.case.kind if stored is not None else None
        for entry in trail:
            doc = {"number": number, "kind": kind, **entry.to_json()}
            if redact:
                doc["data"] = mask(doc["data"], personal, redact=True)
            yield doc
        if damage is not None:
            yield {"number": number, "kind": kind, "unreadable": damage}


def verify(store: Store) -> VerifyReport:
    """Check every case's hash chain and replay its trail against the stored case."""
    problems: list[CaseProblem] = []
    cases = entries = 0
    for number, stored, trail, damage in store.iter_all():
        cases += 1
        entries += len(trail)
        if stored is None:
            problems.append(CaseProblem(number, None, damage or "unreadable row"))
            continue
        problems.extend(check_case(stored.case, trail, stored.last_seq, stored.last_hash))
    for h in store.altered_policies():
        problems.append(CaseProblem("(policy versions)", None,
                                    f"policy version {h[:12]}: its stored text no longer matches its hash"))
    prev = GENESIS
    for seq, h, prev_hash, chain in store.policy_chain():
        if prev_hash != prev or chain != policy_chain_hash(prev_hash, h):
            problems.append(CaseProblem("(policy versions)", seq, f"policy chain broken at version {h[:12]}"))
            break
        prev = chain
    return VerifyReport(cases, entries, tuple(problems))
