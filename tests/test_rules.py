"""One example per default rule of DESIGN.md ("Required default rules"), against the shipped policies.yaml.

The engine clock stands at 2026-11-22 10:00 (Asia/Shanghai); delivery dates are placed relative to it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from casework import KINDS, Actor, Case, Decision, Engine, FixedClock, InvalidInput, TransitionDenied

CUSTOMER = Actor("cust-1001", "customer")
OTHER_CUSTOMER = Actor("cust-2002", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("sam", "supervisor")
SYSTEM = Actor.system()
SHANGHAI = ZoneInfo("Asia/Shanghai")


# ---- helpers -------------------------------------------------------------------------------------
def days_ago(clock: FixedClock, days: int) -> str:
    """The ISO date ``days`` calendar days before the clock's date in the policy's time zone."""
    return (clock().astimezone(SHANGHAI).date() - timedelta(days=days)).isoformat()


def open_return(engine: Engine, clock: FixedClock, *, delivered_days_ago: int, reason: str = "no_reason",
                condition: str | None = "unused", category: str | None = "apparel",
                evidence: list[str] | None = None, **extra: Any) -> Case:
    facts: dict[str, Any] = {
        "order_id": "SO-88002", "amount": "129.00", "paid": "129.00",
        "delivered": days_ago(clock, delivered_days_ago), "reason": reason,
        "evidence": ["order_record"] if evidence is None else evidence,
    }
    if condition is not None:
        facts["condition"] = condition
    if category is not None:
        facts["category"] = category
    facts.update(extra)
    facts, actor = opener(facts)
    return engine.open("return", facts, actor=actor, channel="app")


def opener(facts: dict[str, Any]) -> tuple[dict[str, Any], Actor]:
    """The customer opens their own case; one with what only the desk knows (a flag, a counter) is opened by an
    agent for them (a customer may not open with those)."""
    if {"flags", "refunds_last_30_days"}.isdisjoint(facts):
        return facts, CUSTOMER
    return {**facts, "customer": CUSTOMER.id}, AGENT


def open_refund(engine: Engine, amount: str = "59.00", paid: str | None = None, **extra: Any) -> Case:
    facts = {"order_id": "SO-10001", "amount": amount, "paid": paid or amount, "reason": "not_delivered", **extra}
    facts, actor = opener(facts)
    return engine.open("refund", facts, actor=actor, channel="app")


def open_dispute(engine: Engine, amount: str = "20.00", paid: str = "199.00", **extra: Any) -> Case:
    facts, actor = opener({"order_id": "SO-30003", "amount": amount, "paid": paid, **extra})
    return engine.open("dispute", facts, actor=actor, channel="email")


def open_complaint(engine: Engine, **extra: Any) -> Case:
    facts, actor = opener({"order_id": "SO-40004", "comment": "nobody answered my refund for a week", **extra})
    return engine.open("complaint", facts, actor=actor, channel="hotline")


def refused(engine: Engine, number: str, event: str, actor: Actor, data: dict[str, Any] | None = None) -> Decision:
    """Fire an event that must be refused; return the decision carried by TransitionDenied."""
    before = engine.get(number)
    with pytest.raises(TransitionDenied) as info:
        engine.fire(number, event, actor=actor, data=data)
    after = engine.get(number)
    assert (after.state, after.version, after.facts) == (before.state, before.version, before.facts)
    decision = info.value.decision
    assert not decision.allowed
    assert decision.event == event
    return decision


def only_reason(decision: Decision, code: str) -> Any:
    """The decision's single failed verdict, which must carry ``code``."""
    assert decision.codes == [code], [(r.code, r.message) for r in decision.reasons]
    return decision.reasons[0]


# ---- return, no reason ---------------------------------------------------------------------------
def test_no_reason_return_after_7_days_is_refused_with_window_expired(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=20)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "window_expired")
    assert "20 days" in reason.message
    assert "7 days" in reason.message
    assert "no-reason" in reason.message


def test_no_reason_return_on_day_7_is_allowed(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=7)
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_no_reason_return_on_day_8_is_refused_with_window_expired(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=8)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "window_expired")
    assert "8 days" in reason.message and "7 days" in reason.message


