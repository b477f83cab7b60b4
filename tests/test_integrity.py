"""Nothing slips past the rules (issue #12): judged facts, money going out, who may write what, who is
``system``, whose case it is, and every refused attempt on the trail.

Each attack the adversarial review of main reproduced is played here against both databases, and now
breaks nothing: the attempt is refused with a clear reason, recorded as a refused entry, and the case
(and ``verify``) stay as the rules left them.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest
from cli_helpers import invoke
from conftest import EngineFactory

from casework import Actor, Engine, FixedClock, InvalidInput, PolicySet, TransitionDenied, parse_policy
from casework.domain import Verdict
from casework.policies.files import default_policy_path
from casework.transition import opening

CUSTOMER, STRANGER = Actor("cust-1", "customer"), Actor("cust-2", "customer")
AGENT, SUPERVISOR = Actor("alice", "agent"), Actor("wang", "supervisor")
BILLING_BOT, MALLORY = Actor("billing-bot", "system"), Actor("mallory", "system")
SAYS_SYSTEM = Actor("system", "system")  # an outside caller saying it is the system

OPERATORS = """
operators:
  alice: [agent]
  wang: [supervisor]
  billing-bot: [system]
"""


def guarded_policy() -> PolicySet:
    return parse_policy(default_policy_path().read_text() + OPERATORS, "guarded.yaml")


def refund(engine: Engine, amount: str = "100.00", opener: Actor = CUSTOMER, **facts: object) -> str:
    """The customer's refund (``opener``: an agent opens it for them with what only the desk knows: a counter)."""
    return engine.open("refund", {"order_id": "SO-1", "amount": amount, "paid": amount, "customer": CUSTOMER.id,
                                  **facts}, actor=opener, channel="app").number


def days_ago(clock: FixedClock, days: int) -> str:
    return (clock().date() - timedelta(days=days)).isoformat()


def refused(engine: Engine, number: str, event: str, actor: Actor, data: dict | None = None) -> list[str]:
    """Fire and expect a refusal; its codes, after checking it is the newest entry of the trail."""
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(number, event, actor=actor, data=data)
    last = engine.history(number, reveal=True)[-1]
    assert (last.event, last.outcome, last.actor, last.role) == (event, "refused", actor.id, actor.role)
    assert [r["code"] for r in last.reasons] == denied.value.decision.codes
    return denied.value.decision.codes


# ---- judged facts and money going out -----------------------------------------------------------------
def test_an_amount_raised_at_pay_is_refused_and_the_approved_amount_is_paid(engine: Engine):
    number = refund(engine)
    engine.fire(number, "approve", actor=AGENT)
    assert refused(engine, number, "pay", AGENT, {"amount": "50000.00"}) == ["fact_judged"]
    assert engine.get(number).state == "approved"
    paid = engine.fire(number, "pay", actor=AGENT)
    assert paid.state == "refunded" and paid.facts["amount"] == paid.facts["paid_out"] == "100.00"
    assert engine.history(number)[-1].data == {"paid_out": "100.00"}
    assert engine.verify().ok


def test_an_amount_lowered_before_approval_and_raised_after_it_pays_what_was_approved(engine: Engine):
    number = refund(engine)
    engine.fire(number, "provide_evidence", actor=AGENT, data={"amount": "50.00"})  # not judged yet
    engine.fire(number, "approve", actor=AGENT)  # judges 50.00
    assert refused(engine, number, "pay", AGENT, {"amount": "100.00"}) == ["fact_judged"]
    assert refused(engine, number, "provide_evidence", AGENT, {"amount": "100.00"}) == ["not_available"]
    assert engine.fire(number, "pay", actor=AGENT).facts["paid_out"] == "50.00"
    assert engine.verify().ok


def test_resetting_the_refund_counter_to_pass_the_fraud_rule_is_refused(engine: Engine):
    number = refund(engine, opener=AGENT, refunds_last_30_days=6)
    codes = refused(engine, number, "approve", AGENT, {"refunds_last_30_days": 0})
    assert codes == ["fact_judged", "fraud_flagged"]  # the counter judged is the one the case holds
    assert engine.get(number).facts["refunds_last_30_days"] == 6
    assert engine.fire(number, "approve", actor=SUPERVISOR).state == "approved"


