"""What a decision says about the event's data, as an operator or an auditor reads it on the trail.

Who may write which fact (``fact_not_permitted``: the facts refused and what the role may write instead), a
judged fact an ordinary event may not change (``fact_judged``: the value held, the value given), what an
``amend`` records (each change, old value to new) or why it is refused, and the reason a ``reject`` names.
Each is decided by :func:`casework.decide.decide` on the shipped policy, on one case at a fixed instant.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from casework import Actor, load_policy, parse_policy
from casework.decide import decide, decide_opening, opening_roles
from casework.domain import Case, Decision, Verdict
from casework.machines import KINDS
from casework.transition import opened

NOW = datetime(2026, 11, 22, 2, tzinfo=UTC)
POLICY = load_policy()
AGENT, CUSTOMER = Actor("alice", "agent"), Actor("c-1", "customer")
REJECTIONS = ["deadline_passed", "condition", "missing_proof", "fraud"]  # the shipped policy's, in its order


def refund(state: str = "submitted", **facts: Any) -> Case:
    """A refund of 59.00 (all that was paid) by customer c-1, in ``state``."""
    case = opened("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "59.00", "paid": "59.00",
                                                   "customer": "c-1", **facts}, POLICY, NOW)
    return replace(case, state=state)


def verdict(decision: Decision, guard: str) -> Verdict:
    [found] = [v for v in decision.verdicts if v.guard == guard]
    return found


# ---- amend: what it changes, old value to new ---------------------------------------------------------------
def test_an_amend_that_changes_no_value_is_refused_saying_so():
    # the amount written again as it stands, with the note the policy asks of an amend: nothing is amended
    decision = decide(POLICY, refund(), "amend", AGENT, {"amount": "59.00", "note": "re-checked"}, NOW)
    assert not decision.allowed and decision.codes == ["field_missing"]
    assert verdict(decision, "amendment") == Verdict("amendment", False, "field_missing",
                                                     "an amend needs a fact whose value it changes",
                                                     {"missing": ["a changed fact"]})
    assert verdict(decision, "refund_amend_needs_note").passed  # the note is given; it is not what is amended


def test_an_amend_records_each_change_old_to_new_and_none_for_a_fact_the_case_did_not_hold():
    data = {"amount": "50.00", "category": "electronics", "evidence": [{"type": "photo", "ref": "p1.jpg"}],
            "note": "coupon applied"}
    decision = decide(POLICY, refund(), "amend", AGENT, data, NOW)
    assert decision.allowed
    change = verdict(decision, "amendment")
    assert (change.passed, change.code) == (True, None)
    assert change.message == "amends amount 59.00 -> 50.00; category (none) -> electronics"  # evidence: in details
    assert change.details == {"changes": {"amount": {"from": "59.00", "to": "50.00"},
                                          "category": {"from": None, "to": "electronics"},
                                          "evidence": {"from": None, "to": [{"type": "photo", "ref": "p1.jpg"}]}}}


def test_an_amend_of_evidence_alone_says_it_amends_evidence():
    held = [{"type": "order_record", "ref": None}]
    photo = {"type": "photo", "ref": "p1.jpg"}
    decision = decide(POLICY, refund(evidence=held), "amend", AGENT, {"evidence": [photo], "note": "found"}, NOW)
    assert decision.allowed
    change = verdict(decision, "amendment")
    assert change.message == "amends evidence"
    assert change.details == {"changes": {"evidence": {"from": held, "to": [*held, photo]}}}


def test_an_amend_may_not_write_what_was_paid_out_either():
    decision = decide(POLICY, refund("approved"), "amend", AGENT,
                      {"amount": "50.00", "paid_out": "50.00", "note": "n"}, NOW)
    assert not decision.allowed and decision.codes == ["fact_not_permitted"]
    assert [v.guard for v in decision.verdicts][:2] == ["roles", "facts"]  # after who may act, before the rules
    assert verdict(decision, "facts").message == "role agent may not write paid_out; it may write: any fact"
    assert verdict(decision, "amendment").message == "amends amount 59.00 -> 50.00"  # paid_out is not amended


# ---- who may write which fact -------------------------------------------------------------------------------
def test_a_customer_writing_facts_their_role_may_not_is_told_each_one_and_what_they_may_write():
    decision = decide(POLICY, refund(), "cancel", CUSTOMER, {"amount": "50.00", "refunds_last_30_days": 1}, NOW)
    assert not decision.allowed and decision.codes == ["fact_not_permitted"]
    assert verdict(decision, "facts") == Verdict(
        "facts", False, "fact_not_permitted",
        "role customer may not write amount, refunds_last_30_days; it may write: channel, comment, evidence, "
        "locale, note, score, tracking",
        {"role": "customer", "facts": ["amount", "refunds_last_30_days"],
         "writable": ["channel", "comment", "evidence", "locale", "note", "score", "tracking"]})
    assert decide(POLICY, refund(), "cancel", CUSTOMER, {"note": "changed my mind"}, NOW).allowed


def test_a_role_that_writes_any_fact_still_may_not_write_what_was_paid_out():
    decision = decide(POLICY, refund(), "review", AGENT, {"paid_out": "59.00"}, NOW)
    assert not decision.allowed and decision.codes == ["fact_not_permitted"]
    assert verdict(decision, "facts") == Verdict("facts", False, "fact_not_permitted",
                                                 "role agent may not write paid_out; it may write: any fact",
                                                 {"role": "agent", "facts": ["paid_out"], "writable": None})


def test_a_role_that_writes_nothing_is_told_it_may_write_none():
    shipped = "    writes: [evidence, note, comment, score, locale, tracking, channel]\n"
    assert POLICY.source.count(shipped) == 1
    policy = parse_policy(POLICY.source.replace(shipped, "    writes: []\n"), "silent_customers.yaml")
    decision = decide(policy, refund(), "cancel", CUSTOMER, {"note": "changed my mind"}, NOW)
    assert decision.codes == ["fact_not_permitted"]
    assert verdict(decision, "facts").message == "role customer may not write note; it may write: none"
    assert verdict(decision, "facts").details == {"role": "customer", "facts": ["note"], "writable": []}
    assert decide(policy, refund(), "cancel", CUSTOMER, {}, NOW).allowed


def test_a_customer_opening_with_a_fact_they_may_not_give_is_told_so_when_opening():
    facts = {"order_id": "SO-1", "amount": "1.00", "paid": "1.00", "customer": "c-1", "flags": ["vip"]}
    decision = decide_opening(POLICY, "refund", facts, CUSTOMER)
    assert decision.to_state is None and decision.codes == ["fact_not_permitted"]
    refusal = verdict(decision, "facts")
    assert refusal.message.startswith("role customer may not write flags when opening a refund; it may write: "
                                      "address, amount, category, ")
    assert refusal.details["facts"] == ["flags"] and "flags" not in refusal.details["writable"]


# ---- judged facts: changed only by an amend -----------------------------------------------------------------
def test_an_event_changing_a_judged_fact_is_refused_naming_the_value_held():
    one = decide(POLICY, refund("under_review"), "approve", AGENT, {"amount": "50.00"}, NOW)
    assert one.codes == ["fact_judged"]
    assert verdict(one, "judged_facts") == Verdict(
        "judged_facts", False, "fact_judged",
        "amount 59.00 was judged by the rules; only an amend (judged again) may change it",
        {"facts": ["amount"], "held": {"amount": "59.00"}, "given": {"amount": "50.00"}})
    two = decide(POLICY, refund("under_review"), "approve", AGENT, {"amount": "50.00", "paid": "60.00"}, NOW)
    assert verdict(two, "judged_facts").message == (
        "amount 59.00, paid 59.00 were judged by the rules; only an amend (judged again) may change them")
    # the guards judge what the case holds, not what the event brought along
    assert verdict(two, "refund_not_above_paid").message == "amount 59.00 within paid 59.00"


# ---- reject: the reason it rejects for ----------------------------------------------------------------------
def test_a_reject_without_its_reason_is_refused_listing_the_reasons_the_policy_accepts():
    decision = decide(POLICY, refund("under_review"), "reject", AGENT, {}, NOW)
    assert not decision.allowed and decision.codes == ["field_missing"]
    assert verdict(decision, "rejection") == Verdict(
        "rejection", False, "field_missing",
        "a reject names its rejection reason (rejection), one of: deadline_passed, condition, missing_proof, fraud",
        {"missing": ["rejection"], "accepted": REJECTIONS})


@pytest.mark.parametrize("reason", REJECTIONS)
def test_a_reject_naming_its_reason_records_it(reason: str):
    decision = decide(POLICY, refund("under_review"), "reject", AGENT, {"rejection": reason}, NOW)
    assert decision.allowed and (decision.kind, decision.event, decision.from_state, decision.to_state) == (
        "refund", "reject", "under_review", "rejected")
    assert decision.policy == POLICY.ref
    assert verdict(decision, "rejection") == Verdict("rejection", True, None, f"rejected for {reason}",
                                                     {"rejection": reason})


def test_a_policy_without_rejections_lets_a_reject_go_without_a_reason():
    start = POLICY.source.index("\nrejections:\n")
    end = POLICY.source.index("\n\n", start + 1)
    policy = parse_policy(POLICY.source[:start] + POLICY.source[end:], "no_rejections.yaml")
    assert not policy.document.rejections
    decision = decide(policy, refund("under_review"), "reject", AGENT, {}, NOW)
    assert decision.allowed and [v.guard for v in decision.verdicts] == ["roles"]


# ---- the machine, whose case it is, who opens -----------------------------------------------------------------
def test_an_event_not_available_is_refused_naming_the_state_and_every_event_possible_from_it():
    decision = decide(POLICY, refund(), "pay", AGENT, {"note": "n"}, NOW)
    assert decision.to_state is None and decision.codes == ["not_available"]
    assert (decision.kind, decision.event, decision.from_state, decision.policy) == (
        "refund", "pay", "submitted", POLICY.ref)
    assert decision.verdicts == (Verdict(
        "machine", False, "not_available",
        "pay is not available from state submitted; possible: review, request_evidence, provide_evidence, approve, "
        "reject, cancel, amend",
        {"state": "submitted", "available": ["review", "request_evidence", "provide_evidence", "approve", "reject",
                                             "cancel", "amend"]}),)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_state_is_a_dead_end_so_a_refusal_always_names_an_event_possible(kind: str):
    machine = KINDS[kind]
    assert [state for state in machine.states if not machine.available(state)] == []
    assert machine.available("closed") == ("reopen", "rate")  # a closed case may still be reopened or rated


def test_a_customer_acting_on_another_customers_case_is_refused_first_naming_whose_it_is():
    stranger = Actor("c-2", "customer")
    decision = decide(POLICY, refund(), "cancel", stranger, {"note": "n"}, NOW)
    assert decision.codes == ["role_not_permitted"]
    assert decision.verdicts[0] == Verdict("owner", False, "role_not_permitted",
                                           "customer c-2 may act only on their own cases; this case is customer "
                                           "c-1's", {"actor": "c-2", "customer": "c-1"})
    unowned = refund()
    unowned = replace(unowned, facts={k: v for k, v in unowned.facts.items() if k != "customer"})
    refusal = decide(POLICY, unowned, "cancel", stranger, {}, NOW).verdicts[0]
    assert (refusal.message, refusal.details) == (
        "customer c-2 may act only on their own cases; this case has no customer", {"actor": "c-2", "customer": None})
    # the owner, and anyone not acting as a customer, is not asked whose case it is
    assert [v.guard for v in decide(POLICY, refund(), "cancel", CUSTOMER, {}, NOW).verdicts] == ["roles"]
    assert [v.guard for v in decide(POLICY, unowned, "cancel", AGENT, {}, NOW).verdicts] == ["roles"]


def test_what_the_system_keeps_is_written_by_the_engine_alone():
    decision = decide(POLICY, refund(), "review", AGENT, {"priority": 2}, NOW)
    assert decision.codes == ["fact_not_permitted"]
    assert verdict(decision, "facts").message == "role agent may not write priority; it may write: any fact"
    assert decide(POLICY, refund(), "review", Actor.system(), {"priority": 2}, NOW).allowed
    said = decide(POLICY, refund(), "review", Actor("system", "system"), {"priority": 2}, NOW)  # saying so is not it
    assert verdict(said, "facts").details["facts"] == ["priority"]


def test_an_ungranted_operator_is_refused_before_the_facts_they_may_not_write():
    granted = parse_policy(POLICY.source + "\noperators:\n  alice: [agent]\n", "granted.yaml")
    decision = decide(granted, refund("under_review"), "approve", Actor("mallory", "agent"), {"paid_out": "1.00"},
                      NOW)
    assert [v.guard for v in decision.verdicts] == ["operators", "roles", "facts", "refund_not_above_paid",
                                                    "refund_approval_limit", "refund_fraud_confirmed",
                                                    "refund_frequency"]
    assert decision.verdicts[0].message == "mallory was not granted the role agent; granted: none (customer only)"


def test_who_may_open_a_kind_is_told_with_the_roles_that_may():
    assert opening_roles(POLICY, "refund", CUSTOMER) == (Verdict(
        "open_roles", True, None, "role customer may open a refund",
        {"role": "customer", "allowed": ["customer", "agent", "supervisor"]}),)
    assert opening_roles(POLICY, "complaint", Actor("system", "system")) == (Verdict(
        "open_roles", False, "role_not_permitted",
        "role system may not open a complaint; allowed: customer, agent, supervisor",
        {"role": "system", "allowed": ["customer", "agent", "supervisor"]}),)
    granted = parse_policy(POLICY.source + "\noperators:\n  alice: [agent]\n", "granted.yaml")
    assert [(v.guard, v.passed) for v in opening_roles(granted, "refund", Actor("mallory", "agent"))] == [
        ("operators", False), ("open_roles", True)]
    assert [(v.guard, v.passed) for v in opening_roles(granted, "refund", AGENT)] == [("open_roles", True)]


def test_a_customer_opens_only_in_their_own_name():
    facts = {"order_id": "SO-1", "amount": "1.00", "paid": "1.00", "customer": "c-2"}
    decision = decide_opening(POLICY, "refund", facts, CUSTOMER)
    assert decision.to_state is None and decision.codes == ["role_not_permitted"]
    assert decision.verdicts[0] == Verdict("owner", False, "role_not_permitted",
                                           "customer c-1 may open cases only in their own name, not customer c-2's",
                                           {"actor": "c-1", "customer": "c-2"})
    own = decide_opening(POLICY, "refund", {**facts, "customer": "c-1"}, CUSTOMER)
    assert own.allowed and own.to_state == "submitted" and (own.kind, own.event, own.from_state) == (
        "refund", "open", "")
    assert [v.guard for v in own.verdicts] == ["open_roles"] and own.policy == POLICY.ref
    assert decide_opening(POLICY, "refund", facts, AGENT).to_state == "submitted"  # an agent opens for anyone


# ---- the reopening window: a closed case's, and only for reopening it ------------------------------------------
def test_the_reopen_window_limits_reopening_a_closed_case_only():
    closed = replace(refund("closed"), closed=True, state_since=NOW)
    year_on = NOW + timedelta(days=400)
    rated = decide(POLICY, closed, "rate", CUSTOMER, {"score": 4}, year_on)  # rating a closed case: no window
    assert rated.allowed and "reopen_within" not in [v.guard for v in rated.verdicts]
    assert decide(POLICY, closed, "reopen", CUSTOMER, {}, year_on).codes == ["window_expired"]
    complaint = opened("CP-20261122-000001", "complaint", {"order_id": "SO-1", "customer": "c-1"}, POLICY, NOW)
    resolved = replace(complaint, state="resolved", state_since=NOW)  # resolved, not closed: reopened any time
    reopened = decide(POLICY, resolved, "reopen", CUSTOMER, {}, year_on)
    assert reopened.allowed and [v.guard for v in reopened.verdicts] == ["roles"]


def test_what_the_system_keeps_is_given_at_opening_by_the_engine_alone():
    facts = {"order_id": "SO-1", "amount": "1.00", "paid": "1.00", "customer": "c-1", "priority": 2}
    refused = decide_opening(POLICY, "refund", facts, AGENT)
    assert refused.codes == ["fact_not_permitted"]
    assert verdict(refused, "facts").message == (
        "role agent may not write priority when opening a refund; it may write: any fact")
    # the engine's own actor may give it (whether it may open a refund at all is another verdict)
    assert [v.guard for v in decide_opening(POLICY, "refund", facts, Actor.system()).verdicts] == ["open_roles"]
