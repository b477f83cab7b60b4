"""Desk deadlines per state: declared in the policy, kept by the service clock, breached and reported like the
first response, with or without an automatic event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from casework import Actor, Engine, FixedClock, PolicyError, parse_policy
from casework.policies.files import default_policy_path

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")

REFUND_AFTER_RECEIPT = """    deadlines:
      - name: refund_after_receipt      # refund or exchange within 7 days of receiving the goods
        state: received
        within: 7d
        on_breach: {priority: 3, queue: returns_desk}
    timers:
      - {state: approved, after: 7d"""
DECIDE_COMPLAINT = """    deadlines:
      - {name: decide_complaint, state: investigating, within: 2d, event: escalate}
    timers:
      - {state: resolved, after: 7d"""


def desk_policy() -> str:
    text = default_policy_path().read_text(encoding="utf-8")
    for old, new in (("    timers:\n      - {state: approved, after: 7d", REFUND_AFTER_RECEIPT),
                     ("    timers:\n      - {state: resolved, after: 7d", DECIDE_COMPLAINT),
                     ("      escalate:\n        roles: [customer, agent]",
                      "      escalate:\n        roles: [customer, agent, system]")):
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.fixture
def desk(make_engine) -> Engine:  # type: ignore[no-untyped-def]
    return make_engine(policies=parse_policy(desk_policy(), "desk.yaml"))


def received_return(engine: Engine, clock: FixedClock) -> str:
    number = engine.open("return", {"order_id": "SO-1", "amount": "99.00", "paid": "99.00",
                                    "delivered": clock().date().isoformat(), "reason": "defective",
                                    "evidence": ["order_record", "photo"]}, actor=CUSTOMER).number
    for event in ("review", "approve"):
        engine.fire(number, event, actor=AGENT)
    engine.fire(number, "ship", actor=CUSTOMER, data={"tracking": "SF-1"})
    engine.fire(number, "receive", actor=AGENT)
    return number


def test_a_desk_deadline_breached_in_received_is_marked_escalated_listed_and_reported(desk: Engine,
                                                                                        clock: FixedClock):
    number = received_return(desk, clock)
    received_at = clock()
    case = desk.get(number)
    assert case.state == "received" and case.due_at == received_at + timedelta(days=7)
    clock.advance(days=6)
    assert desk.sweep().actions == () and desk.find(overdue=True) == []
    clock.advance(days=1, seconds=1)
    assert [c.number for c in desk.find(overdue=True)] == [number]
    report = desk.sweep()
    assert [(a.kind, a.name, a.due, a.outcome) for a in report.actions] == [
        ("breach", "refund_after_receipt", received_at + timedelta(days=7), "applied")]
    case = desk.get(number)
    assert case.state == "received"  # without an event, a breach does not move the case
    assert case.breaches == ["refund_after_receipt"] and (case.priority, case.queue) == (3, "returns_desk")
    assert desk.sweep().actions == ()  # marked once
    sla = desk.report()
    assert sla.overall.breaches_by_type["refund_after_receipt"] == 1 and sla.overall.breached == 1
    assert desk.verify().ok  # the deadline is derived: replay recomputes it


def test_refunding_in_time_meets_the_desk_deadline(desk: Engine, clock: FixedClock):
    number = received_return(desk, clock)
    clock.advance(days=6)
    case = desk.fire(number, "refund", actor=AGENT)
    assert case.due_at is None or case.due_at > clock() + timedelta(days=1)
    clock.advance(days=30)
    assert all(a.name != "refund_after_receipt" for a in desk.sweep().actions)
    assert "refund_after_receipt" not in desk.get(number).breaches


def test_a_desk_deadline_with_an_event_fires_it_as_the_system(desk: Engine, clock: FixedClock):
    number = desk.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    desk.fire(number, "acknowledge", actor=AGENT)
    desk.fire(number, "investigate", actor=AGENT)
    report = desk.sweep(now=clock.advance(days=2, seconds=1))
    assert [(a.kind, a.name, a.outcome) for a in report.actions] == [
        ("breach", "decide_complaint", "applied"), ("event", "escalate", "applied")]
    case = desk.get(number)
    assert case.state == "escalated" and "decide_complaint" in case.breaches
    trail = desk.history(number)
    assert [(e.event, e.role) for e in trail[-2:]] == [("sla_breach", "system"), ("escalate", "system")]
    assert desk.verify().ok


def test_a_desk_deadline_is_breached_once_per_stay_in_its_state(desk: Engine, clock: FixedClock):
    number = desk.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    desk.fire(number, "acknowledge", actor=AGENT)
    desk.fire(number, "investigate", actor=AGENT)
    first = desk.sweep(now=clock.advance(days=2, seconds=1))
    assert [(a.kind, a.name) for a in first.actions] == [("breach", "decide_complaint"), ("event", "escalate")]
    later = desk.sweep(now=clock.advance(days=3)).actions  # (the resolution is breached meanwhile: 3 days)
    assert [a.name for a in later] == ["resolution"]  # escalated: no desk deadline there
    back = clock.advance(hours=1)
    case = desk.fire(number, "investigate", actor=AGENT)  # back in investigating: a new stay, a new deadline
    assert case.state == "investigating" and case.due_at is not None and case.due_at <= back + timedelta(days=2)
    assert "decide_complaint" not in case.breaches  # (the earlier stay's breach stays on the trail)
    clock.advance(days=1)
    assert desk.sweep().actions == ()  # within the new stay's two days
    second = desk.sweep(now=clock.advance(days=1, seconds=1))
    assert [(a.kind, a.name, a.due, a.outcome) for a in second.actions] == [
        ("breach", "decide_complaint", back + timedelta(days=2), "applied"),
        ("event", "escalate", back + timedelta(days=2), "applied")]
    case = desk.get(number)
    assert case.state == "escalated" and case.breaches == ["decide_complaint", "resolution"]
    assert desk.sweep(now=clock.advance(days=5)).actions == ()  # marked once in this stay too
    assert desk.report().overall.breaches_by_type["decide_complaint"] == 1  # (the report counts cases)
    breaches = [e.data["breaches"] for e in desk.history(number) if e.event == "sla_breach"]
    assert breaches == [["decide_complaint"], ["resolution"], ["decide_complaint"]]  # two stays, two breaches
    assert desk.verify().ok  # replay derives the same: a new stay clears the earlier breach from the case


def test_a_desk_deadline_naming_an_unknown_state_or_an_unavailable_event_is_refused_with_its_line():
    text = desk_policy().replace("state: received\n", "state: recieved\n").replace(
        "state: investigating, within: 2d, event: escalate", "state: investigating, within: 2d, event: close")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "desk.yaml")
    messages = [p.message for p in caught.value.problems]
    assert any("'recieved'" in m and "did you mean 'received'" in m for m in messages)
    assert any("close is not available from complaint state investigating" in m for m in messages)
    assert all(p.line > 1 for p in caught.value.problems)


def test_two_desk_deadlines_for_one_state_or_under_one_name_are_refused():
    text = desk_policy().replace(
        "      - {name: decide_complaint, state: investigating, within: 2d, event: escalate}\n",
        "      - {name: decide_complaint, state: investigating, within: 2d, event: escalate}\n"
        "      - {name: refund_after_receipt, state: investigating, within: 3d}\n")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "desk.yaml")
    messages = sorted(p.message for p in caught.value.problems)
    assert messages == ["another desk deadline is named refund_after_receipt; a breach names one deadline",
                        "complaint state investigating already has a desk deadline; one per state"]


def test_show_names_the_desk_deadline_of_the_state(desk: Engine, clock: FixedClock,
                                                   capsys: pytest.CaptureFixture[str]):
    from casework import terminal

    number = received_return(desk, clock)
    terminal.show(terminal.case_panel(desk.get(number)))
    due = terminal.when(clock() + timedelta(days=7))  # (in the zone times are shown in)
    assert f"desk deadline: out of received by {due}" in capsys.readouterr().out