def test_a_delivery_date_or_reason_rewritten_in_approves_data_does_not_pass_the_window(
        engine: Engine, clock: FixedClock):
    number = engine.open("return", {"order_id": "SO-2", "delivered": days_ago(clock, 20), "reason": "no_reason",
                                    "condition": "unused", "evidence": ["order_record"]}, actor=CUSTOMER).number
    assert refused(engine, number, "approve", AGENT, {"delivered": days_ago(clock, 1)}) == [
        "fact_judged", "window_expired"]
    assert refused(engine, number, "approve", AGENT, {"reason": "defective"}) == ["fact_judged", "window_expired"]
    case = engine.get(number)
    assert (case.state, case.facts["delivered"], case.facts["reason"]) == (
        "submitted", days_ago(clock, 20), "no_reason")
    assert engine.verify().ok


def test_a_dispute_adjustment_cannot_exceed_the_difference_nor_be_raised_after_it(engine: Engine):
    number = engine.open("dispute", {"order_id": "SO-5", "amount": "20.00", "paid": "199.00",
                                     "evidence": ["payment_voucher"]}, actor=CUSTOMER).number
    engine.fire(number, "investigate", actor=AGENT)
    assert refused(engine, number, "adjust", AGENT, {"adjustment": "99999.00"}) == [
        "amount_exceeds_paid", "approval_limit_exceeded"]
    adjusted = engine.fire(number, "adjust", actor=AGENT, data={"adjustment": "15.00"})
    assert adjusted.facts["paid_out"] == "15.00"
    assert refused(engine, number, "close", AGENT, {"adjustment": "99999.00"}) == ["fact_judged"]
    closed = engine.fire(number, "close", actor=AGENT)
    assert closed.facts["adjustment"] == closed.facts["paid_out"] == "15.00"
    assert engine.verify().ok


def test_an_amend_records_old_and_new_values_and_is_judged_again(engine: Engine):
    number = refund(engine, amount="1500.00", paid="5000.00")
    engine.fire(number, "approve", actor=AGENT)
    assert refused(engine, number, "amend", AGENT, {"amount": "3000.00", "note": "wrong line"}) == [
        "approval_limit_exceeded"]
    assert refused(engine, number, "amend", SUPERVISOR, {"amount": "6000.00", "note": "wrong line"}) == [
        "amount_exceeds_paid"]
    assert refused(engine, number, "amend", AGENT, {"amount": "1200.00"}) == ["field_missing"]  # why?
    amended = engine.fire(number, "amend", actor=AGENT, data={"amount": "1200.00", "note": "coupon applied"})
    assert amended.state == "approved" and amended.facts["amount"] == "1200.00"
    entry = engine.history(number)[-1]
    [change] = [v for v in entry.verdicts if v["guard"] == "amendment"]
    assert change["details"]["changes"]["amount"] == {"from": "1500.00", "to": "1200.00"}
    assert {v["guard"] for v in entry.verdicts} >= {"refund_not_above_paid", "refund_approval_limit"}
    assert engine.fire(number, "pay", actor=AGENT).facts["paid_out"] == "1200.00"
    assert engine.verify().ok


def rejudged(engine: Engine, number: str, data: dict[str, object]) -> list[str]:
    """The guards an amend of ``data`` judges again (besides who may amend, the amend's own guard, the change)."""
    decision = engine.check(number, "amend", actor=AGENT, data={**data, "note": "correction"})
    return [v.guard for v in decision.verdicts if v.guard not in ("roles", "amendment") and "amend" not in v.guard]


