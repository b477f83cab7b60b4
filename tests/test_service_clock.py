"""The resolution clock pauses while the desk waits on the customer, and resumes exactly; targets by priority;
warnings before a breach (``find(due_within=, now=)``).

Library tests run on SQLite and PostgreSQL (the ``engine``/``make_engine`` fixtures). The zone is
Europe/Berlin, whose clocks go back an hour in the night of 2026-10-24/25 (CEST, UTC+2 -> CET, UTC+1).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import DEFAULT_POLICY, invoke

from casework import Actor, Engine, FixedClock, parse_policy

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("sam", "supervisor")
REFUND = {"order_id": "SO-1", "amount": "59.00", "paid": "59.00", "reason": "not_delivered"}


def policy(resolution: str, *, more: str = "") -> Any:
    """The shipped policy in Berlin, with the refund's resolution target ``resolution`` (and ``more`` after it)."""
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("timezone: Asia/Shanghai", "timezone: Europe/Berlin")
    assert "    resolution: 3d\n    reopen_within: 2w" in text
    text = text.replace("    resolution: 3d\n    reopen_within: 2w",
                        f"    resolution: {resolution}\n{more}    reopen_within: 2w", 1)
    text = text.replace("holidays: [2027-01-01, 2027-02-17, 2027-02-18, 2027-10-01]", "holidays: []")
    return parse_policy(text)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_resolution_clock_pauses_in_service_hours_across_a_dst_change_and_resumes_exactly(
        make_engine: Any, clock: FixedClock) -> None:
    engine: Engine = make_engine(policies=policy("'12 service hours'"))
    clock.set("2026-10-23T20:00:00+02:00")  # Friday, an hour before the desk closes (09:00-21:00)
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    # 1 service hour on Friday, 11 on Saturday: Saturday 20:00 CEST
    assert engine.get(number).resolution_due == utc("2026-10-24T20:00:00+02:00")
    clock.set("2026-10-23T20:30:00+02:00")
    waiting = engine.fire(number, "request_evidence", actor=AGENT)  # 11.5 service hours left
    assert waiting.resolution_due == utc("2026-10-24T20:00:00+02:00")  # kept, but paused:
    assert waiting.due_at == waiting.timer_due  # not the resolution: only the evidence timer is pending
    # past the deadline as promised, the sweep marks no breach: the clock is paused
    swept = engine.sweep(now=utc("2026-10-25T12:00:00+01:00"), dry_run=True)
    assert [a for a in swept.actions if a.number == number] == []
    assert {c.number for c in engine.find(view="waiting_on_customer")} == {number}

    clock.set("2026-10-26T10:00:00+01:00")  # Monday, after the clocks went back
    resumed = engine.fire(number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["order_record"]})
    # the 11.5 hours left run from Monday 10:00: 11 on Monday, half an hour on Tuesday (CET)
    assert resumed.resolution_due == utc("2026-10-27T09:30:00+01:00")
    assert resumed.due_at == resumed.resolution_due
    assert engine.find(view="waiting_on_customer") == []
    assert engine.verify().ok  # the one replay recomputes the pushed deadline from the trail


def test_a_wall_clock_resolution_is_pushed_by_the_real_time_paused_across_a_dst_change(
        make_engine: Any, clock: FixedClock) -> None:
    engine: Engine = make_engine(policies=policy("3d"))
    clock.set("2026-10-24T12:00:00+02:00")
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    assert engine.get(number).resolution_due == utc("2026-10-27T10:00:00+00:00")
    clock.set("2026-10-24T13:00:00+02:00")
    engine.fire(number, "request_evidence", actor=AGENT)
    clock.set("2026-10-26T09:00:00+01:00")  # 45 real hours later (the night of the 25th was 25 hours long)
    resumed = engine.fire(number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["order_record"]})
    assert resumed.resolution_due == utc("2026-10-29T07:00:00+00:00")  # 10:00Z on the 27th + 45h
    # a second wait pushes it again, by exactly that wait
    engine.fire(number, "request_evidence", actor=AGENT)
    clock.advance(hours=5, minutes=15)
    again = engine.fire(number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["photo"]})
    assert again.resolution_due == utc("2026-10-29T12:15:00+00:00")
    assert engine.verify().ok


def test_a_case_settled_while_waiting_keeps_its_deadline_and_a_kind_without_waiting_states_does_not_pause(
        make_engine: Any, clock: FixedClock) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("    waiting_states: [awaiting_evidence]", "", 1)
    engine: Engine = make_engine(policies=parse_policy(text))  # refunds no longer wait on the customer
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    due = engine.get(number).resolution_due
    engine.fire(number, "request_evidence", actor=AGENT)
    assert engine.get(number).due_at == due  # the resolution clock runs on
    clock.advance(days=1)
    assert engine.fire(number, "provide_evidence", actor=CUSTOMER,
                       data={"evidence": ["order_record"]}).resolution_due == due