def test_a_delivery_date_after_today_is_refused_not_counted_as_in_time(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=-3)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "date_in_future")
    assert reason.details["date"] == days_ago(clock, -3) and "later than now" in reason.message
    assert sqlite_engine.messages(refused(sqlite_engine, case.number, "approve", AGENT), lang="en") == [
        f"The delivery date on your request ({days_ago(clock, -3)}) is later than today; please check it."]


def test_a_delivery_time_an_hour_ahead_is_refused_and_an_hour_ago_is_in_time(sqlite_engine: Engine,
                                                                             clock: FixedClock):
    local = clock().astimezone(SHANGHAI).replace(tzinfo=None)
    ahead = open_return(sqlite_engine, clock, delivered_days_ago=0,
                        delivered=(local + timedelta(hours=1)).isoformat(timespec="seconds"))
    only_reason(refused(sqlite_engine, ahead.number, "approve", AGENT), "date_in_future")
    past = open_return(sqlite_engine, clock, delivered_days_ago=0,
                       delivered=(local - timedelta(hours=1)).isoformat(timespec="seconds"))
    assert sqlite_engine.fire(past.number, "approve", actor=AGENT).state == "approved"


def test_a_time_of_day_without_an_offset_is_read_in_the_policys_zone(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=0, delivered="2026-11-20T09:30:00")
    assert case.facts["delivered"] == "2026-11-20T09:30:00+08:00"  # Asia/Shanghai, not UTC


def test_no_reason_return_window_is_judged_when_the_agent_decides(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=6)
    clock.advance(days=2)  # the case waited in the queue: now day 8
    only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "window_expired")


@pytest.mark.parametrize("condition", ["unused", "unopened"])
def test_no_reason_return_of_unused_item_is_allowed(sqlite_engine: Engine, clock: FixedClock, condition: str):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, condition=condition)
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


@pytest.mark.parametrize("condition", ["used", "damaged"])
def test_no_reason_return_of_used_item_is_refused_with_condition_unacceptable(
        sqlite_engine: Engine, clock: FixedClock, condition: str):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, condition=condition)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "condition_unacceptable")
    assert condition in reason.message
    assert reason.details["condition"] == condition


def test_no_reason_return_with_unknown_condition_is_refused_with_condition_unacceptable(
        sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, condition=None)
    only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "condition_unacceptable")


@pytest.mark.parametrize("category", ["custom_made", "perishable_food"])
def test_no_reason_return_of_excluded_category_is_refused_with_category_excluded(
        sqlite_engine: Engine, clock: FixedClock, category: str):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, category=category)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "category_excluded")
    assert category in reason.message
    assert reason.details["category"] == category


@pytest.mark.parametrize("category", ["electronics", "garden_gnomes", None])
def test_no_reason_return_of_ordinary_or_unknown_category_is_allowed(
        sqlite_engine: Engine, clock: FixedClock, category: str | None):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, category=category)
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_no_reason_return_without_order_record_is_refused_with_evidence_missing(
        sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, evidence=["invoice"])
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "evidence_missing")
    assert reason.details["missing"] == ["order_record"]
    assert "order_record" in reason.message


def test_no_reason_return_evidence_given_later_is_counted(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=3, evidence=[])
    sqlite_engine.fire(case.number, "review", actor=AGENT)
    sqlite_engine.fire(case.number, "request_evidence", actor=AGENT)
    sqlite_engine.fire(case.number, "provide_evidence", actor=CUSTOMER,
                       data={"evidence": ["order_record=SO-88002.pdf"]})
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_return_window_counts_calendar_days_in_the_policy_time_zone(sqlite_engine: Engine, clock: FixedClock):
    # 01:00 on 22 Nov in Shanghai is still 21 Nov in UTC: delivered 14 Nov is 8 days ago in Shanghai.
    clock.set("2026-11-22T01:00:00+08:00")
    case = open_return(sqlite_engine, clock, delivered_days_ago=8)
    assert case.facts["delivered"] == "2026-11-14"
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "window_expired")
    assert "8 days" in reason.message


# ---- return, the merchant's fault -----------------------------------------------------------------
def test_defective_return_at_day_10_with_photo_is_allowed(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=10, reason="defective", condition="used",
                       evidence=["order_record", "photo=IMG_0042.jpg"])
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


