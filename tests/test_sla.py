"""The service clock: deadlines stored on cases, sweeps that fire timers and mark breaches."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import pytest

from casework import Actor, Engine, FixedClock, InvalidInput, TransitionDenied, parse_policy
from casework.policies.files import default_policy_path

CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("sup", "supervisor")


def open_return(engine: Engine, **facts: object) -> str:
    base = {"order_id": "SO-1", "amount": "99.00", "paid": "99.00", "delivered": "2026-11-20",
            "reason": "defective", "evidence": ["order_record", "photo"]}
    return engine.open("return", {**base, **facts}, actor=CUSTOMER).number


def test_first_response_due_24h_after_opening_and_cleared_by_a_response(engine: Engine, clock: FixedClock):
    number = open_return(engine)
    case = engine.get(number)
    assert case.first_response_due == clock() + timedelta(hours=24)
    assert case.due_at == case.first_response_due
    case = engine.fire(number, "review", actor=AGENT)
    assert case.responded_at == clock()
    # The next deadline is now the resolution target (14 days for returns).
    assert case.due_at == case.resolution_due == case.opened_at + timedelta(days=14)


def test_sweep_marks_a_first_response_breach_and_escalates(engine: Engine, clock: FixedClock):
    number = engine.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    report = engine.sweep(now=clock.advance(hours=25))
    assert [(a.number, a.kind, a.name, a.outcome) for a in report.actions] == [
        (number, "breach", "first_response", "applied")]
    case = engine.get(number)
    assert case.breaches == ["first_response"]
    assert case.priority == 2 and case.queue == "supervisor"
    assert case.state == "submitted"  # a breach never moves the case
    last = engine.history(number)[-1]
    assert (last.event, last.actor, last.role, last.outcome) == ("sla_breach", "system", "system", "applied")
    assert engine.find(queue="supervisor") == [case]
    assert engine.verify().ok


def test_sweep_is_idempotent_at_the_same_instant(engine: Engine, clock: FixedClock):
    number = engine.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    at = clock.advance(days=5)
    first = engine.sweep(now=at)
    assert first.count("applied") == 2  # first response and resolution, both missed
    version = engine.get(number).version
    second = engine.sweep(now=at)
    assert second.actions == () and second.cases_due == 0
    assert engine.get(number).version == version
    assert engine.get(number).priority == 3


def test_dry_run_reports_and_writes_nothing(engine: Engine, clock: FixedClock):
    number = engine.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    trail = len(engine.history(number))
    report = engine.sweep(now=clock() + timedelta(days=1, minutes=1), dry_run=True)
    assert [(a.name, a.outcome) for a in report.actions] == [("first_response", "due")]
    assert len(engine.history(number)) == trail
    assert engine.find(overdue=True) == []  # the engine clock has not moved
    assert [c.number for c in engine.find(due_before=clock() + timedelta(days=2))] == [number]


def test_return_approved_but_not_shipped_in_7_days_is_cancelled_by_the_system(engine: Engine, clock: FixedClock):
    number = open_return(engine)
    engine.fire(number, "approve", actor=AGENT)
    assert engine.sweep(now=clock.advance(days=6, hours=23)).actions == ()
    report = engine.sweep(now=clock.advance(hours=1, minutes=1))
    assert [(a.kind, a.name, a.outcome) for a in report.actions] == [("timer", "cancel", "applied")]
    case = engine.get(number)
    assert case.state == "cancelled"
    last = engine.history(number)[-1]
    assert (last.event, last.role, last.data.get("note")) == ("cancel", "system", "not shipped back within 7 days")


@pytest.mark.parametrize("kind", ["refund", "return", "dispute"])
def test_a_case_awaiting_evidence_for_5_days_is_cancelled_as_abandoned(engine: Engine, clock: FixedClock, kind):
    facts = {"refund": {"order_id": "A", "amount": "10.00", "paid": "10.00"},
             "return": {"order_id": "A", "delivered": "2026-11-20", "reason": "defective"},
             "dispute": {"order_id": "A", "amount": "5.00", "paid": "10.00"}}[kind]
    number = engine.open(kind, facts, actor=CUSTOMER).number
    engine.fire(number, "request_evidence", actor=AGENT)
    clock.advance(days=5, minutes=1)
    report = engine.sweep()
    assert [(a.name, a.outcome) for a in report.actions if a.kind == "timer"] == [("cancel", "applied")]
    assert engine.get(number).state == "cancelled"
    assert "abandoned" in engine.history(number)[-1].data["note"]


def test_a_resolved_complaint_not_reopened_in_7_days_is_closed(engine: Engine, clock: FixedClock):
    number = engine.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    engine.fire(number, "acknowledge", actor=AGENT)
    engine.fire(number, "resolve", actor=AGENT, data={"note": "refunded the shipping fee"})
    clock.advance(days=7, minutes=1)
    engine.sweep()
    case = engine.get(number)
    assert case.state == "closed" and case.closed
    assert engine.sweep(now=clock.advance(days=30)).actions == ()
    assert engine.verify().ok


def test_a_timer_refused_by_the_rules_is_recorded_once_not_retried(tmp_path, clock: FixedClock):
    # A policy whose refund `cancel` does not let the system act: the timer's event is refused.
    text = default_policy_path().read_text().replace(
        "      cancel: {roles: [customer, agent, system]}\n      close: {roles: [agent, system]}\n      amend:",
        "      cancel: {roles: [customer, agent]}\n      close: {roles: [agent, system]}\n      amend:", 1)
    policy = parse_policy(text)
    assert any(w.message.startswith("the timer fires refund.cancel") for w in policy.warnings)
    with Engine(f"sqlite:///{tmp_path}/t.db", policies=policy, clock=clock) as engine:
        number = engine.open("refund", {"order_id": "A", "amount": "10.00", "paid": "10.00"}, actor=CUSTOMER).number
        engine.fire(number, "request_evidence", actor=AGENT)
        at = clock.advance(days=6)
        report = engine.sweep(now=at)
        assert ("timer", "cancel", "refused") in [(a.kind, a.name, a.outcome) for a in report.actions]
        assert engine.get(number).state == "awaiting_evidence"
        trail = len(engine.history(number))
        assert engine.sweep(now=clock.advance(hours=1)).actions == ()
        assert len(engine.history(number)) == trail
        assert engine.verify().ok


def test_deadlines_are_recomputed_on_every_transition(engine: Engine, clock: FixedClock):
    number = open_return(engine)
    engine.fire(number, "approve", actor=AGENT)
    approved = engine.get(number)
    assert approved.timer_due == clock() + timedelta(days=7)
    clock.advance(days=2)
    shipped = engine.fire(number, "ship", actor=CUSTOMER)
    assert shipped.timer_due is None  # in_transit has no timer
    assert shipped.due_at == shipped.resolution_due


@pytest.mark.parametrize("batch", [200, 4])
def test_two_concurrent_sweeps_fire_each_due_timer_exactly_once(make_engine, clock: FixedClock, batch: int):
    setup = make_engine()
    numbers = []
    for i in range(30):
        n = open_return(setup, order_id=f"SO-{i}")
        setup.fire(n, "approve", actor=AGENT)
        numbers.append(n)
    at = clock.advance(days=8)
    sweepers = [make_engine(), make_engine()]
    reports = []
    barrier = threading.Barrier(len(sweepers))

    def run(engine: Engine) -> None:
        barrier.wait()
        reports.append(engine.sweep(now=at, batch=batch))

    threads = [threading.Thread(target=run, args=(e,)) for e in sweepers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = [a for r in reports for a in r.actions if a.kind == "timer" and a.outcome == "applied"]
    print(f"\nconcurrent sweeps: {len(applied)} timers applied, "
          f"{sum(r.count('skipped') for r in reports)} skipped as already handled")
    assert sorted(a.number for a in applied) == sorted(numbers)  # each exactly once
    for n in numbers:
        cancels = [e for e in setup.history(n) if e.event == "cancel"]
        assert len(cancels) == 1 and cancels[0].outcome == "applied"
        assert setup.get(n).state == "cancelled"
    assert setup.verify().ok


def test_a_customer_rates_a_closed_case(engine: Engine, clock: FixedClock):
    number = engine.open("complaint", {"order_id": "SO-9"}, actor=CUSTOMER).number
    engine.fire(number, "acknowledge", actor=AGENT)
    engine.fire(number, "resolve", actor=AGENT, data={"note": "sorry"})
    engine.fire(number, "close", actor=CUSTOMER)
    assert engine.check(number, "rate", actor=CUSTOMER, data={"score": 9}).codes == ["value_out_of_range"]
    rated = engine.fire(number, "rate", actor=CUSTOMER, data={"score": "5", "comment": "fast"})
    assert rated.facts["score"] == 5 and rated.state == "closed"
    assert engine.check(number, "rate", actor=AGENT, data={"score": 3}).codes[0] == "role_not_permitted"
    # A rating the rules judged stands: rating again with another score is refused, and recorded.
    assert "fact_judged" in engine.check(number, "rate", actor=CUSTOMER, data={"score": 1}).codes


def _refusing_policy():
    """The default policy, except that the system may not cancel a refund (its timer is refused) and a refund's
    resolution clock runs while it awaits evidence (so a refund has a breach and a timer due at once)."""
    text = default_policy_path().read_text()
    assert text.index("    waiting_states: [awaiting_evidence]") < text.index("  return:")  # the refund's
    return parse_policy(text.replace(
        "      cancel: {roles: [customer, agent, system]}\n      close: {roles: [agent, system]}\n      amend:",
        "      cancel: {roles: [customer, agent]}\n      close: {roles: [agent, system]}\n      amend:", 1).replace(
        "    waiting_states: [awaiting_evidence]", "", 1))


def _sweep_story(url: str, batch: int) -> tuple[list[tuple[str, str]], list[list[tuple[object, ...]]]]:
    """Cases with every kind of due action (breaches, timers applied and refused, several on one
    case), swept with ``batch``; the actions, and every case's trail (hashes included)."""
    clock = FixedClock("2026-11-22T10:00:00+08:00")
    with Engine(url, policies=_refusing_policy(), clock=clock) as engine:
        numbers = []
        for i in range(7):
            numbers.append(engine.open("complaint", {"order_id": f"C-{i}"}, actor=CUSTOMER).number)
            r = open_return(engine, order_id=f"R-{i}")
            engine.fire(r, "approve", actor=AGENT)  # its 7-day timer cancels it
            numbers.append(r)
            f = engine.open("refund", {"order_id": f"F-{i}", "amount": "10.00", "paid": "10.00"},
                            actor=CUSTOMER).number
            engine.fire(f, "request_evidence", actor=AGENT)  # its 5-day timer is refused by this policy
            numbers.append(f)
            clock.advance(hours=5)
        report = engine.sweep(now=clock.advance(days=8), batch=batch)
        assert engine.verify().ok
        actions = [(a.number, f"{a.kind}:{a.name}:{a.outcome}") for a in report.actions]
        trails = [[(e.seq, e.event, e.outcome, e.from_state, e.to_state, e.data, e.hash) for e in engine.history(n)]
                  for n in numbers]
    return actions, trails