def test_resolution_targets_by_priority(make_engine: Any, clock: FixedClock) -> None:
    engine: Engine = make_engine(policies=policy("3d", more="    resolution_by_priority: {3: 1d, 0: 5d}\n"))
    clock.set("2026-11-02T10:00:00+01:00")
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    assert engine.get(number).resolution_due == utc("2026-11-05T09:00:00+00:00")  # priority 1: 3d
    engine.fire(number, "request_evidence", actor=AGENT)
    clock.advance(hours=2)
    engine.fire(number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["order_record"]})
    assert engine.get(number).resolution_due == utc("2026-11-05T11:00:00+00:00")  # paused 2h
    urgent = engine.prioritize(number, 3, actor=SUPERVISOR)
    assert urgent.resolution_due == utc("2026-11-03T11:00:00+00:00")  # 1d from opening, the 2h paused kept
    assert engine.prioritize(number, 0, actor=SUPERVISOR).resolution_due == utc("2026-11-07T11:00:00+00:00")
    assert engine.prioritize(number, 2, actor=SUPERVISOR).resolution_due == utc("2026-11-05T11:00:00+00:00")
    assert engine.verify().ok


def test_a_policy_naming_an_unknown_or_settled_waiting_state_is_refused() -> None:
    from casework import PolicyError

    base = DEFAULT_POLICY.read_text(encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown refund state 'awaiting_evidnce'"):
        parse_policy(base.replace("waiting_states: [awaiting_evidence]", "waiting_states: [awaiting_evidnce]", 1))
    with pytest.raises(PolicyError, match="refund state rejected is settled"):
        parse_policy(base.replace("waiting_states: [awaiting_evidence]", "waiting_states: [rejected]", 1))
    with pytest.raises(PolicyError, match="priority 12 is not accepted"):
        parse_policy(base.replace("    resolution: 3d\n", "    resolution: 3d\n    resolution_by_priority: {12: 1d}\n",
                                  1))


def test_warnings_before_a_breach_with_due_within_and_now(engine: Engine, clock: FixedClock) -> None:
    first = engine.open("refund", REFUND, actor=CUSTOMER).number  # first response due in 24h
    clock.advance(hours=3)
    later = engine.open("refund", REFUND, actor=CUSTOMER).number
    at = clock()
    assert engine.find(due_within="2h") == []
    assert [c.number for c in engine.find(due_within="2h", now=at + _hours(20))] == [first]
    assert [c.number for c in engine.find(due_within="4h", now=at + _hours(20))] == [first, later]  # soonest first
    assert [c.number for c in engine.find(overdue=True, now=at + _hours(21.5))] == [first]


def _hours(n: float) -> Any:
    from datetime import timedelta
    return timedelta(hours=n)


def test_cli_list_due_within_and_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = str(tmp_path / "c.db")
    run = invoke(["--db", db, "open", "refund", "--order", "SO-1", "--amount", "5.00", "--paid", "5.00",
                  "--reason", "other", "--role", "customer", "--actor", "c-1", "--json"])
    number, due = run.json["number"], datetime.fromisoformat(run.json["first_response_due"])
    before = (due - _hours(1)).isoformat()
    listed = invoke(["--db", db, "list", "--due-within", "2h", "--now", before, "--json"])
    assert [c["number"] for c in listed.json] == [number]
    assert invoke(["--db", db, "list", "--due-within", "30m", "--now", before, "--json"]).json == []
    assert [c["number"] for c in invoke(["--db", db, "list", "--view", "breaching_soon", "--now", before,
                                         "--json"]).json] == [number]
    invoke(["--db", db, "fire", number, "request_evidence", "--role", "agent"])
    shown = invoke(["--db", db, "show", number], env={"COLUMNS": "80"})
    assert "(paused: waiting on the customer)" in shown.stdout, shown
    assert invoke(["--db", db, "show", number, "--json"]).json["resolution_paused"] is True
    bad = invoke(["--db", db, "list", "--due-within", "soon"])
    assert bad.code == 2 and "'soon' is not a deadline" in bad.stderr and "Traceback" not in bad.stderr


def test_a_case_reopened_past_its_resolution_deadline_gets_a_new_one_from_the_reopening(
        engine: Engine, clock: FixedClock) -> None:
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    clock.advance(days=3, minutes=1)  # past the 3 days promised at opening: breached
    engine.sweep()
    assert "resolution" in engine.get(number).breaches
    engine.reject(number, "missing_proof", actor=AGENT)
    engine.fire(number, "close", actor=AGENT)
    clock.advance(days=1)
    reopened = engine.fire(number, "reopen", actor=CUSTOMER, data={"note": "here is the proof"})
    assert reopened.resolution_due == clock() + _hours(72)  # the shipped reopen_resolution: 3d, from now
    assert reopened.due_at == reopened.resolution_due and "resolution" not in reopened.breaches
    clock.advance(days=3, minutes=1)  # the new promise missed too: breached again, on the trail
    swept = engine.sweep()
    assert [(a.name, a.outcome) for a in swept.actions if a.number == number] == [("resolution", "applied")]
    assert [e.event for e in engine.history(number)].count("sla_breach") == 3  # first response, resolution twice
    assert engine.verify().ok


def test_a_case_reopened_well_before_its_deadline_keeps_it_and_without_reopen_resolution_the_promise_stands(
        make_engine: Any, clock: FixedClock) -> None:
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert text.count("    reopen_resolution: 3d") == 2  # the refund's, then the complaint's
    short: Engine = make_engine(policies=parse_policy(text.replace("    reopen_resolution: 3d",
                                                                   "    reopen_resolution: 1d", 1)))
    number = short.open("refund", REFUND, actor=CUSTOMER).number
    due = short.get(number).resolution_due
    short.reject(number, "missing_proof", actor=AGENT)
    short.fire(number, "close", actor=AGENT)
    clock.advance(hours=1)
    assert short.fire(number, "reopen", actor=CUSTOMER).resolution_due == due  # 3d from opening is later
    plain: Engine = make_engine(policies=parse_policy(text.replace("    reopen_resolution: 3d", "    #", 1)))
    other = plain.open("refund", REFUND, actor=CUSTOMER).number
    promised = plain.get(other).resolution_due
    plain.reject(other, "missing_proof", actor=AGENT)
    plain.fire(other, "close", actor=AGENT)
    clock.advance(days=4)
    assert plain.fire(other, "reopen", actor=CUSTOMER).resolution_due == promised


def test_desk_work_on_a_waiting_case_neither_resumes_nor_pushes_its_clock(make_engine: Any, clock: FixedClock) -> None:
    """A note, an assignment or a new priority while the customer is awaited keeps the case waiting: the
    resolution deadline moves once, by the whole wait, when the customer answers."""
    engine: Engine = make_engine(policies=policy("3d"))
    clock.set("2026-11-02T10:00:00+01:00")
    number = engine.open("refund", REFUND, actor=CUSTOMER).number
    due = engine.get(number).resolution_due
    assert due == utc("2026-11-05T09:00:00+00:00")
    engine.fire(number, "request_evidence", actor=AGENT)
    clock.advance(hours=2)
    assert engine.note(number, "asked the courier", actor=AGENT).resolution_due == due
    clock.advance(hours=1)
    assert engine.assign(number, "bob", actor=SUPERVISOR).resolution_due == due
    assert engine.get(number).state == "awaiting_evidence"
    clock.advance(hours=2)
    resumed = engine.fire(number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["order_record"]})
    assert resumed.resolution_due == utc("2026-11-05T14:00:00+00:00")  # paused 5h, counted once
    assert engine.verify().ok


def test_the_first_response_stays_due_through_desk_work_that_is_not_a_response(
        make_engine: Any, clock: FixedClock) -> None:
    """An assignment or a note is not a response: the case stays due at its first-response deadline (the
    earliest of its deadlines) until an event the policy counts as one, such as review, is applied."""
    engine: Engine = make_engine(policies=policy("3d"))
    clock.set("2026-11-02T10:00:00+01:00")
    opened = engine.open("refund", REFUND, actor=CUSTOMER)
    assert opened.first_response_due is not None and opened.resolution_due is not None
    assert opened.due_at == opened.first_response_due < opened.resolution_due
    clock.advance(hours=1)
    assigned = engine.assign(opened.number, "bob", actor=SUPERVISOR)
    assert (assigned.responded_at, assigned.due_at) == (None, opened.first_response_due)
    noted = engine.note(opened.number, "called the courier", actor=AGENT)
    assert (noted.responded_at, noted.due_at) == (None, opened.first_response_due)
    reviewed = engine.fire(opened.number, "review", actor=AGENT)
    assert reviewed.responded_at == clock() and reviewed.due_at == opened.resolution_due