def test_an_amend_judges_again_exactly_the_guards_that_judged_the_fact(engine: Engine):
    number = refund(engine, opener=AGENT, refunds_last_30_days=1)
    assert rejudged(engine, number, {"amount": "50.00"}) == []  # not approved yet: nothing judged it
    engine.fire(number, "approve", actor=AGENT)
    assert rejudged(engine, number, {"amount": "50.00"}) == ["refund_not_above_paid", "refund_approval_limit"]
    assert rejudged(engine, number, {"paid": "50.00"}) == ["refund_not_above_paid"]
    assert rejudged(engine, number, {"flags": ["vip"]}) == ["refund_fraud_confirmed"]
    assert rejudged(engine, number, {"refunds_last_30_days": 5}) == ["refund_frequency"]
    assert rejudged(engine, number, {"category": "apparel"}) == []  # no refund rule reads it
    assert refused(engine, number, "amend", AGENT, {"refunds_last_30_days": 5, "note": "recount"}) == [
        "fraud_flagged"]  # judged again with the amending actor: an agent may not approve that
    assert engine.get(number).facts["refunds_last_30_days"] == 1


def test_an_amend_judges_again_the_guards_of_every_event_that_may_have_been_applied(engine: Engine):
    # "May have been applied" is read from the kind's machine, not from this case's trail: a dispute back in
    # submitted may have been investigated (investigating -> awaiting_evidence -> submitted), so an amend of
    # its amount meets investigate's rule although this one never was; what could not have happened yet
    # (adjust) is not judged. The same events make its facts judged for every other event's data.
    number = engine.open("dispute", {"order_id": "SO-5", "amount": "20.00", "paid": "199.00",
                                     "customer": CUSTOMER.id}, actor=CUSTOMER).number
    assert rejudged(engine, number, {"amount": "30.00"}) == ["dispute_difference_within_paid"]
    assert refused(engine, number, "amend", AGENT, {"amount": "300.00", "note": "n"}) == ["amount_exceeds_paid"]
    assert refused(engine, number, "provide_evidence", AGENT, {"amount": "30.00"}) == ["fact_judged"]
    # Each guard applies as it would at its event, to the amended facts: a no-reason return amended to a defect
    # meets the fault rules (a photo or a video); the no-reason rules, whose when: no longer holds, do not apply.
    number = engine.open("return", {"order_id": "SO-6", "delivered": days_ago_text(engine, 2),
                                    "reason": "no_reason", "condition": "unused", "evidence": ["order_record"]},
                         actor=CUSTOMER).number
    engine.fire(number, "approve", actor=AGENT)
    assert rejudged(engine, number, {"reason": "defective"}) == ["fault_return_window", "fault_return_evidence"]
    assert refused(engine, number, "amend", AGENT, {"reason": "defective", "note": "n"}) == ["evidence_missing"]
    assert engine.verify().ok


def days_ago_text(engine: Engine, days: int) -> str:
    return (engine.now().astimezone(engine.policy.tz).date() - timedelta(days=days)).isoformat()


# ---- who may write which fact ------------------------------------------------------------------------
def test_a_customer_writing_what_was_paid_is_refused_and_recorded(engine: Engine):
    number = refund(engine)
    assert refused(engine, number, "provide_evidence", CUSTOMER, {"paid": "900.00", "evidence": ["invoice"]}) == [
        "fact_not_permitted"]
    entry = engine.history(number)[-1]
    assert entry.data["paid"] == "900.00"  # the attempt, as it was made
    assert engine.get(number).facts["paid"] == "100.00" and "invoice" not in str(engine.get(number).facts)
    assert engine.verify().ok


def test_a_system_kept_value_or_what_was_paid_out_is_written_by_nobody_from_outside(engine: Engine):
    number = refund(engine)
    assert refused(engine, number, "review", AGENT, {"priority": 9}) == ["fact_not_permitted"]
    assert refused(engine, number, "review", SAYS_SYSTEM, {"paid_out": "100.00"}) == ["fact_not_permitted"]
    assert engine.get(number).priority == 1
    for opener in (CUSTOMER, AGENT, SAYS_SYSTEM):  # nor at opening: refused, and recorded
        with pytest.raises(TransitionDenied) as denied:
            engine.open("refund", {"order_id": "SO-1", "amount": "1.00", "paid": "1.00", "paid_out": "1.00",
                                   "customer": CUSTOMER.id}, actor=opener)
        assert "fact_not_permitted" in denied.value.decision.codes
    assert [(e.role, e.outcome) for e in engine.refused_openings()] == [
        ("customer", "refused"), ("agent", "refused"), ("system", "refused")]


