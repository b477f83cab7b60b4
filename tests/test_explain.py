"""Author tools on facts alone: policy explain, policy test expectations on rules and messages, rule coverage,
and undeclared facts refused at intake."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import REPO, assert_error_contract, invoke

from casework import Actor, Engine, InvalidInput, explain, load_policy, parse_policy
from casework.decide import decide
from casework.policies.coverage import coverage
from casework.policies.explanation import hypothetical_case
from casework.policies.files import default_policy_path
from casework.policies.scenarios import load_policy_tests, run_policy_tests

NOW = datetime(2026, 11, 22, 2, tzinfo=UTC)
AGENT = Actor("alice", "agent")
LATE_RETURN = {"order_id": "SO-1", "amount": "129.00", "paid": "129.00", "reason": "no_reason",
               "delivered": "2026-11-10", "condition": "used", "evidence": ["order_record"]}


# ---- policy explain ---------------------------------------------------------------------------------
def test_explain_gives_every_rules_verdict_with_its_line_as_decide_does():
    policy = load_policy()
    decision = explain(policy, "return", "approve", LATE_RETURN, AGENT, NOW, state="under_review")
    case = hypothetical_case(policy, "return", LATE_RETURN, AGENT, NOW, "under_review")
    assert decision == decide(policy, case, "approve", AGENT, {}, NOW)  # the one decision, no second path
    assert sorted(decision.codes) == ["condition_unacceptable", "window_expired"]
    by_rule = {v.guard: v for v in decision.verdicts}
    assert by_rule["no_reason_return_window"].source.startswith("policies.yaml:")
    assert by_rule["no_reason_return_categories"].passed and by_rule["no_reason_return_evidence"].passed


def test_explain_refuses_an_unknown_state_or_event_by_name():
    with pytest.raises(InvalidInput, match=r"unknown return state 'recieved' \(did you mean 'received'\?\)"):
        explain(load_policy(), "return", "approve", LATE_RETURN, AGENT, NOW, state="recieved")
    with pytest.raises(InvalidInput, match=r"unknown return event 'aprove' \(did you mean 'approve'\?\)"):
        explain(load_policy(), "return", "aprove", LATE_RETURN, AGENT, NOW)


def test_policy_explain_cli_prints_each_verdict_with_its_line_and_what_the_customer_is_told(tmp_path: Path):
    facts = tmp_path / "facts.json"
    facts.write_text('{"amount": 600.00, "paid": "500.00", "order_id": "A1"}', encoding="utf-8")
    run = invoke(["policy", "explain", "--kind", "refund", "--event", "approve", "--state", "under_review",
                  "--facts-json", str(facts), "--role", "agent", "--now", "2026-11-22T10:00:00+08:00", "--json"])
    assert run.code == 1, run
    doc = run.json
    assert (doc["allowed"], doc["from_state"], doc["now"]) == (False, "under_review", "2026-11-22T10:00:00+08:00")
    assert [r["code"] for r in doc["reasons"]] == ["amount_exceeds_paid"]
    assert doc["reasons"][0]["customer_message"]
    assert all(v.get("source", "").startswith("policies.yaml:") for v in doc["verdicts"] if v["guard"] != "roles")
    human = invoke(["policy", "explain", "--kind", "return", "--event", "approve", "--state", "under_review",
                    "--now", "2026-11-22T10:00:00+08:00", "--lang", "zh-CN",
                    *[f"--fact={k}={v}" for k, v in LATE_RETURN.items() if k != "evidence"],
                    "--evidence", "order_record"])
    assert human.code == 1, human
    assert "no_reason_return_window" in human.stdout and "policies.yaml:" in human.stdout
    assert "很抱歉" in human.stdout  # what the customer is told, in the language asked for


def test_policy_explain_cli_refuses_bad_facts_json_with_one_line(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    run = invoke(["policy", "explain", "--kind", "refund", "--event", "approve", "--facts-json", str(bad)])
    assert_error_contract(run, 2, as_json=False)
    assert "expected a JSON object of facts" in run.stderr


# ---- undeclared facts ---------------------------------------------------------------------------------
def test_an_undeclared_fact_is_refused_at_opening_with_did_you_mean(engine: Engine):
    with pytest.raises(InvalidInput, match=r"fact 'delivred' \(did you mean 'delivered'\?\) is not declared"):
        engine.open("refund", {"order_id": "A1", "amount": "5.00", "paid": "5.00", "delivred": "2026-11-01"},
                    actor=Actor("c-1", "customer"))
    assert engine.find() == []


def test_an_undeclared_fact_in_an_events_data_is_refused_and_nothing_is_recorded(engine: Engine):
    number = engine.open("refund", {"order_id": "A1", "amount": "5.00", "paid": "5.00"},
                         actor=Actor("c-1", "customer")).number
    with pytest.raises(InvalidInput, match=r"fact 'notes' \(did you mean 'note'\?\) is not declared"):
        engine.fire(number, "review", actor=AGENT, data={"notes": "looked at it"})
    assert [e.event for e in engine.history(number)] == ["open"]


def test_a_declared_catch_all_keeps_undeclared_facts():
    text = default_policy_path().read_text(encoding="utf-8").replace(
        "facts:\n", 'facts:\n  "*": {type: text, description: "any other fact, kept as given"}\n', 1)
    policy = parse_policy(text, "catch_all.yaml")
    case = hypothetical_case(policy, "refund", {"amount": "5.00", "gift_wrap": "yes"}, AGENT, NOW)
    assert case.facts["gift_wrap"] == "yes"


def test_the_shipped_policy_declares_every_fact_the_demo_uses(tmp_path: Path):
    from casework import demo

    engine, clock = demo.demo_engine(tmp_path / "demo.db")
    assert len(list(demo.run(engine, clock))) > 10  # every story opens and fires with declared facts only


# ---- policy test expectations and coverage -----------------------------------------------------------
SUITE = """
now: "2026-11-22T10:00:00+08:00"
scenarios:
  - name: a used item returned late is refused by the window and the condition
    kind: return
    state: under_review
    facts: {order_id: SO-1, amount: "129.00", paid: "129.00", reason: no_reason, delivered: "-12d",
            condition: used, evidence: [order_record]}
    role: agent
    event: approve
    expect:
      rules: [no_reason_return_window, no_reason_return_condition]
      messages:
        customer:
          en: "within 7 days of delivery"
          zh-CN: "很抱歉，您的申请已超过7天的申请期限"