@pytest.mark.parametrize("reason", ["defective", "damaged_in_transit", "wrong_item"])
@pytest.mark.parametrize("media", ["photo", "video"])
def test_fault_return_within_14_days_with_photo_or_video_is_allowed(
        sqlite_engine: Engine, clock: FixedClock, reason: str, media: str):
    case = open_return(sqlite_engine, clock, delivered_days_ago=14, reason=reason, condition="damaged",
                       evidence=["order_record", media])
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_defective_return_after_14_days_is_refused_with_window_expired(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=15, reason="defective",
                       evidence=["order_record", "photo"])
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "window_expired")
    assert "15 days" in reason.message and "14 days" in reason.message


@pytest.mark.parametrize("category", ["custom_made", "perishable_food"])
def test_defective_return_has_no_category_exclusion_and_any_condition(
        sqlite_engine: Engine, clock: FixedClock, category: str):
    case = open_return(sqlite_engine, clock, delivered_days_ago=10, reason="defective", condition="used",
                       category=category, evidence=["order_record", "video"])
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_defective_return_without_photo_or_video_is_refused_with_evidence_missing(
        sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=10, reason="defective",
                       evidence=["order_record", "invoice"])
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "evidence_missing")
    missing = reason.details["missing"]
    assert len(missing) == 1
    assert "photo" in missing[0] and "video" in missing[0]
    assert "order_record" not in missing


def test_defective_return_without_any_evidence_lists_both_missing(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=10, reason="defective", evidence=[])
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "evidence_missing")
    missing = reason.details["missing"]
    assert "order_record" in missing
    assert any("photo" in m and "video" in m for m in missing)


# ---- refund ------------------------------------------------------------------------------------
def test_refund_amount_above_paid_is_refused_with_amount_exceeds_paid(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, amount="60.00", paid="59.00")
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "amount_exceeds_paid")
    assert "60.00" in reason.message and "59.00" in reason.message


def test_refund_amount_equal_to_paid_is_allowed(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, amount="59.00", paid="59.00")
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_agent_approving_2000_01_is_refused_with_approval_limit_exceeded(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, amount="2000.01")
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "approval_limit_exceeded")
    assert "2000.01" in reason.message and "2000.00" in reason.message


def test_agent_approving_2000_00_is_allowed(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, amount="2000.00")
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_supervisor_approves_5000(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, amount="5000.00")
    only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "approval_limit_exceeded")
    approved = sqlite_engine.fire(case.number, "approve", actor=SUPERVISOR)
    assert approved.state == "approved"
    assert sqlite_engine.fire(case.number, "pay", actor=SYSTEM).state == "refunded"


def test_return_refund_above_paid_is_refused_with_amount_exceeds_paid(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=2, amount="150.00", paid="129.00")
    for event, actor in [("approve", AGENT), ("ship", CUSTOMER), ("receive", AGENT)]:
        sqlite_engine.fire(case.number, event, actor=actor)
    only_reason(refused(sqlite_engine, case.number, "refund", AGENT), "amount_exceeds_paid")
    assert sqlite_engine.fire(case.number, "exchange", actor=AGENT).state == "exchanged"


# ---- fraud ---------------------------------------------------------------------------------------
def test_fraud_confirmed_customer_refund_is_refused_with_fraud_flagged(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, flags=["fraud_confirmed"])
    only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "fraud_flagged")
    only_reason(refused(sqlite_engine, case.number, "approve", SUPERVISOR), "fraud_flagged")


def test_fraud_confirmed_customer_return_is_refused_with_fraud_flagged(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=2, flags=["fraud_confirmed"])
    only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "fraud_flagged")


def test_vip_flag_does_not_block_a_refund(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, flags=["vip"])
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


def test_5_refunds_in_30_days_needs_a_supervisor(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, refunds_last_30_days=5)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "fraud_flagged")
    assert "5" in reason.message and "supervisor" in reason.message
    assert sqlite_engine.fire(case.number, "approve", actor=SUPERVISOR).state == "approved"


def test_4_refunds_in_30_days_an_agent_may_approve(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, refunds_last_30_days=4)
    assert sqlite_engine.fire(case.number, "approve", actor=AGENT).state == "approved"