def test_which_facts_a_role_writes_is_the_policys(make_engine: EngineFactory, default_policy: PolicySet):
    text = default_policy.source.replace("    approval_limit: \"2000.00\"\n    writes: any",
                                         "    approval_limit: \"2000.00\"\n    writes: [note, evidence]", 1)
    engine = make_engine(policies=parse_policy(text, "tight.yaml"))
    number = refund(engine)
    assert refused(engine, number, "review", AGENT, {"category": "apparel"}) == ["fact_not_permitted"]
    assert engine.fire(number, "review", actor=AGENT, data={"note": "looking"}).state == "under_review"
    assert engine.thread(number)[-1].text == "looking"  # a note goes to the thread, not the facts
    # a supervisor inherits agent's list, and writes nothing more
    assert refused(engine, number, "provide_evidence", SUPERVISOR, {"category": "apparel"}) == [
        "fact_not_permitted"]


def test_a_roles_writes_are_validated_where_they_are_written():
    from casework.policies.authoring import check_policy

    def with_customer_writes(writes: str) -> str:
        return default_policy_path().read_text().replace(
            "    writes: [evidence, note, comment, score, locale, tracking, channel]", f"    writes: {writes}", 1)

    text = with_customer_writes("[evidence, note, paid_out]")
    [error] = check_policy(text).errors
    line = text.splitlines().index("    writes: [evidence, note, paid_out]") + 1
    assert str(error) == (f"policies.yaml:{line}:30: 'paid_out' is kept by the engine (written by its own steps); "
                          "no role may write it")
    typo = check_policy(with_customer_writes("[evidense, note]"))
    assert typo.ok() and any("'evidense'" in str(w) and "did you mean 'evidence'" in str(w) for w in typo.warnings)


# ---- who is the system ----------------------------------------------------------------------------------
def test_nobody_becomes_system_by_saying_so_when_the_policy_names_its_operators(
        make_engine: EngineFactory, clock: FixedClock):
    engine = make_engine(policies=guarded_policy())
    number = refund(engine)
    engine.fire(number, "approve", actor=AGENT)
    for claimant in (MALLORY, SAYS_SYSTEM):
        assert refused(engine, number, "pay", claimant) == ["role_not_permitted"]
    assert engine.fire(number, "pay", actor=BILLING_BOT).state == "refunded"  # granted: billing-bot: [system]
    # the engine's own timers still act as system
    waiting = refund(engine)
    engine.fire(waiting, "request_evidence", actor=AGENT)
    clock.advance(days=6)
    engine.sweep()
    last = engine.history(waiting)[-1]
    assert (last.event, last.outcome, last.actor, engine.get(waiting).state) == (
        "cancel", "applied", "system", "cancelled")
    assert engine.verify().ok


def test_the_cli_cannot_claim_system_either(tmp_path: Path):
    policy = tmp_path / "guarded.yaml"
    policy.write_text(default_policy_path().read_text() + OPERATORS)
    base = ["--db", str(tmp_path / "c.db"), "--policies", str(policy)]
    opened = invoke([*base, "open", "refund", "--order", "SO-1", "--amount", "5", "--paid", "5",
                     "--role", "customer", "--actor", "cust-1", "--json"])
    number = opened.json["number"]
    assert invoke([*base, "fire", number, "approve", "--actor", "alice", "--role", "agent"]).code == 0
    for who in (["--actor", "mallory", "--role", "system"], ["--actor", "system", "--role", "system"]):
        run = invoke([*base, "fire", number, "pay", *who, "--json"])
        assert run.code == 1 and run.json["reasons"][0]["code"] == "role_not_permitted", run
    history = invoke([*base, "history", number, "--json"]).json
    assert [(e["actor"], e["outcome"]) for e in history[-2:]] == [("mallory", "refused"), ("system", "refused")]
    assert invoke([*base, "fire", number, "pay", "--actor", "billing-bot", "--role", "system"]).code == 0


def test_open_mode_still_lets_anyone_claim_any_role(engine: Engine):
    number = refund(engine)
    engine.fire(number, "approve", actor=AGENT)
    assert engine.fire(number, "pay", actor=SAYS_SYSTEM).state == "refunded"