def test_a_batched_sweep_writes_what_case_by_case_would(tmp_path):
    one = _sweep_story(f"sqlite:///{tmp_path}/one.db", batch=1)
    for batch in (5, 200):
        assert _sweep_story(f"sqlite:///{tmp_path}/b{batch}.db", batch=batch) == one
    actions = [a for _, a in one[0]]
    assert actions.count("timer:cancel:applied") == 7 and actions.count("timer:cancel:refused") == 7
    assert actions.count("breach:first_response:applied") == 7  # the complaints (the others were answered)
    assert actions.count("breach:resolution:applied") == 7 + 7  # the complaints' and the refunds'
    # Several actions on one case: each its own entry, chained, in the order they fell due.
    assert [(e[1], e[2]) for e in one[1][0][1:]] == [("sla_breach", "applied"), ("sla_breach", "applied")]
    # A refused timer leaves the refused attempt and the note that it was refused, chained.
    refund_trail = one[1][2]
    assert [(e[1], e[2]) for e in refund_trail[-3:]] == [
        ("sla_breach", "applied"), ("cancel", "refused"), ("sla_breach", "applied")]


def test_sweep_batch_must_be_a_whole_number(engine: Engine):

    for bad in (0, -1, 2.5, True, "10"):
        with pytest.raises(InvalidInput, match="batch"):
            engine.sweep(batch=bad)  # type: ignore[arg-type]


