"""policy simulate and policy adopt: what-if against the live database, and re-pinning open cases.

The large test generates SIMULATED_CASES open no-reason returns (10,000 here, so the suite stays
quick; ``bench/simulate.py`` runs the same check on 100,000 and prints the time) delivered 0 to 10
days ago, and checks that a policy whose no-reason window goes from 7 to 5 days flips exactly the
cases delivered 6 or 7 days ago, computed directly from their delivery dates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from bulk_cases import bulk_open

from casework import Actor, Case, CaseNotFound, Engine, FixedClock, InvalidInput, PolicySet, TransitionDenied
from casework.policies import parse_policy
from casework.simulate import PROGRESS_EVERY, adopt_open_cases, least_privileged, open_numbers, simulate

SIMULATED_CASES = 10_000
CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("lin", "supervisor")
WINDOW = "within: 7d\n            label: a no-reason return"
EngineFactory = Callable[..., Engine]


def changed(policy: PolicySet, old: str, new: str, name: str = "new.yaml") -> PolicySet:
    assert policy.source.count(old) == 1, old
    return parse_policy(policy.source.replace(old, new), name)


def with_window(policy: PolicySet, days: int) -> PolicySet:
    return changed(policy, WINDOW, WINDOW.replace("7d", f"{days}d"), f"window-{days}d.yaml")


def delivered(clock: FixedClock, policy: PolicySet, days_ago: int) -> str:
    today: date = clock().astimezone(policy.tz).date()
    return (today - timedelta(days=days_ago)).isoformat()


def no_reason_return(clock: FixedClock, policy: PolicySet, days_ago: int, i: int = 0) -> dict[str, Any]:
    return {"order_id": f"SO-{i}", "delivered": delivered(clock, policy, days_ago), "reason": "no_reason",
            "condition": "unused", "evidence": ["order_record"], "amount": "59.00", "paid": "59.00"}


def open_return(engine: Engine, clock: FixedClock, days_ago: int, customer: Actor = CUSTOMER) -> Case:
    return engine.open("return", no_reason_return(clock, engine.policy, days_ago), actor=customer)


# ---- simulate --------------------------------------------------------------------------------------------
def test_simulate_flips_exactly_the_cases_the_shorter_window_refuses(
        sqlite_engine: Engine, clock: FixedClock, default_policy: PolicySet, record_property: Any) -> None:
    engine = sqlite_engine
    ages = [i % 11 for i in range(SIMULATED_CASES)]  # delivered 0..10 days ago
    numbers = bulk_open(engine, "return", [no_reason_return(clock, default_policy, a, i) for i, a in enumerate(ages)])
    # Direct computation: 7d allows a return delivered up to 7 days ago, 5d up to 5.
    expected = {n for n, age in zip(numbers, ages, strict=True) if 5 < age <= 7}
    chain = engine.store.policy_chain()
    calls: list[tuple[int, int]] = []

    started = time.perf_counter()
    report = simulate(engine, with_window(default_policy, 5), progress=lambda done, total: calls.append((done, total)))
    elapsed = time.perf_counter() - started
    record_property("simulate_seconds", round(elapsed, 2))

    assert report.cases_checked == SIMULATED_CASES
    assert {f.number for f in report.flips} == expected
    assert len(report.flips) == len(expected)  # one decision per case: approve
    for f in report.flips:
        assert (f.event, f.state, f.actor.role) == ("approve", "submitted", "agent")
        assert f.before.allowed and not f.after.allowed
        assert f.after.codes == ["window_expired"]
        assert f.rules == ("no_reason_return_window",)
        assert f.direction == "allowed → refused"
    assert report.reason_changes == ()
    [group] = report.groups()
    assert (group.rule, group.count, group.tightened, group.loosened) == ("no_reason_return_window", len(expected),
                                                                          len(expected), 0)
    # the guard's "- guard: window" line (1-based) is the one above its id (0-based index)
    line = default_policy.source.splitlines().index("            id: no_reason_return_window")
    assert group.events == ("return.approve",) and group.source == f"window-5d.yaml:{line}"
    # Six events are possible from submitted; only approve's rules changed, the others are provably equal.
    assert (report.decisions_compared, report.decisions_skipped) == (SIMULATED_CASES, 5 * SIMULATED_CASES)
    assert len(calls) >= SIMULATED_CASES // PROGRESS_EVERY and calls[-1] == (SIMULATED_CASES, SIMULATED_CASES)
    assert elapsed < 60
    # Nothing was written: no new policy version, no audit entry; the generated trails verify.
    assert engine.store.policy_chain() == chain
    verified = engine.verify()
    assert verified.ok, verified.problems[:3]
    assert (verified.cases_checked, verified.entries_checked) == (SIMULATED_CASES, SIMULATED_CASES)
    # The bulk helper numbered from the engine's own counter: the next case continues after them.
    assert open_return(engine, clock, 1).number == f"{numbers[-1][:-6]}{SIMULATED_CASES + 1:06d}"


def test_simulate_each_backend_open_cases_states_and_filters(engine: Engine, clock: FixedClock) -> None:
    fresh, six, nine = (open_return(engine, clock, d) for d in (2, 6, 9))
    reviewed = open_return(engine, clock, 7)
    engine.fire(reviewed.number, "review", actor=AGENT)
    closed = open_return(engine, clock, 6)
    engine.fire(closed.number, "cancel", actor=CUSTOMER)
    engine.fire(closed.number, "close", actor=AGENT)
    engine.open("refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"}, actor=CUSTOMER)
    new = with_window(engine.policy, 5)

    report = simulate(engine, new)
    assert report.cases_checked == 5  # the closed case is not open
    assert sorted((f.number, f.state) for f in report.flips) == sorted(
        [(six.number, "submitted"), (reviewed.number, "under_review")])
    assert fresh.number not in report.numbers and nine.number not in report.numbers
    assert report.pinned == {engine.policy.hash: 5}

    assert [f.number for f in simulate(engine, new, state="under_review").flips] == [reviewed.number]
    only_refunds = simulate(engine, new, kind="refund")
    assert (only_refunds.cases_checked, only_refunds.flips) == (1, ())
    with pytest.raises(InvalidInput, match="did you mean 'return'"):
        simulate(engine, new, kind="retrun")
    with pytest.raises(InvalidInput):
        simulate(engine, new, kind="refund", state="in_transit")
    doc = report.to_json()
    assert doc["flip_count"] == 2 and doc["cases_flipped"] == 2
    assert doc["by_rule"][0]["rule"] == "no_reason_return_window"
    assert {f["number"] for f in doc["flips"]} == {six.number, reviewed.number}
    assert doc["flips"][0]["before"]["allowed"] is True and doc["flips"][0]["after"]["codes"] == ["window_expired"]


def test_simulate_the_same_policy_evaluates_nothing(engine: Engine, clock: FixedClock) -> None:
    open_return(engine, clock, 6)
    report = simulate(engine, engine.policy)
    assert (report.flips, report.decisions_compared, report.decisions_skipped) == ((), 0, 6)


def test_a_changed_role_book_is_decided_in_full_as_the_least_privileged_role(
        make_engine: EngineFactory, clock: FixedClock, default_policy: PolicySet) -> None:
    engine = make_engine()
    big = engine.open("refund", {"order_id": "A1", "amount": "3000.00", "paid": "3000.00"}, actor=CUSTOMER)
    six = open_return(engine, clock, 6)
    # Agents may now approve up to 5000.00: the refund flips for an agent (a supervisor could already).
    richer = changed(default_policy, 'approval_limit: "2000.00"', 'approval_limit: "5000.00"')
    report = simulate(engine, richer)
    [flip] = report.flips
    assert (flip.number, flip.event, flip.actor.role) == (big.number, "approve", "agent")
    assert flip.direction == "refused → allowed" and flip.rules == ("refund_approval_limit",)
    assert report.decisions_skipped == 0  # the role book changed: every decision is made in full
    assert six.number not in report.numbers


def test_cases_pinned_to_different_versions_are_each_compared_with_their_own(
        make_engine: EngineFactory, clock: FixedClock, default_policy: PolicySet) -> None:
    five = with_window(default_policy, 5)
    under_seven = open_return(make_engine(), clock, 6)
    under_five = open_return(make_engine(policies=five), clock, 6)
    report = simulate(make_engine(), default_policy)
    assert report.pinned == {default_policy.hash: 1, five.hash: 1}
    [flip] = report.flips
    assert (flip.number, flip.direction) == (under_five.number, "refused → allowed")
    assert flip.before.policy == five.ref and flip.after.policy == default_policy.ref
    assert under_seven.number not in report.numbers


def test_refusals_for_other_reasons_are_reported_apart(engine: Engine, clock: FixedClock) -> None:
    fresh, nine = open_return(engine, clock, 2), open_return(engine, clock, 9)
    rule = "id: no_reason_return_evidence\n            when: {reason: [no_reason]}\n            all_of: [order_record"
    stricter = changed(engine.policy, rule, rule + ", invoice")
    report = simulate(engine, stricter)
    [flip] = report.flips
    assert (flip.number, flip.rules, flip.after.codes) == (fresh.number, ("no_reason_return_evidence",),
                                                           ["evidence_missing"])
    [change] = report.reason_changes
    assert change.number == nine.number and change.direction == "refused → refused"
    assert (change.before.codes, sorted(change.after.codes)) == (["window_expired"],
                                                                 ["evidence_missing", "window_expired"])


def test_least_privileged_role(default_policy: PolicySet) -> None:
    assert least_privileged(default_policy, "return", "approve") == "agent"  # not supervisor, who inherits agent
    assert least_privileged(default_policy, "return", "cancel") == "customer"
    assert least_privileged(default_policy, "refund", "review") == "system"  # no approval authority at all
    assert least_privileged(default_policy, "complaint", "escalate") == "customer"
    no_entry = changed(default_policy, "      exchange: {roles: [agent]}\n", "")
    assert least_privileged(no_entry, "return", "exchange") is None


# ---- adopt -----------------------------------------------------------------------------------------------
def test_adopt_re_pins_one_open_case_with_an_audited_entry(
        engine: Engine, make_engine: EngineFactory, clock: FixedClock) -> None:
    six = open_return(engine, clock, 6)
    old = engine.policy
    new = with_window(old, 5)
    moved = engine.adopt(six.number, new, actor=SUPERVISOR)
    assert (moved.state, moved.version, moved.policy) == ("submitted", 2, new.ref)
    assert moved.facts["policy_from"] == old.hash and moved.facts["policy_to"] == new.hash
    assert engine.get(six.number) == moved
    last = engine.history(six.number)[-1]
    assert (last.seq, last.event, last.from_state, last.to_state, last.outcome) == (
        2, "adopt_policy", "submitted", "submitted", "applied")
    assert (last.actor, last.role, last.policy.hash) == ("lin", "supervisor", new.hash)
    assert last.data == {"policy_from": old.hash, "policy_to": new.hash}
    assert last.verdicts[0]["code"] == "policy_adopted"
    assert engine.verify().ok
    # From now on the new version decides, in this engine and in one that loads it from the database.
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(six.number, "approve", actor=AGENT)
    assert denied.value.decision.reasons[0].details["window_days"] == 5
    other = make_engine()
    assert other.check(six.number, "approve", actor=AGENT).codes == ["window_expired"]
    # Adopting the version a case is already on changes nothing; nor does simulating it.
    assert engine.adopt(six.number, new, actor=SUPERVISOR).version == 2
    assert simulate(engine, new).decisions_compared == 0
    assert engine.verify().ok


def test_adopt_refuses_closed_cases_customers_and_unknown_numbers(engine: Engine, clock: FixedClock) -> None:
    new = with_window(engine.policy, 5)
    closed = open_return(engine, clock, 2)
    engine.fire(closed.number, "cancel", actor=CUSTOMER)
    engine.fire(closed.number, "close", actor=AGENT)
    with pytest.raises(InvalidInput, match="closed"):
        engine.adopt(closed.number, new, actor=SUPERVISOR)
    case = open_return(engine, clock, 2)
    with pytest.raises(InvalidInput, match="customer"):
        engine.adopt(case.number, new, actor=CUSTOMER)
    with pytest.raises(InvalidInput, match="role"):
        engine.adopt(case.number, new, actor=Actor("x", "wizard"))
    with pytest.raises(CaseNotFound):
        engine.adopt("RT-20261122-999999", new, actor=SUPERVISOR)
    assert engine.get(case.number).version == 1
    assert engine.verify().ok


def test_adopt_open_cases_moves_the_chosen_ones(engine: Engine, clock: FixedClock) -> None:
    submitted = [open_return(engine, clock, d) for d in (2, 6)]
    reviewed = open_return(engine, clock, 3)
    engine.fire(reviewed.number, "review", actor=AGENT)
    refund = engine.open("refund", {"order_id": "A1", "amount": "59.00", "paid": "59.00"}, actor=CUSTOMER)
    new = with_window(engine.policy, 5)
    calls: list[tuple[int, int]] = []
    assert open_numbers(engine, kind="return", state="submitted") == [c.number for c in submitted]

    done = adopt_open_cases(engine, new, actor=SUPERVISOR, kind="return", state="submitted",
                            progress=lambda n, total: calls.append((n, total)))
    assert done.adopted == tuple(c.number for c in submitted) and done.already == 0 and done.skipped == ()
    assert calls[-1] == (2, 2)
    assert engine.get(reviewed.number).policy.hash != new.hash
    assert engine.get(refund.number).policy.hash != new.hash
    again = adopt_open_cases(engine, new, actor=SUPERVISOR, numbers=[c.number for c in submitted])
    assert (again.adopted, again.already) == ((), 2)
    assert open_numbers(engine, not_on=new.hash) == [reviewed.number, refund.number]
    assert adopt_open_cases(engine, new, actor=SUPERVISOR).to_json()["adopted"] == 2
    assert engine.verify().ok
