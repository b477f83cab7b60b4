"""Integrity of the whole store: verify every case's trail, the global chain and the policy versions; export.

Two passes: case by case (each trail's hashes and links, replayed against its row: casework.replay),
then the global chain in place order, from its first entry to the head read before either pass
(entries sealed meanwhile belong to the next verify). With a digest, the chain must still hold the
entry the digest named, unchanged, at its place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from casework.audit import GENESIS, AuditKey, chain_link, policy_chain_hash, publication_hash
from casework.domain import AuditEntry
from casework.errors import CaseworkError, InvalidInput
from casework.findings import CaseProblem, ChainReport, Digest, VerifyReport
from casework.policies.files import content_hash
from casework.policybook import PolicyBook
from casework.privacy import mask
from casework.replay import check_case, check_refused_opening, kind_of
from casework.store import Store

if TYPE_CHECKING:
    from casework.policies import PolicySet


def export(store: Store, *, personal: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """Every audit entry of every case, oldest case first, then the openings refused (entries of no case, named by
    their series), as JSON-ready dicts (for JSON Lines).

    The ``personal`` facts (none unless given) are replaced by ``[redacted]`` in each entry's data.
    """
    for number, stored, trail, damage in store.iter_all():
        kind = stored.case.kind if stored is not None else None
        for entry in trail:
            yield _exported(entry, kind, personal)
        if damage is not None:
            yield {"number": number, "kind": kind, "unreadable": damage}
    for entry in store.refused_openings():
        yield _exported(entry, kind_of(entry.number), personal)


def _exported(entry: AuditEntry, kind: str | None, personal: Sequence[str]) -> dict[str, Any]:
    doc = {"number": entry.number, "kind": kind, **entry.to_json()}
    if personal:
        doc["data"] = mask(doc["data"], personal, redact=True)
    return doc


def verify(store: Store, policies: PolicyBook, since: Digest | str | None = None) -> VerifyReport:
    """Check every case's hash chain and replay its trail against the stored row (every column the trail
    derives), entries that belong to no case, the policy versions, and the global chain (with the store's
    audit key, if it has one), which must extend ``since`` (a digest, or its text) when given."""
    if isinstance(since, str):
        try:
            since = Digest.parse(since)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="since", value=since) from None
    chain_report, problems = check_chain(store, store.key, since)
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
    damaged: list[tuple[str, int | None, str]] = []
    for entry in store.refused_openings(damaged=damaged):
        entries += 1
        problems.extend(check_refused_opening(entry, policy_of))
    entries += len(damaged)
    problems.extend(CaseProblem(number, seq, f"refused opening unreadable: {why}") for number, seq, why in damaged)
    for number, seq, case_id in store.orphan_entries():
        entries += 1
        problems.append(CaseProblem(number, seq, f"audit entry of no case (its case row {case_id} is missing)"))
    for h in (h for h, text in store.policy_texts() if content_hash(text) != h):
        problems.append(CaseProblem("(policy versions)", None,
                                    f"policy version {h[:12]}: its stored text no longer matches its hash"))
    for h, label, personal in store.policy_labels():
        policy = policy_of(h)
        if policy is not None and (label != policy.label or sorted(personal) != sorted(policy.document.personal)):
            problems.append(CaseProblem("(policy versions)", None,
                                        f"policy version {h[:12]}: its stored label or personal facts differ "
                                        "from its text"))
    prev = GENESIS
    versions = store.policy_chain()
    for expected, (seq, h, prev_hash, chain) in enumerate(versions, 1):
        if seq != expected or prev_hash != prev or chain != policy_chain_hash(prev_hash, h):
            problems.append(CaseProblem("(policy versions)", seq, f"policy chain broken at version {h[:12]}"))
            break
        prev = chain
    problems.extend(_publication_problems(store, {v[1] for v in versions}))
    return VerifyReport(cases, entries, tuple(problems), chain_report, since)


def _publication_problems(store: Store, stored: set[str]) -> Iterator[CaseProblem]:
    """The publication chain: every link as recomputed, each naming a stored version, and (with the store's
    audit key) each MAC; once one publication is authenticated, every later one must be."""
    prev, keyed = GENESIS, False
    for expected, p in enumerate(store.publications(), 1):
        where = f"publication {p.seq} (of {p.hash[:12]} by {p.actor})"
        link = publication_hash(p.prev_hash, seq=p.seq, policy_hash=p.hash, file=p.file, actor=p.actor,
                                role=p.role, at=p.at.isoformat())
        problem = None
        if p.seq != expected or p.prev_hash != prev or p.chain_hash != link:
            problem = f"publication chain broken at {where}: a publication was changed, removed or reordered"
        elif p.hash not in stored:
            problem = f"{where} names a policy version that is not stored"
        elif p.mac is None and keyed:
            problem = f"{where} is not authenticated by the audit key but follows publications that are"
        elif p.mac is not None and store.key is not None and p.mac != store.key.publication_mac(p.chain_hash):
            problem = f"{where} is not authenticated by the audit key (altered or forged)"
        if problem is not None:
            yield CaseProblem("(policy publications)", p.seq, problem)
            return
        prev, keyed = p.chain_hash, keyed or p.mac is not None


GLOBAL = "(global chain)"


def check_chain(store: Store, key: AuditKey | None, since: Digest | None) -> tuple[ChainReport, list[CaseProblem]]:
    """The global chain from its first entry to its head: no place missing, every link (and, with ``key``,
    every MAC) as recomputed, no unauthenticated entry after an authenticated one; then ``since``."""
    head_seq, head_link = store.chain_head()
    chain_key = store.chain_key() or None
    problems: list[CaseProblem] = []
    prev: str = GENESIS
    expect = 1
    keyed_from: int | None = None
    unchecked = 0
    at_since = GENESIS if since is not None and since.seq == 0 else None
    for gseq, _id, _case, number, seq, entry_hash, link, mac in store.iter_chain(head_seq):
        problem = None
        if gseq != expect:
            problem = f"global chain: places {expect} to {gseq - 1} are missing: entries were removed"
        elif mac is not None and not chain_key:
            problem = (f"global chain: the entry at place {gseq} carries a MAC but the database says its chain is "
                       "written without a key")
        elif mac is None and keyed_from is not None:
            problem = (f"global chain: the entry at place {gseq} is not authenticated by a key but follows entries "
                       f"that are (from place {keyed_from}): the chain was rewritten without the key")
        elif mac is not None and key is None:
            unchecked += 1  # written with a key verify was not given: its place is checked, not its link
        elif mac is not None and key is not None and mac != key.entry_mac(entry_hash):
            problem = f"global chain: the entry at place {gseq} is not authenticated by the key (altered or forged" + (
                f"; the database says its chain is written with key id {chain_key}, this key's id is {key.id})"
                if chain_key and chain_key != key.id else ")")
        elif link != chain_link(prev, gseq, entry_hash, key if mac is not None else None):
            problem = f"global chain: the link at place {gseq} does not match: an entry at or before it was " \
                      "changed, removed or reordered"
        if problem is not None:
            problems.append(CaseProblem(number, seq, problem))
            break
        if mac is not None and keyed_from is None:
            keyed_from = gseq
        if since is not None and gseq == since.seq:
            at_since = link
        prev, expect = link or "", expect + 1
    pending = store.unsealed()
    for _g, _id, _case, number, seq, entry_hash, _link, mac in pending:
        if store.dialect == "sqlite":  # every SQLite writer holds the seal: nothing is ever left unsealed
            problems.append(CaseProblem(number, seq, "global chain: the entry is not sealed (its place was removed)"))
        elif (chain_key or keyed_from) and key is not None and (mac is None or mac != key.entry_mac(entry_hash)):
            problems.append(CaseProblem(number, seq, "global chain: an entry waiting to be sealed is not "
                                                     "authenticated by the key (altered or forged)"))
    if since is not None:
        problems.extend(_extends(since, head_seq, at_since))
    report = ChainReport(Digest(head_seq, head_link), len(pending), key.id if key is not None else None, chain_key,
                         keyed_from, unchecked)
    return report, problems


def _extends(since: Digest, head: int, found: str | None) -> list[CaseProblem]:
    """Whether the chain still holds, at the digest's place, the link the digest named."""
    if since.seq > head:
        return [CaseProblem(GLOBAL, since.seq, f"the chain ends at place {head}, before the digest's place "
                                               f"{since.seq}: entries were removed (a cut tail or an emptied table)")]
    if found != since.hash:
        return [CaseProblem(GLOBAL, since.seq, f"the entry at place {since.seq} is not the one the digest named: "
                                               "the chain was rewritten at or before it")]
    return []


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