def test_a_case_changed_since_the_sweep_read_it_is_skipped_whole(engine: Engine, clock: FixedClock, monkeypatch):
    # Simulates another writer: the sweep's read of one case is stale by the time it writes.
    from dataclasses import replace

    from casework.store import StoredCase, Transaction

    numbers = [engine.open("complaint", {"order_id": f"SO-{i}"}, actor=CUSTOMER).number for i in range(5)]
    stale = numbers[2]
    before = engine.history(stale)
    real = Transaction.get_many

    def get_many(self, wanted):
        found = real(self, wanted)
        if stale in found:
            s = found[stale]
            found[stale] = StoredCase(s.id, replace(s.case, version=s.case.version - 1), s.last_seq, s.last_hash)
        return found

    monkeypatch.setattr(Transaction, "get_many", get_many)
    report = engine.sweep(now=clock.advance(days=5), batch=3)
    outcomes = {(a.number, a.outcome) for a in report.actions}
    assert (stale, "skipped") in outcomes and (stale, "applied") not in outcomes
    assert {n for n, o in outcomes if o == "applied"} == set(numbers) - {stale}
    assert engine.history(stale) == before  # nothing of it was written
    monkeypatch.undo()
    assert engine.verify().ok
    assert {a.number for a in engine.sweep(now=clock()).actions} == {stale}  # the next sweep


