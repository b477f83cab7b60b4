"""The pure core, without a database: one decision (``decide``) and one transition step (``transition``).

And the property the reshaped core exists for: the engine, bulk import, the sweep and the
policy-test runner reach the same decision for the same case and event, because each of them
takes its input through ``intake`` and decides with ``decide``.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st

from casework import Actor, Engine, FixedClock, InvalidInput, PolicySet, TransitionDenied, load_policy, parse_policy
from casework.audit import GENESIS, hash_of
from casework.decide import decide
from casework.domain import Case, Tracking
from casework.jsontext import canonical
from casework.policies.scenarios import Scenario, run_scenario
from casework.replay import check_case
from casework.transition import advance, opening, step

NOW = datetime.fromisoformat("2026-11-22T10:00:00+08:00")
SHANGHAI = ZoneInfo("Asia/Shanghai")
CUSTOMER, OTHER = Actor("cust-1", "customer"), Actor("cust-2", "customer")
AGENT, SUPERVISOR, SYSTEM = Actor("alice", "agent"), Actor("sam", "supervisor"), Actor.system()


def day(days_ago: int) -> str:
    return (NOW.astimezone(SHANGHAI).date() - timedelta(days=days_ago)).isoformat()


def refund(policy: PolicySet, **facts: Any) -> Case:
    base = {"order_id": "SO-1", "amount": "59.00", "paid": "59.00", "reason": "not_delivered",
            "customer": CUSTOMER.id, "channel": "app"}
    return opening("RF-20261122-000001", "refund", {**base, **facts}, policy, NOW, CUSTOMER,
                   _open_verdict()).case


def _open_verdict() -> Any:
    from casework.domain import Verdict

    return Verdict("open_roles", True, "role_not_permitted", "role customer may open a refund",
                   {"role": "customer", "allowed": ["customer", "agent"]})


# ---- decide --------------------------------------------------------------------------------------
def test_an_agent_may_approve_a_refund_within_what_was_paid(default_policy: PolicySet):
    decision = decide(default_policy, refund(default_policy), "approve", AGENT, {}, NOW)
    assert decision.allowed and decision.to_state == "approved" and decision.policy == default_policy.ref
    assert [v.guard for v in decision.verdicts] == ["roles", "refund_not_above_paid", "refund_approval_limit",
                                                    "refund_fraud_confirmed", "refund_frequency"]
    assert all(v.source and v.source.startswith("policies.yaml:") for v in decision.verdicts)


def test_an_event_not_available_from_the_state_is_refused_alone(default_policy: PolicySet):
    decision = decide(default_policy, refund(default_policy), "pay", AGENT, {}, NOW)
    assert decision.to_state is None and decision.codes == ["not_available"]
    assert decision.reasons[0].details == {"state": "submitted", "available": [
        "review", "request_evidence", "provide_evidence", "approve", "reject", "cancel", "amend"]}


def test_a_customer_may_not_act_on_another_customers_case(default_policy: PolicySet):
    decision = decide(default_policy, refund(default_policy), "cancel", OTHER, {}, NOW)
    assert decision.reasons[0].guard == "owner" and decision.codes == ["role_not_permitted"]
    assert decide(default_policy, refund(default_policy), "cancel", CUSTOMER, {}, NOW).allowed


def test_the_decision_reads_a_fact_the_case_does_not_hold_yet_from_the_event_data(default_policy: PolicySet):
    decision = decide(default_policy, refund(default_policy), "approve", AGENT, {"refunds_last_30_days": 6}, NOW)
    assert decision.codes == ["fraud_flagged"]


def test_an_events_data_cannot_change_a_fact_its_own_guards_judge(default_policy: PolicySet):
    # (Until #12 the guards judged the event's 60.00 and the case took it.) They judge what the case holds.
    decision = decide(default_policy, refund(default_policy), "approve", AGENT, {"amount": "60.00"}, NOW)
    assert decision.codes == ["fact_judged"]
    assert decision.reasons[0].details == {"facts": ["amount"], "held": {"amount": "59.00"},
                                           "given": {"amount": "60.00"}}
    judged = {v.guard: v for v in decision.verdicts}["refund_not_above_paid"]
    assert judged.passed and judged.details["observed"] == "59.00"


def test_the_same_case_is_decided_by_the_instant_it_is_given(default_policy: PolicySet):
    case = opening("RT-20261122-000001", "return", {
        "order_id": "SO-2", "delivered": day(7), "reason": "no_reason", "condition": "unused",
        "evidence": [{"type": "order_record", "ref": None}], "customer": CUSTOMER.id}, default_policy, NOW,
        CUSTOMER, _open_verdict()).case
    assert decide(default_policy, case, "approve", AGENT, {}, NOW).allowed
    later = decide(default_policy, case, "approve", AGENT, {}, NOW + timedelta(days=1))
    assert later.codes == ["window_expired"] and later.reasons[0].details["elapsed_days"] == 8


def test_a_customer_may_escalate_a_complaint_only_after_a_response(default_policy: PolicySet):
    case = opening("CP-20261122-000001", "complaint", {"order_id": "SO-3", "customer": CUSTOMER.id}, default_policy,
                   NOW, CUSTOMER, _open_verdict()).case
    case = replace(case, state="acknowledged")
    assert decide(default_policy, case, "escalate", CUSTOMER, {}, NOW).codes == ["response_pending"]
    assert decide(default_policy, replace(case, responded_at=NOW), "escalate", CUSTOMER, {}, NOW).allowed


# ---- the transition step --------------------------------------------------------------------------
def test_an_opening_is_a_new_case_and_the_first_link_of_its_chain(default_policy: PolicySet):
    t = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00",
                                                 "channel": "app"}, default_policy, NOW, CUSTOMER, _open_verdict())
    case, entry = t.case, t.entry
    assert (case.state, case.version, case.opened_at, case.state_since) == ("submitted", 1, NOW, NOW)
    assert case.first_response_due == NOW + timedelta(hours=24) and case.due_at == case.first_response_due
    assert (entry.seq, entry.prev_hash, entry.event, entry.from_state, entry.to_state) == (
        1, GENESIS, "open", None, "submitted")
    assert entry.hash == hash_of(entry) and t.texts == (canonical(entry.verdicts), canonical(entry.data))


def test_cases_opened_an_hour_apart_in_a_dst_fold_get_deadlines_an_hour_apart(default_policy: PolicySet):
    # 2026-11-01 01:30 happens twice in New York; a remembered deadline must not serve both instants.
    policy = parse_policy(default_policy.source.replace("timezone: Asia/Shanghai", "timezone: America/New_York")
                          .replace("first_response: 12 service hours", "first_response: 24h"), "new-york.yaml")
    york = ZoneInfo("America/New_York")
    first, second = (datetime(2026, 11, 1, 1, 30, tzinfo=york, fold=fold) for fold in (0, 1))
    assert first == second and second - first == timedelta(0)  # same wall time: equal as Python compares them
    numbers = iter(("CP-1", "CP-2"))
    due = [opening(next(numbers), "complaint", {"order_id": "SO-1"}, policy, at, AGENT,
                   _open_verdict()).case.first_response_due
           for at in (first, second)]
    assert due[1] - due[0] == timedelta(hours=1)
    assert due[1] == second.astimezone(UTC) + timedelta(hours=24)


def test_an_applied_step_moves_the_case_and_chains_its_entry(default_policy: PolicySet):
    before = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00"},
                     default_policy, NOW, CUSTOMER, _open_verdict())
    later = NOW + timedelta(hours=2)
    decision = decide(default_policy, before.case, "review", AGENT, {"note": "looking"}, later)
    t = step(before.case, 1, before.entry.hash, event="review", to_state=decision.to_state,
             verdicts=decision.verdicts, actor=AGENT, data={"note": "looking"}, now=later, policy=default_policy)
    assert t.applied and (t.case.state, t.case.version, t.case.state_since) == ("under_review", 2, later)
    assert t.case.responded_at == later  # review counts as the first response
    assert "note" not in t.case.facts and t.entry.data["note"] == "looking" and t.case.updated_at == later
    assert (t.entry.seq, t.entry.prev_hash, t.entry.from_state, t.entry.to_state) == (
        2, before.entry.hash, "submitted", "under_review")
    assert t.entry.hash == hash_of(t.entry)
    assert check_case(t.case, [before.entry, t.entry], 2, t.entry.hash, {default_policy.hash: default_policy}.get) == []


def test_a_refused_step_records_the_attempt_and_leaves_the_case(default_policy: PolicySet):
    before = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00"},
                     default_policy, NOW, CUSTOMER, _open_verdict())
    decision = decide(default_policy, before.case, "pay", AGENT, {}, NOW)
    t = step(before.case, 1, before.entry.hash, event="pay", to_state=None, verdicts=decision.verdicts,
             actor=AGENT, data={}, now=NOW, policy=default_policy)
    assert not t.applied and t.case is before.case
    assert (t.entry.outcome, t.entry.to_state, t.entry.verdicts[0]["code"]) == ("refused", None, "not_available")
    assert check_case(t.case, [before.entry, t.entry], 2, t.entry.hash, {default_policy.hash: default_policy}.get) == []


def test_each_entry_records_the_channel_its_event_came_by_else_the_cases(default_policy: PolicySet):
    opened = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00",
                                                      "channel": "app"}, default_policy, NOW, CUSTOMER, _open_verdict())
    assert opened.entry.channel == "app"
    by_phone = step(opened.case, 1, opened.entry.hash, event="review", to_state="under_review", verdicts=(),
                    actor=AGENT, data={"channel": "hotline"}, now=NOW, policy=default_policy)
    assert by_phone.entry.channel == "hotline"
    unsaid = step(opened.case, 1, opened.entry.hash, event="review", to_state="under_review", verdicts=(),
                  actor=AGENT, data={"note": "looking"}, now=NOW, policy=default_policy)
    assert unsaid.entry.channel == "app"  # the channel the case came by


def test_the_systems_own_values_go_to_the_tracking_not_the_facts(default_policy: PolicySet):
    case = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00"},
                   default_policy, NOW, CUSTOMER, _open_verdict()).case
    later = NOW + timedelta(hours=25)
    marked = advance(case, default_policy, event="sla_breach", to_state=case.state, now=later,
                     data={"breaches": ["first_response"], "priority": 2, "queue": "supervisor"})
    assert marked.facts == case.facts and marked.state_since == case.state_since
    assert marked.tracking == Tracking(priority=2, queue="supervisor", breaches=("first_response",))
    assert marked.due_at == case.resolution_due  # the first response is breached: no longer pending
    again = advance(marked, default_policy, event="sla_breach", to_state=case.state, now=later,
                    data={"breaches": ["resolution"], "timer": "submitted"})
    assert again.tracking.breaches == ("first_response", "resolution") and "timer" not in again.facts


def test_a_closed_case_leaves_its_queue(default_policy: PolicySet):
    case = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00"},
                   default_policy, NOW, CUSTOMER, _open_verdict()).case
    queued = advance(case, default_policy, event="sla_breach", to_state=case.state, now=NOW,
                     data={"queue": "supervisor"})
    assert queued.tracking.queue == "supervisor"
    cancelled = advance(queued, default_policy, event="cancel", to_state="cancelled", data={}, now=NOW)
    assert cancelled.tracking.queue == "supervisor"  # still someone's to close
    closed = advance(cancelled, default_policy, event="close", to_state="closed", data={}, now=NOW)
    assert closed.closed and closed.tracking.queue is None


def test_a_step_under_another_policy_version_repins_the_case(default_policy: PolicySet):
    from casework import parse_policy

    other = parse_policy(default_policy.source.replace("default 2026-11", "other"), "other.yaml")
    before = opening("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00"},
                     default_policy, NOW, CUSTOMER, _open_verdict())
    from casework.domain import Verdict

    t = step(before.case, 1, before.entry.hash, event="adopt_policy", to_state="submitted",
             verdicts=(Verdict("policy", True, "policy_adopted", "moved", {}),), actor=SUPERVISOR,
             data={"policy_from": default_policy.hash, "policy_to": other.hash}, now=NOW, policy=other)
    assert t.case.policy == other.ref == t.entry.policy and t.case.state == "submitted"
    assert "policy_from" not in t.case.facts
    versions = {default_policy.hash: default_policy, other.hash: other}
    assert check_case(t.case, [before.entry, t.entry], 2, t.entry.hash, versions.get) == []


# ---- every door decides alike ----------------------------------------------------------------------
money = st.integers(min_value=0, max_value=400_000).map(lambda cents: f"{cents // 100}.{cents % 100:02d}")


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["refund", "return"]))
    # Opened by an agent for the customer: what was paid, the flags and the counters are not the customer's to give.
    facts: dict[str, Any] = {"order_id": "SO-1", "amount": draw(money), "paid": draw(money), "customer": CUSTOMER.id}
    if kind == "refund":
        facts["reason"] = draw(st.sampled_from(["not_delivered", "not_as_described", "other"]))
    else:
        facts.update(reason=draw(st.sampled_from(["no_reason", "defective", "damaged_in_transit"])),
                     delivered=day(draw(st.integers(0, 20))))
        facts.update(draw(st.fixed_dictionaries({}, optional={
            "condition": st.sampled_from(["unopened", "unused", "used", "damaged"]),
            "category": st.sampled_from(["apparel", "custom_made", "electronics"])})))
    facts.update(draw(st.fixed_dictionaries({}, optional={
        "evidence": st.lists(st.sampled_from(["order_record", "photo", "video", "invoice"]), max_size=3),
        "flags": st.lists(st.sampled_from(["fraud_confirmed", "vip"]), max_size=2),
        "refunds_last_30_days": st.integers(0, 7)})))
    return kind, facts


POLICY = load_policy()
# The same rules with an operators section: only granted actors act in other roles than customer.
GUARDED = parse_policy(POLICY.source + "\noperators:\n  alice: [agent]\n  sam: [supervisor]\n  billing-bot: [system]\n",
                       "guarded.yaml")
OUTSIDE_SYSTEM, BILLING_BOT = Actor("system", "system"), Actor("billing-bot", "system")
# The same rules with expression guards and an expression as a when: (a photo above 500.00, a refund not above
# what was paid less 1.00 for a vip, the invoice for a return delivered more than 3 days ago).
EXPRESSED = parse_policy(POLICY.source.replace("""          - guard: fraud_flag
            id: refund_fraud_confirmed