"""


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_expectations_on_rules_and_messages_in_each_language_pass(tmp_path: Path):
    policy = load_policy()
    [result] = run_policy_tests(policy, load_policy_tests(_suite(tmp_path, SUITE)))
    assert result.passed, result.summary
    assert result.actual["rules"] == ["no_reason_return_condition", "no_reason_return_window"]


def test_a_failing_expectation_says_which_and_shows_expected_and_actual(tmp_path: Path):
    text = SUITE.replace("no_reason_return_condition]", "no_reason_return_categories]").replace(
        'en: "within 7 days of delivery"', 'en: "30-day"')
    [result] = run_policy_tests(load_policy(), load_policy_tests(_suite(tmp_path, text)))
    assert not result.passed
    assert ("rules: expected [no_reason_return_categories, no_reason_return_window], "
            "got [no_reason_return_condition, no_reason_return_window]") in result.summary
    assert "customer message (en): expected '30-day', got \"We're sorry, this request must be made" in result.summary
    assert "zh-CN" not in result.summary  # the expectation that holds is not reported


def test_a_malformed_messages_expectation_is_reported_with_its_line(tmp_path: Path):
    from casework import PolicyError

    text = SUITE.replace("        customer:\n", "        customers:\n")
    with pytest.raises(PolicyError) as caught:
        load_policy_tests(_suite(tmp_path, text))
    [problem] = caught.value.problems
    assert problem.line == 14 and "messages: expected {customer|operator:" in problem.message


def test_coverage_lists_the_rule_sides_no_scenario_exercises(tmp_path: Path):
    policy = load_policy()
    results = run_policy_tests(policy, load_policy_tests(_suite(tmp_path, SUITE)))
    cov = coverage(policy, results)
    missing = {(r.rule, side) for r, side in cov.missing}
    assert ("no_reason_return_window", "fail") not in missing
    assert ("no_reason_return_window", "pass") in missing
    assert ("no_reason_return_evidence", "fail") in missing and ("no_reason_return_evidence", "pass") not in missing
    assert cov.covered == cov.sides - len(cov.missing) and cov.sides == 2 * len(cov.rules)  # (no table)


TABLE = """          - guard: table
            id: refund_evidence
            hit: first
            inputs: [amount]
            rule: {guard: evidence}
            rows:
              - {amount: "> 500.00", any_of: [photo, video], id: refund_large_evidence}
              - {amount: "*", then: pass}
      reject: {roles: [agent]}
      pay:"""
TABLE_SUITE = """
now: "2026-11-22T10:00:00+08:00"
scenarios:
  - name: a large refund without a photo
    kind: refund
    state: under_review
    facts: {order_id: SO-1, amount: "900.00", paid: "900.00"}
    role: agent
    event: approve
    expect: {allowed: false}