# ---- amount dispute ------------------------------------------------------------------------------
@pytest.mark.parametrize("proof", ["payment_voucher", "order_confirmation"])
def test_dispute_investigation_needs_payment_voucher_or_order_confirmation(sqlite_engine: Engine, proof: str):
    case = open_dispute(sqlite_engine)
    reason = only_reason(refused(sqlite_engine, case.number, "investigate", AGENT), "evidence_missing")
    assert any("payment_voucher" in m and "order_confirmation" in m for m in reason.details["missing"])
    sqlite_engine.fire(case.number, "provide_evidence", actor=CUSTOMER, data={"evidence": [f"{proof}=mail-1.eml"]})
    assert sqlite_engine.fire(case.number, "investigate", actor=AGENT).state == "investigating"


def test_dispute_evidence_after_request_returns_to_the_desk(sqlite_engine: Engine):
    case = open_dispute(sqlite_engine)
    assert sqlite_engine.fire(case.number, "request_evidence", actor=AGENT).state == "awaiting_evidence"
    only_reason(refused(sqlite_engine, case.number, "investigate", AGENT), "not_available")
    sqlite_engine.fire(case.number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["payment_voucher"]})
    assert sqlite_engine.fire(case.number, "investigate", actor=AGENT).state == "investigating"


@pytest.mark.parametrize(("amount", "paid"), [("0.00", "199.00"), ("0", "199.00"), ("199.01", "199.00")])
def test_dispute_difference_zero_or_above_paid_is_refused_with_amount_exceeds_paid(
        sqlite_engine: Engine, amount: str, paid: str):
    case = open_dispute(sqlite_engine, amount=amount, paid=paid, evidence=["payment_voucher"])
    only_reason(refused(sqlite_engine, case.number, "investigate", AGENT), "amount_exceeds_paid")


def test_dispute_difference_equal_to_paid_is_allowed(sqlite_engine: Engine):
    case = open_dispute(sqlite_engine, amount="199.00", paid="199.00", evidence=["order_confirmation"])
    assert sqlite_engine.fire(case.number, "investigate", actor=AGENT).state == "investigating"


def _investigating_dispute(engine: Engine, amount: str = "20.00") -> Case:
    case = open_dispute(engine, amount=amount, evidence=["payment_voucher=receipt.png"])
    engine.fire(case.number, "investigate", actor=AGENT)
    return case


def test_dispute_adjustment_above_the_disputed_difference_is_refused(sqlite_engine: Engine):
    case = _investigating_dispute(sqlite_engine, amount="20.00")
    reason = only_reason(refused(sqlite_engine, case.number, "adjust", AGENT, {"adjustment": "20.01"}),
                         "amount_exceeds_paid")
    assert "20.01" in reason.message and "20.00" in reason.message


def test_dispute_adjustment_up_to_the_disputed_difference_is_allowed(sqlite_engine: Engine):
    case = _investigating_dispute(sqlite_engine, amount="20.00")
    adjusted = sqlite_engine.fire(case.number, "adjust", actor=AGENT, data={"adjustment": "20.00"})
    assert adjusted.state == "adjusted"
    assert adjusted.facts["adjustment"] == "20.00"


def test_dispute_adjustment_of_zero_is_refused(sqlite_engine: Engine):
    case = _investigating_dispute(sqlite_engine)
    only_reason(refused(sqlite_engine, case.number, "adjust", AGENT, {"adjustment": "0.00"}), "amount_exceeds_paid")


def test_dispute_adjustment_without_an_amount_is_refused(sqlite_engine: Engine):
    case = _investigating_dispute(sqlite_engine)
    decision = refused(sqlite_engine, case.number, "adjust", AGENT)
    assert decision.codes  # the adjustment is not known; nothing is adjusted


def test_dispute_adjustment_above_the_agent_limit_needs_a_supervisor(sqlite_engine: Engine):
    case = open_dispute(sqlite_engine, amount="3000.00", paid="5000.00", evidence=["payment_voucher"])
    sqlite_engine.fire(case.number, "investigate", actor=AGENT)
    only_reason(refused(sqlite_engine, case.number, "adjust", AGENT, {"adjustment": "2500.00"}),
                "approval_limit_exceeded")
    adjusted = sqlite_engine.fire(case.number, "adjust", actor=SUPERVISOR, data={"adjustment": "2500.00"})
    assert adjusted.state == "adjusted"