# ---- whose case it is ------------------------------------------------------------------------------------
def test_a_stranger_may_not_act_on_a_case_without_a_customer(engine: Engine, default_policy: PolicySet,
                                                               clock: FixedClock):
    # A case written before every case had to name its customer.
    may_open = Verdict("open_roles", True, "role_not_permitted", "role agent may open a refund", {})
    t = opening("RF-20261122-000099", "refund", {"order_id": "SO-9", "amount": "5.00", "paid": "5.00"},
                default_policy, clock().astimezone(UTC), AGENT, may_open)
    with engine.store.transaction() as tx:
        tx.insert_cases([(t.case, t.entry, t.texts)])
    assert refused(engine, t.case.number, "cancel", STRANGER) == ["role_not_permitted"]
    assert "this case has no customer" in engine.history(t.case.number)[-1].reasons[0]["message"]
    assert engine.get(t.case.number).state == "submitted"
    assert engine.fire(t.case.number, "amend", actor=AGENT, data={"customer": "cust-2", "note": "found them"})
    assert engine.fire(t.case.number, "cancel", actor=STRANGER).state == "cancelled"  # now theirs
    assert engine.verify().ok


def test_a_customer_may_not_act_on_anothers_case(engine: Engine):
    number = refund(engine)
    assert refused(engine, number, "cancel", STRANGER) == ["role_not_permitted"]


def test_a_customer_may_not_open_a_case_in_anothers_name(engine: Engine):
    with pytest.raises(TransitionDenied) as denied:
        engine.open("refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00", "customer": "cust-2"},
                    actor=CUSTOMER)
    assert denied.value.decision.codes == ["role_not_permitted"]
    assert "only in their own name" in denied.value.decision.reasons[0].message
    assert engine.find() == []


def test_every_case_names_its_customer(engine: Engine):
    with pytest.raises(InvalidInput, match="needs customer"):
        engine.open("refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00"}, actor=AGENT)
    assert engine.open("refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00", "customer": "cust-1"},
                       actor=AGENT).customer == "cust-1"
    assert engine.open("complaint", {"order_id": "SO-1"}, actor=CUSTOMER).customer == "cust-1"
    with pytest.raises(TransitionDenied):  # and an agent may not hand a case to another customer by an event
        number = refund(engine)
        engine.fire(number, "review", actor=AGENT, data={"customer": "cust-2"})


def test_moving_a_case_to_a_version_that_does_not_grant_the_mover_is_refused_and_recorded(engine: Engine):
    number = refund(engine)
    guarded = guarded_policy()
    with pytest.raises(TransitionDenied) as denied:
        engine.adopt(number, guarded, actor=Actor("mallory", "supervisor"))
    assert denied.value.decision.codes == ["role_not_permitted"]
    last = engine.history(number)[-1]
    assert (last.event, last.outcome, last.actor, last.data["policy_to"]) == (
        "adopt_policy", "refused", "mallory", guarded.hash)
    assert engine.get(number).policy == engine.policy.ref
    assert engine.adopt(number, guarded, actor=SUPERVISOR).policy == guarded.ref  # wang is granted
    assert engine.verify().ok


def test_the_engines_timers_write_only_what_the_system_role_writes(make_engine: EngineFactory, clock: FixedClock):
    text = default_policy_path().read_text().replace(
        "    description: timers and automatic steps (the engine's own; an outside automation only if granted below)\n"
        "    writes: any", "    writes: [comment]", 1)
    policy = parse_policy(text, "quiet-system.yaml")
    assert any("the timer's note is written by the system role" in w.message for w in policy.warnings)
    engine = make_engine(policies=policy)
    number = refund(engine)
    engine.fire(number, "request_evidence", actor=AGENT)
    clock.advance(days=6)
    timers = [a for a in engine.sweep().actions if a.kind == "timer"]
    assert [a.outcome for a in timers] == ["refused"]
    refused_timer = [e for e in engine.history(number) if e.event == "cancel"][-1]
    assert [r["code"] for r in refused_timer.reasons] == ["fact_not_permitted"]
    assert engine.verify().ok