def test_the_cli_sweeps_in_batches(tmp_path, clock: FixedClock):
    import json

    from cli_helpers import invoke

    db = tmp_path / "cli.db"
    with Engine(f"sqlite:///{db}", clock=clock) as engine:
        numbers = {engine.open("complaint", {"order_id": f"SO-{i}"}, actor=CUSTOMER).number for i in range(5)}
    at = (clock() + timedelta(days=5)).isoformat()
    run = invoke(["--db", str(db), "sla", "sweep", "--now", at, "--batch", "2", "--json"])
    assert run.code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["applied"] == 10 and {a["number"] for a in report["actions"]} == numbers


def test_a_damaged_case_stops_the_sweep_only_where_case_by_case_would(engine: Engine, clock: FixedClock,
                                                                       db_url: str):
    import sqlalchemy as sa

    numbers = [engine.open("complaint", {"order_id": f"SO-{i}"}, actor=CUSTOMER).number for i in range(5)]
    bad = numbers[3]
    raw = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    with raw.begin() as conn:  # edited by hand: not a JSON list
        conn.execute(sa.text("UPDATE cases SET breaches = 'first_response' WHERE number = :n"), {"n": bad})
    raw.dispose()
    from casework import StoreError

    with pytest.raises(StoreError, match=f"case {bad}: unreadable row .*; run 'casework verify'"):
        engine.sweep(now=clock.advance(hours=25), batch=10)
    # The cases before the damaged one were swept (as one transaction per case would have); none after.
    assert [engine.get(n).version for n in numbers if n != bad] == [2, 2, 2, 1]


def test_a_sweep_as_of_an_earlier_instant_writes_at_that_instant_and_leaves_the_clock_alone(
        engine: Engine, clock: FixedClock):
    number = engine.open("complaint", {"order_id": "SO-1"}, actor=CUSTOMER).number
    earlier = clock() + timedelta(days=30)
    clock.advance(days=31)
    assert engine.sweep(now=earlier).count("applied") == 2
    assert [e.at for e in engine.history(number)[1:]] == [earlier, earlier]
    assert engine.now() == clock()


def test_a_sweep_that_writes_is_refused_a_later_instant_than_the_present(engine: Engine, clock: FixedClock):
    # Entries dated ahead would precede, in time, the entries written after them: the trail would run backwards.
    number = engine.open("complaint", {"order_id": "SO-1"}, actor=CUSTOMER).number
    later = clock() + timedelta(days=30)
    with pytest.raises(InvalidInput, match="is later than the present"):
        engine.sweep(now=later)
    assert len(engine.history(number)) == 1
    assert engine.sweep(now=later, dry_run=True).count("due") == 2  # what would be due then: allowed


def test_a_sweep_that_writes_is_refused_an_instant_before_a_due_case_s_last_entry(engine: Engine, clock: FixedClock):
    # The complaint's first response is due at +24h; a refused attempt at +30h is its trail's last entry. Sweeping
    # as of +25h would date the breach before it: refused, naming both instants, and nothing is written.
    number = engine.open("complaint", {"order_id": "SO-1"}, actor=CUSTOMER).number
    opened = clock()
    clock.advance(hours=30)
    with pytest.raises(TransitionDenied):
        engine.fire(number, "resolve", actor=AGENT, data={"resolution": "x"})
    last = engine.history(number)[-1].at
    assert last == clock()
    with pytest.raises(InvalidInput) as refused:
        engine.sweep(now=opened + timedelta(hours=25))
    assert str(refused.value).startswith(f"now {(opened + timedelta(hours=25)).astimezone(UTC).isoformat()} is "
                                         f"earlier than the last entry of case {number} "
                                         f"({last.astimezone(UTC).isoformat()})")
    assert len(engine.history(number)) == 2
    assert engine.sweep(now=opened + timedelta(hours=25), dry_run=True).count("due") == 1  # looking is allowed
    assert engine.sweep(now=last).count("applied") == 1  # at (or after) the last entry: written, in order
    times = [e.at for e in engine.history(number)]
    assert times == sorted(times) and engine.verify().ok


def test_the_cli_refuses_a_writing_sweep_in_the_future_naming_the_option(tmp_path):
    from cli_helpers import invoke

    run = invoke(["--db", str(tmp_path / "f.db"), "sla", "sweep", "--now", "2999-01-01T00:00:00+00:00"])
    assert run.code == 2 and run.stderr.startswith("casework: error: --now 2999-01-01T00:00:00+00:00 is later")
    assert "Traceback" not in run.stderr
    assert invoke(["--db", str(tmp_path / "f.db"), "sla", "sweep", "--now", "2999-01-01T00:00:00+00:00",
                   "--dry-run"]).code == 0