"""


def test_coverage_counts_each_table_row_as_a_rule(tmp_path: Path):
    text = default_policy_path().read_text(encoding="utf-8").replace("      reject: {roles: [agent]}\n      pay:",
                                                                    TABLE)
    policy = parse_policy(text, "p.yaml")
    cov = coverage(policy, run_policy_tests(policy, load_policy_tests(_suite(tmp_path, TABLE_SUITE))))
    rows = {(r.rule, r.row): r.sides for r in cov.rules if r.row is not None and r.kind == "refund"}
    assert rows == {("refund_large_evidence", 1): ("pass", "fail"), ("refund_evidence", 2): ("pass",)}
    missing = {(r.rule, r.row, side) for r, side in cov.missing if r.row is not None and r.kind == "refund"}
    assert missing == {("refund_large_evidence", 1, "pass"), ("refund_evidence", 2, "pass")}
    assert cov.sides == sum(len(r.sides) for r in cov.rules) == 2 * len(cov.rules) - 1
    source = policy.guard_source("refund", "approve", 4)
    assert {"kind": "refund", "event": "approve", "rule": "refund_evidence", "source": source, "row": 2,
            "side": "pass"} in cov.to_json()["uncovered"]


COMBINED = """          - guard: any_of
            id: photo_or_supervisor
            when: "amount > money('500.00')"
            guards:
              - {guard: evidence, id: large_refund_photo, any_of: [photo]}
              - guard: all_of
                guards:
                  - {guard: expr, id: by_a_supervisor, expr: "'supervisor' in roles", code: approval_limit_exceeded}
                  - guard: not
                    code: fraud_flagged
                    rule: {guard: fraud_flag, id: flagged_vip, flags: [vip]}
      reject: {roles: [agent]}
      pay:"""
COMBINED_SUITE = """
now: "2026-11-22T10:00:00+08:00"
scenarios:
  - name: a large refund with a photo, by an agent
    kind: refund
    state: under_review
    facts: {order_id: SO-1, amount: "900.00", paid: "900.00", evidence: [photo]}
    role: agent
    event: approve
    expect: {allowed: true}
"""


def test_coverage_counts_each_branch_of_a_combinator_with_its_sides(tmp_path: Path):
    text = default_policy_path().read_text(encoding="utf-8").replace("      reject: {roles: [agent]}\n      pay:",
                                                                    COMBINED)
    policy = parse_policy(text, "p.yaml")

    def uncovered(suite: str) -> set[tuple[str, str | None, str]]:
        cov = coverage(policy, run_policy_tests(policy, load_policy_tests(_suite(tmp_path, suite))))
        branches = {(r.rule, r.branch): r.sides for r in cov.rules if r.kind == "refund" and r.event == "approve"
                    and r.branch is not None}
        assert branches == {("large_refund_photo", "1"): ("pass", "fail"), ("all_of", "2"): ("pass", "fail"),
                            ("by_a_supervisor", "2.1"): ("pass", "fail"), ("not", "2.2"): ("pass", "fail"),
                            ("flagged_vip", "2.2.1"): ("pass", "fail")}
        return {(r.rule, r.branch, side) for r, side in cov.missing if r.branch is not None}

    # the photo holds; the agent is no supervisor (fails), no vip flag (the fraud_flag rule holds: the not fails)
    assert uncovered(COMBINED_SUITE) == {("large_refund_photo", "1", "fail"), ("all_of", "2", "pass"),
                                         ("by_a_supervisor", "2.1", "pass"), ("not", "2.2", "pass"),
                                         ("flagged_vip", "2.2.1", "fail")}
    more = COMBINED_SUITE + """
  - name: a large vip refund without a photo, by a supervisor
    kind: refund
    state: under_review
    facts: {order_id: SO-2, amount: "900.00", paid: "900.00", flags: [vip]}
    role: supervisor
    event: approve
    expect: {allowed: true}
"""
    assert uncovered(more) == set()  # photo missing (fail), supervisor (pass), vip flagged: fraud_flag fails
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    run = invoke(["--policies", str(path), "policy", "test", str(_suite(tmp_path, COMBINED_SUITE)), "--coverage",
                  "--json"])
    assert run.code == 0, run
    source = parse_policy(text, str(path)).guard_source("refund", "approve", 4)  # (the any_of's line)
    assert {"kind": "refund", "event": "approve", "rule": "by_a_supervisor", "branch": "2.1", "side": "pass",
            "source": source} in run.json["coverage"]["uncovered"]
    human = invoke(["--policies", str(path), "policy", "test", str(_suite(tmp_path, COMBINED_SUITE)), "--coverage"])
    assert "by_a_supervisor (branch 2.1)" in human.stdout, human


def test_policy_test_cli_coverage_of_the_shipped_suite_is_complete_and_in_json(tmp_path: Path):
    run = invoke(["policy", "test", str(REPO / "policies.test.yaml"), "--coverage", "--json"])
    assert run.code == 0, run
    cov = run.json["coverage"]
    assert cov["uncovered"] == [] and cov["covered"] == cov["sides"] > 0
    partial = invoke(["policy", "test", str(_suite(tmp_path, SUITE)), "--coverage"])
    assert partial.code == 0, partial
    assert "Not exercised by any scenario" in partial.stdout and "no_reason_return_evidence" in partial.stdout
