"""Integrity of the whole store: verify every chain and replay, export the audit trail."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from casework.audit import GENESIS, policy_chain_hash
from casework.domain import CaseProblem, VerifyReport
from casework.errors import CaseworkError
from casework.policybook import PolicyBook
from casework.privacy import mask
from casework.replay import check_case
from casework.store import Store

if TYPE_CHECKING:
    from casework.policies import PolicySet


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


def verify(store: Store, policies: PolicyBook) -> VerifyReport:
    """Check every case's hash chain and replay its trail against the stored row (every column the trail
    derives), entries that belong to no case, and the policy versions."""
    problems: list[CaseProblem] = []
    cases = entries = 0
    policy_of = _versions(policies)
    for number, stored, trail, damage in store.iter_all():
        cases += 1
        entries += len(trail)
        if stored is None:
            problems.append(CaseProblem(number, None, damage or "unreadable row"))
            continue
        problems.extend(check_case(stored.case, trail, stored.last_seq, stored.last_hash, policy_of,
                                   stored.opening_columns))
    for number, seq, case_id in store.orphan_entries():
        entries += 1
        problems.append(CaseProblem(number, seq, f"audit entry of no case (its case row {case_id} is missing)"))
    for h in store.altered_policies():
        problems.append(CaseProblem("(policy versions)", None,
                                    f"policy version {h[:12]}: its stored text no longer matches its hash"))
    for h, label, personal in store.policy_labels():
        policy = policy_of(h)
        if policy is not None and (label != policy.label or sorted(personal) != sorted(policy.document.personal)):
            problems.append(CaseProblem("(policy versions)", None,
                                        f"policy version {h[:12]}: its stored label or personal facts differ "
                                        "from its text"))
    prev = GENESIS
    for seq, h, prev_hash, chain in store.policy_chain():
        if prev_hash != prev or chain != policy_chain_hash(prev_hash, h):
            problems.append(CaseProblem("(policy versions)", seq, f"policy chain broken at version {h[:12]}"))
            break
        prev = chain
    return VerifyReport(cases, entries, tuple(problems))


def _versions(policies: PolicyBook) -> Callable[[str], PolicySet | None]:
    """The stored version with a hash, parsed once; None when it is missing or its text was altered."""
    found: dict[str, PolicySet | None] = {}

    def policy_of(policy_hash: str) -> PolicySet | None:
        if policy_hash not in found:
            try:
                found[policy_hash] = policies.version(policy_hash)
            except CaseworkError:
                found[policy_hash] = None
        return found[policy_hash]

    return policy_of