def test_dispute_can_be_dismissed_without_evidence(sqlite_engine: Engine):
    case = open_dispute(sqlite_engine)
    assert sqlite_engine.fire(case.number, "dismiss", actor=AGENT).state == "dismissed"
    assert sqlite_engine.fire(case.number, "close", actor=SYSTEM).state == "closed"


# ---- complaint -----------------------------------------------------------------------------------
def test_complaint_resolve_without_note_is_refused_with_field_missing(sqlite_engine: Engine):
    case = open_complaint(sqlite_engine)
    sqlite_engine.fire(case.number, "acknowledge", actor=AGENT)
    reason = only_reason(refused(sqlite_engine, case.number, "resolve", AGENT), "field_missing")
    assert reason.details["missing"] == ["note"]


def test_complaint_resolve_with_note_is_allowed(sqlite_engine: Engine):
    case = open_complaint(sqlite_engine)
    sqlite_engine.fire(case.number, "acknowledge", actor=AGENT)
    resolved = sqlite_engine.fire(case.number, "resolve", actor=AGENT, data={"note": "refund re-sent, apologised"})
    assert resolved.state == "resolved"
    assert "note" not in resolved.facts  # the resolution note is the thread's
    assert sqlite_engine.thread(case.number)[-1].text == "refund re-sent, apologised"


def test_complaint_customer_escalation_before_a_response_is_refused(sqlite_engine: Engine):
    case = open_complaint(sqlite_engine)
    only_reason(refused(sqlite_engine, case.number, "escalate", CUSTOMER), "response_pending")


def test_complaint_customer_escalation_after_acknowledge_is_allowed(sqlite_engine: Engine):
    case = open_complaint(sqlite_engine)
    acknowledged = sqlite_engine.fire(case.number, "acknowledge", actor=AGENT)
    assert acknowledged.responded_at is not None
    assert sqlite_engine.fire(case.number, "escalate", actor=CUSTOMER).state == "escalated"


@pytest.mark.parametrize("actor", [AGENT, SUPERVISOR], ids=["agent", "supervisor"])
def test_complaint_staff_escalation_needs_no_prior_response(sqlite_engine: Engine, actor: Actor):
    case = open_complaint(sqlite_engine)
    assert sqlite_engine.fire(case.number, "escalate", actor=actor).state == "escalated"


def test_complaint_acknowledge_is_the_first_response(sqlite_engine: Engine, clock: FixedClock):
    case = open_complaint(sqlite_engine)
    assert case.first_response_due == clock() + timedelta(hours=24)
    clock.advance(hours=3)
    acknowledged = sqlite_engine.fire(case.number, "acknowledge", actor=AGENT)
    assert acknowledged.responded_at == clock()
    assert acknowledged.first_response_due == case.first_response_due
    assert acknowledged.due_at != case.first_response_due  # the first-response clock has stopped


# ---- roles, evaluation, availability, deadlines --------------------------------------------------
def test_customer_approving_a_refund_is_refused_with_role_not_permitted(sqlite_engine: Engine):
    case = open_refund(sqlite_engine)
    decision = refused(sqlite_engine, case.number, "approve", CUSTOMER)
    assert decision.codes[0] == "role_not_permitted"
    # Every guard is still evaluated: a customer also has no approval authority.
    assert set(decision.codes) <= {"role_not_permitted", "approval_limit_exceeded"}
    reason = decision.reasons[0]
    assert "customer" in reason.message
    assert "agent" in reason.details["allowed"]


def test_system_may_not_approve_a_refund(sqlite_engine: Engine):
    case = open_refund(sqlite_engine)
    decision = refused(sqlite_engine, case.number, "approve", SYSTEM)
    assert "role_not_permitted" in decision.codes


def test_customer_may_not_act_on_another_customers_case(sqlite_engine: Engine):
    case = open_refund(sqlite_engine)
    decision = refused(sqlite_engine, case.number, "cancel", OTHER_CUSTOMER)
    assert decision.codes == ["role_not_permitted"]
    assert sqlite_engine.fire(case.number, "cancel", actor=CUSTOMER).state == "cancelled"