""", """          - {guard: expr, id: photo_above_500, when: "amount > money('500.00')", expr: "'photo' in evidence",
             code: evidence_missing, message: "a refund of {amount} needs a photo", details: {missing: photo}}
          - {guard: expr, id: vip_refund, expr: "!('vip' in flags) || amount + money('1.00') <= paid",
             code: amount_exceeds_paid}
          - guard: fraud_flag
            id: refund_fraud_confirmed
""").replace("""          - guard: fraud_flag
            id: return_fraud_confirmed
""", """          - {guard: evidence, id: invoice_after_3_days, when: "now - delivered > days(3)", all_of: [invoice]}
          - guard: fraud_flag
            id: return_fraud_confirmed
"""), "expressed.yaml")


@settings(max_examples=80, deadline=None)
@given(case=cases(), waiting=st.booleans(), event=st.sampled_from(["approve", "reject", "cancel", "review", "pay",
                                                                    "provide_evidence", "amend"]),
       actor=st.sampled_from([CUSTOMER, OTHER, AGENT, SUPERVISOR, OUTSIDE_SYSTEM, BILLING_BOT, Actor("eve", "agent")]),
       data=st.sampled_from([{}, {"amount": "1.00"}, {"evidence": ["photo"]}, {"note": "n"},
                             {"amount": "1.00", "note": "n"}, {"paid": "9999.00"}, {"refunds_last_30_days": 0},
                             {"delivered": day(1), "note": "n"}, {"reason": "defective"}, {"priority": 3},
                             {"customer": "cust-2", "note": "n"}, {"rejection": "fraud"}]),
       policy=st.sampled_from([POLICY, GUARDED, EXPRESSED]))
def test_the_engine_bulk_import_the_sweep_and_policy_tests_decide_alike(
        case: tuple[str, dict[str, Any]], waiting: bool, event: str, actor: Actor, data: dict[str, Any],
        policy: PolicySet) -> None:
    kind, facts = case
    default_policy = policy
    clock = FixedClock(NOW)
    with tempfile.TemporaryDirectory() as tmp, \
            Engine(f"sqlite:///{Path(tmp) / 'c.db'}", policies=default_policy, clock=clock) as engine:
        # Bulk import opens exactly the case open does.
        one = engine.open(kind, facts, actor=AGENT, channel="app")
        [bulk] = engine.open_many([{"kind": kind, "facts": facts, "channel": "app"}], actor=AGENT).numbers
        assert {**engine.get(bulk, reveal=True).to_json(), "number": ""} == {**one.to_json(), "number": ""}
        assert engine.history(bulk)[0].verdicts == engine.history(one.number)[0].verdicts
        if waiting:
            for number in (one.number, bulk):
                engine.fire(number, "request_evidence", actor=AGENT)  # a state with a timer
        current = engine.get(one.number, reveal=True)
        try:
            decision = engine.check(one.number, event, actor=actor, data=data)
        except InvalidInput as refused:  # bad input for this actor and case: refused by every door alike
            result = run_scenario(default_policy, scenario(current, event, actor, data), clock())
            assert not result.passed and result.error == str(refused)
            hypothesis.event("refused as bad input")
            return
        hypothesis.event("allowed" if decision.allowed else "refused by the rules")
        # The policy-test runner decides the same case and event the same way.
        result = run_scenario(default_policy, scenario(current, event, actor, data, decision), clock())
        assert result.decision == decision and result.passed, result.summary
        # Firing it (on the bulk-opened twin) records what was decided: applied, or refused with the same
        # verdicts; whatever the data, money out is the amount the case held when it was approved.
        try:
            fired = engine.fire(bulk, event, actor=actor, data=data)
        except TransitionDenied as denied:
            assert not decision.allowed and denied.decision.verdicts == decision.verdicts
            fired = engine.get(bulk, reveal=True)
            assert {**fired.to_json(), "number": ""} == {**current.to_json(), "number": ""}
        else:
            assert decision.allowed
        last = engine.history(bulk)[-1]
        assert (last.event, last.outcome) == (event, "applied" if decision.allowed else "refused")
        assert last.verdicts == [v.to_json() for v in decision.verdicts]
        assert fired.facts.get("paid_out") in (None, current.facts.get("amount"))
        if waiting:
            # The sweep fires the state's timer as the engine would (same data, same instant).
            timer = default_policy.timer(kind, current.state)
            assert timer is not None
            clock.set(current.timer_due + timedelta(minutes=1))  # type: ignore[operator]
            expected = engine.check(one.number, timer.event, actor=SYSTEM,
                                    data={"timer": current.state, "note": timer.note})
            engine.sweep()
            hypothesis.event("timer fired by the sweep")
            fired = [e for e in engine.history(one.number) if e.event == timer.event]
            assert fired and fired[-1].verdicts == [v.to_json() for v in expected.verdicts]
            assert fired[-1].outcome == ("applied" if expected.allowed else "refused")
        assert engine.verify().ok


def scenario(case: Case, event: str, actor: Actor, data: dict[str, Any], decision: Any = None) -> Scenario:
    expect = {"allowed": decision.allowed, "codes": sorted(set(decision.codes))} if decision else {"allowed": True}
    return Scenario(name="door", kind=case.kind, event=event, actor=actor, state=case.state, facts=case.facts,
                    data=data, expect=expect, source="", now=None, responded=case.responded_at is not None)
