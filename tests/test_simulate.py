"""policy simulate and policy adopt: what-if against the live database, and re-pinning open cases.

The large test generates SIMULATED_CASES open no-reason returns (10,000 here, so the suite stays
quick; ``bench/simulate.py`` runs the same check on 100,000 and prints the time) delivered 0 to 10
days ago, and checks that a policy whose no-reason window goes from 7 to 5 days flips exactly the
cases delivered 6 or 7 days ago, computed directly from their delivery dates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bulk_cases import bulk_open
from cli_helpers import CASEWORK_VARS, DEFAULT_POLICY, Run, days_ago, invoke, policy_with_window
from typer.testing import CliRunner

import cli
from casework import Actor, Case, CaseNotFound, Engine, FixedClock, InvalidInput, PolicySet, TransitionDenied
from casework.adoption import open_numbers
from casework.policies import parse_policy
from casework.simulate import PROGRESS_EVERY, least_privileged

SIMULATED_CASES = 10_000
CUSTOMER = Actor("cust-1", "customer")
AGENT = Actor("alice", "agent")
SUPERVISOR = Actor("lin", "supervisor")
WINDOW = "within: 7d, label: a no-reason return"
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
    report = engine.simulate(with_window(default_policy, 5), progress=lambda done, total: calls.append((done, total)))
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
    # the rule is a row of the return_window table: its "- guard: table" line (1-based) is the one above the
    # table's id (0-based index)
    line = default_policy.source.splitlines().index("            id: return_window")
    assert group.events == ("return.approve",) and group.source == f"window-5d.yaml:{line}"
    # Seven events are possible from submitted; only approve's rules changed, the others are provably equal.
    assert (report.decisions_compared, report.decisions_skipped) == (SIMULATED_CASES, 6 * SIMULATED_CASES)
    assert len(calls) >= SIMULATED_CASES // PROGRESS_EVERY and calls[-1] == (SIMULATED_CASES, SIMULATED_CASES)
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

    report = engine.simulate(new)
    assert report.cases_checked == 5  # the closed case is not open
    assert sorted((f.number, f.state) for f in report.flips) == sorted(
        [(six.number, "submitted"), (reviewed.number, "under_review")])
    assert fresh.number not in report.numbers and nine.number not in report.numbers
    assert report.pinned == {engine.policy.hash: 5}

    assert [f.number for f in engine.simulate(new, state="under_review").flips] == [reviewed.number]
    only_refunds = engine.simulate(new, kind="refund")
    assert (only_refunds.cases_checked, only_refunds.flips) == (1, ())
    with pytest.raises(InvalidInput, match="did you mean 'return'"):
        engine.simulate(new, kind="retrun")
    with pytest.raises(InvalidInput):
        engine.simulate(new, kind="refund", state="in_transit")
    doc = report.to_json()
    assert doc["flip_count"] == 2 and doc["cases_flipped"] == 2
    assert doc["by_rule"][0]["rule"] == "no_reason_return_window"
    assert {f["number"] for f in doc["flips"]} == {six.number, reviewed.number}
    assert doc["flips"][0]["before"]["allowed"] is True and doc["flips"][0]["after"]["codes"] == ["window_expired"]


def test_simulate_the_same_policy_evaluates_nothing(engine: Engine, clock: FixedClock) -> None:
    open_return(engine, clock, 6)
    report = engine.simulate(engine.policy)
    assert (report.flips, report.decisions_compared, report.decisions_skipped) == ((), 0, 7)


def test_what_cannot_reach_a_decision_is_not_re_evaluated(engine: Engine, clock: FixedClock) -> None:
    open_return(engine, clock, 6)
    cosmetic = changed(changed(engine.policy, 'label: "default 2026-11"', 'label: "renamed"'),
                       "flags: [fraud_confirmed, vip]", "flags: [fraud_confirmed, vip, chargeback]")
    assert engine.simulate(cosmetic).decisions_compared == 0
    other_zone = changed(engine.policy, "timezone: Asia/Shanghai", "timezone: Asia/Tokyo")
    report = engine.simulate(other_zone)
    assert (report.decisions_compared, report.decisions_skipped, report.flips) == (7, 0, ())


def test_a_changed_role_book_is_decided_in_full_as_the_least_privileged_role(
        make_engine: EngineFactory, clock: FixedClock, default_policy: PolicySet) -> None:
    engine = make_engine()
    big = engine.open("refund", {"order_id": "A1", "amount": "3000.00", "paid": "3000.00"}, actor=CUSTOMER)
    six = open_return(engine, clock, 6)
    # Agents may now approve up to 5000.00: the refund flips for an agent (a supervisor could already).
    richer = changed(default_policy, 'approval_limit: "2000.00"', 'approval_limit: "5000.00"')
    report = engine.simulate(richer)
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
    report = make_engine().simulate(default_policy)
    assert report.pinned == {default_policy.hash: 1, five.hash: 1}
    [flip] = report.flips
    assert (flip.number, flip.direction) == (under_five.number, "refused → allowed")
    assert flip.before.policy == five.ref and flip.after.policy == default_policy.ref
    assert under_seven.number not in report.numbers


def test_refusals_for_other_reasons_are_reported_apart(engine: Engine, clock: FixedClock) -> None:
    fresh, nine = open_return(engine, clock, 2), open_return(engine, clock, 9)
    rule = "- {reason: no_reason, id: no_reason_return_evidence}"
    stricter = changed(engine.policy, rule, rule.replace("}", ", all_of: [order_record, invoice]}"))
    report = engine.simulate(stricter)
    [flip] = report.flips
    assert (flip.number, flip.rules, flip.after.codes) == (fresh.number, ("no_reason_return_evidence",),
                                                           ["evidence_missing"])
    [change] = report.reason_changes
    assert change.number == nine.number and change.direction == "refused → refused"
    assert (change.before.codes, sorted(change.after.codes)) == (["window_expired"],
                                                                 ["evidence_missing", "window_expired"])


def test_with_an_operators_section_a_granted_operator_acts(engine: Engine, clock: FixedClock) -> None:
    six = open_return(engine, clock, 6)
    operators = '\noperators:\n  alice: [agent]\n  lin: [supervisor, agent]\n'
    governed = parse_policy(with_window(engine.policy, 5).source + operators, "governed.yaml")
    [flip] = engine.simulate(governed).flips  # the open-mode case, judged for alice: granted under both
    assert (flip.number, flip.actor, flip.rules) == (six.number, Actor("alice", "agent"), ("no_reason_return_window",))
    with pytest.raises(TransitionDenied) as denied:
        engine.adopt(six.number, governed, actor=Actor("bob", "supervisor"))
    assert denied.value.decision.codes == ["role_not_permitted"]
    assert engine.adopt(six.number, governed, actor=SUPERVISOR).policy == governed.ref
    assert engine.simulate(with_window(engine.policy, 5)).flips == ()  # back to open mode: nothing flips
    assert engine.verify().ok


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
    assert "policy_from" not in moved.facts and "policy_to" not in moved.facts  # kept in the trail, not the facts
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
    assert engine.simulate(new).decisions_compared == 0
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
    assert open_numbers(engine.store, kind="return", state="submitted") == [c.number for c in submitted]

    done = engine.adopt_open_cases(new, actor=SUPERVISOR, kind="return", state="submitted",
                            progress=lambda n, total: calls.append((n, total)))
    assert done.adopted == tuple(c.number for c in submitted) and done.already == 0 and done.skipped == ()
    assert calls[-1] == (2, 2)
    assert engine.get(reviewed.number).policy.hash != new.hash
    assert engine.get(refund.number).policy.hash != new.hash
    again = engine.adopt_open_cases(new, actor=SUPERVISOR, numbers=[c.number for c in submitted])
    assert (again.adopted, again.already) == ((), 2)
    assert open_numbers(engine.store, not_on=new.hash) == [reviewed.number, refund.number]
    assert engine.adopt_open_cases(new, actor=SUPERVISOR).to_json()["adopted"] == 2
    assert engine.verify().ok


# ---- the CLI ---------------------------------------------------------------------------------------------
def _cw(tmp: Path, *argv: str, answer: str | None = None) -> Run:
    """casework on tmp/c.db; ``answer`` is typed at the confirmation prompt."""
    args = ["--db", str(tmp / "c.db"), *argv]
    if answer is None:
        return invoke(args)
    result = CliRunner().invoke(cli.app, args, input=answer, env=dict.fromkeys(CASEWORK_VARS))
    return Run(args, result.exit_code, result.stdout, result.stderr)


def _open_cli(tmp: Path, days: int, order: str) -> str:
    run = _cw(tmp, "open", "return", "--order", order, "--delivered", days_ago(days), "--reason", "no_reason",
              "--condition", "unused", "--evidence", "order_record", "--role", "customer", "--actor", "cust-1",
              "--json")
    assert run.code == 0, run
    return str(run.json["number"])


def test_cli_policy_simulate_then_adopt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fresh, six, seven, nine = (_open_cli(tmp_path, d, f"SO-{d}") for d in (2, 6, 7, 9))
    new = policy_with_window(tmp_path, 5, "new.yaml", label="stricter 2026-12")

    run = _cw(tmp_path, "policy", "simulate", str(new), "--json")
    assert run.code == 0 and run.stderr == "", run
    doc = run.json
    assert {f["number"] for f in doc["flips"]} == {six, seven}
    assert doc["cases_checked"] == 4 and doc["policy"]["label"] == "stricter 2026-12"
    assert [(g["rule"], g["flips"], g["allowed_to_refused"]) for g in doc["by_rule"]] == [
        ("no_reason_return_window", 2, 2)]
    run = _cw(tmp_path, "policy", "simulate", str(new), "--kind", "return", "--state", "submitted")
    assert run.code == 0, run
    assert "2 decision(s) flip on 2 case(s)" in run.stdout and "Flips by rule" in run.stdout
    assert "no_reason_return_window" in run.stdout and six in run.stdout and "allowed → refused" in run.stdout
    assert len(_cw(tmp_path, "history", six, "--json").json) == 1  # simulate wrote nothing
    bad = _cw(tmp_path, "policy", "simulate", str(new), "--kind", "retrun", "--json")
    assert bad.code == 2 and "did you mean" in bad.json["error"]["message"]

    # adopt: --json needs --yes; "no" at the prompt moves nothing (exit 1); "yes" moves the chosen cases
    refused = _cw(tmp_path, "policy", "adopt", str(new), "--json")
    assert refused.code == 2 and "--yes" in refused.json["error"]["message"]
    declined = _cw(tmp_path, "policy", "adopt", str(new), "--actor", "lin", "--role", "supervisor", answer="n\n")
    assert declined.code == 1 and "Move 4 open case(s) to policy stricter 2026-12" in declined.stderr, declined
    assert "Flips by rule" in declined.stdout
    assert _cw(tmp_path, "show", six, "--json").json["policy"]["label"] == "default 2026-11"
    accepted = _cw(tmp_path, "policy", "adopt", str(new), "--actor", "lin", "--role", "supervisor", answer="y\n")
    assert accepted.code == 0, accepted
    assert "adopted 4 case(s) to policy stricter 2026-12" in accepted.stdout
    for number in (fresh, six, seven, nine):
        shown = _cw(tmp_path, "show", number, "--json").json
        assert (shown["policy"]["label"], shown["version"], shown["state"]) == ("stricter 2026-12", 2, "submitted")
    last = _cw(tmp_path, "history", six, "--json").json[-1]
    assert (last["event"], last["actor"], last["role"], last["outcome"]) == ("adopt_policy", "lin", "supervisor",
                                                                             "applied")
    assert last["data"]["policy_to"] == shown["policy"]["hash"]
    assert _cw(tmp_path, "verify", "--json").json["ok"] is True
    fired = _cw(tmp_path, "fire", six, "approve", "--role", "agent", "--json")
    assert fired.code == 1 and fired.json["reasons"][0]["details"]["window_days"] == 5

    again = _cw(tmp_path, "policy", "adopt", str(new), "--yes", "--json")
    assert again.code == 0, again
    assert (again.json["adopted"], again.json["simulation"]["flip_count"]) == (0, 0)
    back = _cw(tmp_path, "policy", "adopt", str(DEFAULT_POLICY), "--kind", "return", "--state", "submitted",
               "--yes", "--json")
    assert back.code == 0, back
    assert back.json["adopted"] == 4 and {f["number"] for f in back.json["simulation"]["flips"]} == {six, seven}
    assert _cw(tmp_path, "verify", "--json").json["ok"] is True


def test_cli_policy_simulate_decides_as_of_now_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fresh, six, seven, nine = (_open_cli(tmp_path, d, f"SO-{d}") for d in (2, 6, 7, 9))
    new = policy_with_window(tmp_path, 5, "new.yaml")
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    # Three days earlier, the returns were delivered -1, 3, 4 and 6 days before: only the last is between 5 and 7.
    run = _cw(tmp_path, "policy", "simulate", str(new), "--now", three_days_ago, "--json")
    assert run.code == 0, run
    assert {f["number"] for f in run.json["flips"]} == {nine}
    assert {f["number"] for f in _cw(tmp_path, "policy", "simulate", str(new), "--json").json["flips"]} == {six, seven}
    bad = _cw(tmp_path, "policy", "simulate", str(new), "--now", "yesterday", "--json")
    assert bad.code == 2 and "--now" in bad.json["error"]["message"]
    assert fresh