def test_supervisor_may_do_what_an_agent_may(sqlite_engine: Engine):
    case = open_complaint(sqlite_engine)
    for event, data in [("acknowledge", None), ("investigate", None), ("resolve", {"note": "done"})]:
        sqlite_engine.fire(case.number, event, actor=SUPERVISOR, data=data)
    assert sqlite_engine.get(case.number).state == "resolved"


def test_all_guards_are_evaluated_at_once(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=20, condition="used", category="custom_made",
                       evidence=[], flags=["fraud_confirmed"])
    decision = refused(sqlite_engine, case.number, "approve", AGENT)
    assert set(decision.codes) == {"window_expired", "condition_unacceptable", "category_excluded",
                                   "evidence_missing", "fraud_flagged"}
    assert len(decision.codes) == 5
    # A customer trying the same gets the role refusal on top of every rule.
    customer_decision = refused(sqlite_engine, case.number, "approve", CUSTOMER)
    assert set(customer_decision.codes) == set(decision.codes) | {"role_not_permitted"}


def test_all_guards_on_a_refund_are_listed_together(sqlite_engine: Engine):
    case = open_refund(sqlite_engine, amount="3000.00", paid="2500.00", flags=["fraud_confirmed"],
                       refunds_last_30_days=7)
    decision = refused(sqlite_engine, case.number, "approve", AGENT)
    assert sorted(decision.codes) == sorted(["amount_exceeds_paid", "approval_limit_exceeded", "fraud_flagged",
                                             "fraud_flagged"])


def test_not_available_names_the_possible_events(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=2)
    reason = only_reason(refused(sqlite_engine, case.number, "ship", CUSTOMER), "not_available")
    possible = list(KINDS["return"].available("submitted"))
    assert reason.details["available"] == possible
    assert "submitted" in reason.message
    for event in possible:
        assert event in reason.message
    assert "ship" not in possible


def test_not_available_from_a_closed_case(sqlite_engine: Engine):
    case = open_refund(sqlite_engine)
    for event in ("cancel", "close"):
        sqlite_engine.fire(case.number, event, actor=AGENT)
    reason = only_reason(refused(sqlite_engine, case.number, "approve", AGENT), "not_available")
    assert reason.details["available"] == list(KINDS["refund"].available("closed"))
    assert "approve" not in reason.details["available"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_first_response_deadline_is_24h_after_opening(sqlite_engine: Engine, clock: FixedClock, kind: str):
    facts = {
        "refund": {"order_id": "A1", "amount": "10.00", "paid": "10.00"},
        "return": {"order_id": "A1", "delivered": days_ago(clock, 1), "reason": "no_reason"},
        "dispute": {"order_id": "A1", "amount": "1.00", "paid": "10.00"},
        "complaint": {"order_id": "A1"},
    }[kind]
    case = sqlite_engine.open(kind, facts, actor=CUSTOMER)
    assert case.opened_at == clock()
    assert case.first_response_due == case.opened_at + timedelta(hours=24)
    assert case.due_at == case.first_response_due
    assert case.responded_at is None
    stored = sqlite_engine.get(case.number)
    assert stored.first_response_due == clock() + timedelta(hours=24)


def test_overdue_first_response_is_found(sqlite_engine: Engine, clock: FixedClock):
    late = open_refund(sqlite_engine)
    answered = open_refund(sqlite_engine)
    sqlite_engine.fire(answered.number, "review", actor=AGENT)
    assert sqlite_engine.find(overdue=True) == []
    clock.advance(hours=24, minutes=1)
    assert [c.number for c in sqlite_engine.find(overdue=True)] == [late.number]


def test_check_is_a_dry_run_listing_every_verdict(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=20)
    decision = sqlite_engine.check(case.number, "approve", actor=AGENT)
    assert not decision.allowed
    assert decision.codes == ["window_expired"]
    assert len(decision.verdicts) > len(decision.reasons)  # passing verdicts are shown too
    assert len(sqlite_engine.history(case.number)) == 1  # nothing written


def test_next_events_gives_each_possible_event_with_its_decision(sqlite_engine: Engine, clock: FixedClock):
    case = open_return(sqlite_engine, clock, delivered_days_ago=20)
    decisions = sqlite_engine.next_events(case.number, actor=AGENT)
    assert [d.event for d in decisions] == list(KINDS["return"].available("submitted"))
    by_event = {d.event: d for d in decisions}
    assert by_event["approve"].codes == ["window_expired"]
    assert by_event["review"].allowed


# ---- bad input is refused before anything is written ------------------------------------------------
def test_money_as_a_float_is_refused(sqlite_engine: Engine):
    with pytest.raises(InvalidInput) as info:
        sqlite_engine.open("refund", {"order_id": "A1", "amount": 59.0, "paid": "59.00"}, actor=CUSTOMER)
    assert info.value.field == "amount"
    assert sqlite_engine.find() == []


@pytest.mark.parametrize("amount", ["59.001", "-1.00", "abc", "", "５９.００", "٥٩.00", "59.٠٠"])
def test_malformed_money_is_refused(sqlite_engine: Engine, amount: str):
    # full-width and Arabic-Indic digits are digits to Python's \\d, not to an accountant
    with pytest.raises(InvalidInput, match="not a valid amount"):
        sqlite_engine.open("refund", {"order_id": "A1", "amount": amount, "paid": "59.00"}, actor=CUSTOMER)
    assert sqlite_engine.find() == []


@pytest.mark.parametrize("count", ["３", "٣"])
def test_a_count_in_other_scripts_digits_is_refused(sqlite_engine: Engine, count: str):
    with pytest.raises(InvalidInput, match="not a non-negative whole number"):
        open_refund(sqlite_engine, refunds_last_30_days=count)


def test_missing_required_fact_is_refused(sqlite_engine: Engine):
    with pytest.raises(InvalidInput) as info:
        sqlite_engine.open("refund", {"order_id": "A1", "paid": "59.00"}, actor=CUSTOMER)
    assert info.value.field == "amount"


def test_unknown_kind_event_role_and_evidence_are_refused_with_suggestions(sqlite_engine: Engine):
    with pytest.raises(InvalidInput, match="did you mean 'refund'"):
        sqlite_engine.open("refnd", {"order_id": "A1"}, actor=CUSTOMER)
    case = open_refund(sqlite_engine)
    with pytest.raises(InvalidInput, match="did you mean 'approve'"):
        sqlite_engine.fire(case.number, "aprove", actor=AGENT)
    with pytest.raises(InvalidInput, match="role"):
        sqlite_engine.fire(case.number, "approve", actor=Actor("root", "admin"))
    with pytest.raises(InvalidInput, match="evidence"):
        sqlite_engine.fire(case.number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["selfie"]})
    assert len(sqlite_engine.history(case.number)) == 1


def test_the_system_may_not_open_a_case(sqlite_engine: Engine):
    with pytest.raises(TransitionDenied) as info:
        open_refund_as(sqlite_engine, SYSTEM)
    assert info.value.decision.codes == ["role_not_permitted"]
    assert sqlite_engine.find() == []


def open_refund_as(engine: Engine, actor: Actor) -> Case:
    return engine.open("refund", {"order_id": "A1", "amount": "1.00", "paid": "1.00", "customer": CUSTOMER.id},
                       actor=actor)


def test_an_escalated_complaint_joins_the_supervisor_queue_and_a_refused_escalation_routes_nothing(
        sqlite_engine: Engine):
    case = open_complaint(sqlite_engine)
    refused(sqlite_engine, case.number, "escalate", CUSTOMER)  # before a response: refused
    still = sqlite_engine.get(case.number)
    assert (still.priority, still.queue) == (case.priority, case.queue)
    assert "queue" not in sqlite_engine.history(case.number)[-1].data
    escalated = sqlite_engine.fire(case.number, "escalate", actor=AGENT)
    assert (escalated.state, escalated.priority, escalated.queue) == ("escalated", 2, "supervisor")
    entry = sqlite_engine.history(case.number)[-1]
    assert (entry.outcome, entry.data["priority"], entry.data["queue"]) == ("applied", 2, "supervisor")
    assert sqlite_engine.verify().ok  # the routing recorded is replayed alike
