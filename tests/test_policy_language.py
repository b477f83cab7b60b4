"""The policy language beyond single rules, as a policy author writes it: all_of / any_of / not over guards,
decision tables (with their hit policy, overlaps and gaps), latest()/earliest() and a window that depends on a
fact, who acts (role, roles, actor) in expressions, and what `policy check` says about each at FILE:LINE:COL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_authoring import schema_errors
from test_expressions import AGENT, CUSTOMER, DEFAULT, NOW, _line_of, approve, problems, with_refund_rule

from casework import Actor, PolicySet, TransitionDenied, parse_policy
from casework.decide import decide
from casework.messages import messages_for
from casework.transition import opened

SUPERVISOR = Actor("sam", "supervisor")

# ---- all_of / any_of / not ---------------------------------------------------------------------------------
PHOTO_OR_SUPERVISOR = """\
          - guard: any_of               # above 500.00: a photo or video, or a supervisor approves
            id: photo_or_supervisor
            when: "amount > money('500.00')"
            guards:
              - {guard: evidence, any_of: [photo, video]}
              - {guard: expr, expr: "'supervisor' in roles", code: approval_limit_exceeded}
"""
ANY_OF = with_refund_rule(PHOTO_OR_SUPERVISOR)


def at(text: str, needle: str, offset: int = 0) -> str:
    """``rules.yaml:LINE:COL`` of ``needle`` (plus ``offset`` columns) in ``text``."""
    line = _line_of(text, needle)
    return f"rules.yaml:{line}:{text.splitlines()[line - 1].index(needle) + 1 + offset}"


def ev(*types: str) -> list[dict[str, object]]:
    """Evidence as a case holds it."""
    return [{"type": t, "ref": None} for t in types]


def verdict_of(decision: object, guard: str) -> object:
    return next(v for v in decision.verdicts if v.guard == guard)  # type: ignore[attr-defined]


def test_any_of_refuses_only_when_every_alternative_fails_and_explains_each_failing_branch():
    decision = approve(ANY_OF, amount="800.00")
    v = verdict_of(decision, "photo_or_supervisor")
    assert not v.passed and v.code == "evidence_missing"  # the first failing branch's code
    assert [(b["guard"], b["code"]) for b in v.details["branches"]] == [
        ("evidence", "evidence_missing"), ("expr", "approval_limit_exceeded")]
    assert v.message.startswith("none of 2 alternatives holds: (1) missing evidence: photo or video")
    # Each failing branch is told in its own code's words, to the customer and the desk, in each language.
    assert messages_for(ANY_OF, decision, "customer", "en") == [
        "Please provide the following so we can continue: photo or video. Or: Your request needs a "
        "supervisor's approval; we will get back to you shortly."]
    assert messages_for(ANY_OF, decision, "customer", "zh-CN") == [
        "请补充以下材料，以便我们继续处理：photo or video。；或者：您的申请需要主管审批，我们会尽快回复您。"]


def test_any_of_holds_when_one_alternative_holds_and_is_left_out_when_its_when_does_not_match():
    assert verdict_of(approve(ANY_OF, amount="800.00", evidence=ev("photo")), "photo_or_supervisor").passed
    case = opened("RF-20261122-000001", "refund", {"order_id": "SO-1", "paid": "900.00", "amount": "800.00",
                                                    "customer": CUSTOMER.id}, ANY_OF, NOW)
    assert verdict_of(decide(ANY_OF, case, "approve", SUPERVISOR, {}, NOW), "photo_or_supervisor").passed
    assert not any(v.guard == "photo_or_supervisor" for v in approve(ANY_OF, amount="400.00").verdicts)


def test_all_of_lists_every_failing_branch_and_a_branch_that_does_not_apply_is_left_out():
    policy = with_refund_rule("""\
          - guard: all_of
            id: large_refund_papers
            guards:
              - {guard: evidence, all_of: [invoice]}
              - {guard: expr, expr: "amount <= paid", code: amount_exceeds_paid}
              - {guard: evidence, all_of: [photo], when: "amount > money('5000.00')"}
""")
    v = verdict_of(approve(policy, amount="6000.00", paid="5000.00"), "large_refund_papers")
    assert not v.passed and v.code == "evidence_missing"
    assert [b["code"] for b in v.details["branches"]] == ["evidence_missing", "amount_exceeds_paid",
                                                           "evidence_missing"]
    v = verdict_of(approve(policy, amount="50.00", evidence=ev("invoice")), "large_refund_papers")
    assert v.passed and "(2) amount <= paid holds" in v.message and "(3)" not in v.message  # (photo: not applying)


def test_not_refuses_when_its_rule_holds_with_its_own_code_and_message():
    policy = with_refund_rule("""\
          - guard: not
            id: not_a_used_item
            rule: {guard: condition, allowed: [used, damaged]}
            code: condition_unacceptable
            message: "the item is {condition}; a refund needs it unused"
""")
    v = verdict_of(approve(policy, amount="50.00", condition="used"), "not_a_used_item")
    assert (v.passed, v.code) == (False, "condition_unacceptable")
    assert v.message == "the item is used; a refund needs it unused"
    assert verdict_of(approve(policy, amount="50.00", condition="unused"), "not_a_used_item").passed


def test_policy_check_reports_mistakes_inside_nested_guards_at_their_line_and_column():
    text = DEFAULT.source.replace("          - guard: fraud_flag\n            id: refund_fraud_confirmed\n", """\
          - guard: any_of
            id: nested
            guards:
              - {guard: evidence, any_of: [photo, vidoe]}
              - guard: not
                code: final_sael
                rule: {guard: expr, expr: "'supervisor' in rols", code: approval_limit_exceeded}
          - guard: fraud_flag
            id: refund_fraud_confirmed
""")
    found = problems(text)
    assert f"{at(text, 'vidoe')}: unknown evidence type 'vidoe' (did you mean 'video'?)" in found
    assert any(p.startswith(f"{at(text, 'final_sael')}: unknown reason code 'final_sael'") for p in found), found
    assert f"{at(text, 'rols')}: 'rols' is not a declared fact (did you mean 'roles'?)" in found
    assert len(found) == 3


def test_the_engine_records_a_combined_refusal_on_both_databases(make_engine):
    engine = make_engine(policies=ANY_OF)
    case = engine.open("refund", {"order_id": "SO-7", "amount": "800.00", "paid": "800.00"}, actor=CUSTOMER)
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(case.number, "approve", actor=AGENT)
    assert denied.value.decision.codes == ["evidence_missing"]
    [recorded] = [v for v in engine.history(case.number)[-1].verdicts if v["guard"] == "photo_or_supervisor"]
    assert [b["code"] for b in recorded["details"]["branches"]] == ["evidence_missing", "approval_limit_exceeded"]
    assert engine.fire(case.number, "approve", actor=SUPERVISOR).state == "approved"
    assert engine.verify().ok


# ---- decision tables ---------------------------------------------------------------------------------------
RETURN_GUARDS = """\
          - guard: table
            id: return_window
            hit: unique                 # each reason in one row at most (`policy check` refuses overlaps)
            inputs: [reason]
            rule: {guard: window, since: delivered}
"""
RETURN_END = "          - guard: fraud_flag\n            id: return_fraud_confirmed\n"
# A return's window by category × reason × channel, and its evidence by reason × amount band, as tables ...
TABLES = """\
          - guard: table
            id: return_window
            hit: first
            inputs: [category, reason, channel]
            rule: {guard: window, since: delivered}
            rows:
              - {category: electronics, reason: no_reason, channel: [app, web], within: 15d}
              - {reason: no_reason, within: 7d}
              - {reason: "*", within: 14d}
          - guard: table
            id: return_evidence
            hit: unique
            inputs: [reason, amount]
            rule: {guard: evidence, all_of: [order_record]}
            rows:
              - {reason: no_reason, amount: "<= 500.00"}
              - {reason: no_reason, amount: "> 500.00", any_of: [photo, video]}
              - {reason: "!no_reason", any_of: [photo, video]}
"""
# ... and the same rules as hand-written guards.
HAND_WRITTEN = """\
          - guard: window
            id: w15
            when: "category == 'electronics' && reason == 'no_reason' && channel in ['app', 'web']"
            within: 15d
          - guard: window
            id: w7
            when: "reason == 'no_reason' && !(category == 'electronics' && channel in ['app', 'web'])"
            within: 7d
          - guard: window
            id: w14
            when: {reason: [defective, damaged_in_transit, wrong_item]}
            within: 14d
          - guard: evidence
            id: order_record
            all_of: [order_record]
          - guard: evidence
            id: photo_or_video
            when: "reason != 'no_reason' || amount > money('500.00')"
            any_of: [photo, video]
"""


def returns_with(rules: str, name: str = "rules.yaml") -> PolicySet:
    """The default policy with a return's approve judged by ``rules`` (and the fraud rule) alone."""
    start = DEFAULT.source.index(RETURN_GUARDS)
    end = DEFAULT.source.index(RETURN_END)
    return parse_policy(DEFAULT.source[:start] + rules + DEFAULT.source[end:], name)


TABLE, HAND = returns_with(TABLES), returns_with(HAND_WRITTEN)


def approve_return(policy: PolicySet, now_days: int = 5, **facts: object) -> object:
    base = {"order_id": "SO-1", "reason": "no_reason", "customer": CUSTOMER.id, "category": "books",
            "channel": "app", "amount": "99.00", "delivered": (NOW - timedelta(days=now_days)).date().isoformat(),
            "evidence": ev("order_record")}
    case = opened("RT-20261122-000001", "return", {**base, **facts}, policy, NOW)
    return decide(policy, case, "approve", AGENT, {}, NOW)


def test_the_first_row_that_matches_decides_by_its_rule():
    phone = approve_return(TABLE, now_days=12, category="electronics")
    assert verdict_of(phone, "return_window").passed and "the window is 15 days" in verdict_of(
        phone, "return_window").message
    late = approve_return(TABLE, now_days=12, category="electronics", channel="hotline")
    v = verdict_of(late, "return_window")
    assert (v.passed, v.code, v.details["table_row"], v.details["window_days"]) == (False, "window_expired", 2, 7)
    faulty = approve_return(TABLE, now_days=12, reason="defective", evidence=ev("order_record"))
    assert verdict_of(faulty, "return_window").passed
    assert verdict_of(faulty, "return_evidence").details["missing"] == ["photo or video"]


def test_evidence_by_reason_and_amount_band_compares_money_exactly():
    assert verdict_of(approve_return(TABLE, amount="500.00"), "return_evidence").passed
    above = verdict_of(approve_return(TABLE, amount="500.01"), "return_evidence")
    assert (above.passed, above.code, above.details["table_row"]) == (False, "evidence_missing", 2)


@settings(max_examples=150, deadline=None)
@example(days=7, category="electronics", reason="no_reason", channel="hotline", cents=50000, evidence={"order_record"})
@example(days=15, category="electronics", reason="no_reason", channel="web", cents=50001, evidence={"order_record"})
@given(days=st.integers(0, 30), category=st.sampled_from(["electronics", "books", "custom_made"]),
       reason=st.sampled_from(["no_reason", "defective", "damaged_in_transit", "wrong_item"]),
       channel=st.sampled_from(["app", "web", "chat", "hotline"]), cents=st.integers(0, 100_000),
       evidence=st.sets(st.sampled_from(["order_record", "photo", "video", "invoice"])))
def test_a_decision_table_and_the_same_rules_hand_written_decide_alike(days: int, category: str, reason: str,
                                                                        channel: str, cents: int,
                                                                        evidence: set[str]) -> None:
    facts = {"category": category, "reason": reason, "channel": channel, "amount": f"{cents / 100:.2f}",
             "evidence": ev(*sorted(evidence))}
    by_table, by_hand = (approve_return(p, now_days=days, **facts) for p in (TABLE, HAND))
    assert by_table.allowed == by_hand.allowed  # type: ignore[attr-defined]
    assert set(by_table.codes) == set(by_hand.codes)  # type: ignore[attr-defined]


def test_overlapping_rows_of_a_unique_table_are_an_error_at_the_later_row():
    text = returns_with(TABLES).source.replace('{reason: "!no_reason", any_of', '{reason: "*", any_of')
    line = _line_of(text, '{reason: "*", any_of')
    assert problems(text) == [
        f"rules.yaml:{line}:17: rows {n} and 3 of return_evidence overlap: both match reason no_reason, amount {band}; "
        "with hit: unique at most one row may match a case" for n, band in ((1, "below 500.00"), (2, "above 500.00"))]


def test_gaps_and_a_row_that_never_decides_are_warned_about_at_their_line():
    text = returns_with(TABLES).source.replace('              - {reason: "*", within: 14d}\n', "").replace(
        "              - {reason: no_reason, within: 7d}\n",
        "              - {reason: no_reason, within: 7d}\n              - {reason: no_reason, within: 9d}\n")
    warnings = [str(w) for w in parse_policy(text, "rules.yaml").warnings]
    rows, shadowed = _line_of(text, "            rows:"), _line_of(text, "within: 9d")
    assert f"rules.yaml:{shadowed}:17: warning: row 3 of return_window never decides: an earlier row matches every " \
           "case it matches (hit: first)" in warnings
    [gaps] = [w for w in warnings if "gaps" in w]
    holes = "; ".join(f"any category, reason {r}, any channel" for r in ("defective", "damaged_in_transit",
                                                                           "wrong_item"))
    assert gaps == (f"rules.yaml:{rows}:13: warning: return_window has gaps: no row matches {holes}; such a case is "
                    "not judged by it (add a row, or with hit: first a last row with no cells)")


def test_policy_check_types_a_tables_inputs_and_cells():
    text = returns_with(TABLES).source.replace("inputs: [reason, amount]", "inputs: [reason, amout]").replace(
        "{category: electronics, reason: no_reason,", "{category: electronics, reason: no_reasn,").replace(
        'channel: [app, web], within: 15d}', 'channel: "> 5", within: 15d}')
    found = problems(text)
    assert f"{at(text, 'amout')}: input 'amout' is not a declared fact (did you mean 'amount'?)" in found
    assert any(p.startswith(f"{at(text, 'no_reasn')}: unknown reason 'no_reasn' (did you mean 'no_reason'?)")
               for p in found), found
    assert f"{at(text, '> 5', -1)}: '> 5': a comparison or range needs a money or int input; channel is enum" in found


def test_a_malformed_cell_or_row_rule_is_reported_where_it_is_written():
    text = returns_with(TABLES).source.replace("channel: [app, web], within: 15d}", "channel: [app, web], withn: 15d}")
    assert f"{at(text, 'withn')}: unknown key 'withn' in kinds.return.events.approve.guards.0.table.rows.0.then." \
           "window.withn (did you mean 'within'?)" in problems(text)


def test_a_row_then_other_than_pass_says_then_takes_pass():
    text = returns_with(TABLES).source.replace("- {reason: no_reason, within: 7d}",
                                               "- {reason: no_reason, then: refuse}")
    found = problems(text)
    assert any(p.startswith(f"{at(text, 'then: refuse', len('then: '))}: ")
               and "then takes pass (a row that requires nothing)" in p
               and "'then'" not in p for p in found), found
    text = returns_with(TABLES).source.replace("- {reason: no_reason, within: 7d}",
                                               "- {reason: no_reason, then: pass, within: 7d}")
    assert any(p.startswith(f"{at(text, 'pass, within', 0)}") and "then: pass stands alone" in p
               for p in problems(text)), problems(text)


def test_the_json_schema_completes_combinators_and_tables():
    assert schema_errors(returns_with(TABLES).source) == []
    assert schema_errors(ANY_OF.source) == []
    assert schema_errors(returns_with(TABLES).source.replace("hit: first", "hit: frist"))


# ---- dates, windows that depend on a fact, who acts --------------------------------------------------------
LATEST = with_refund_rule("""\
          - guard: expr                 # 7 days from the last of the deliveries
            id: refund_within_7_days_of_last_delivery
            expr: "now - latest(delivered, redelivered) <= days(7)"
            code: window_expired
""", facts="  redelivered: {type: date}\n")


def test_the_latest_of_several_delivery_dates_starts_the_window():
    rule = "refund_within_7_days_of_last_delivery"
    assert verdict_of(approve(LATEST, amount="10.00", delivered="2026-11-01", redelivered="2026-11-20"), rule).passed
    late = verdict_of(approve(LATEST, amount="10.00", delivered="2026-11-20", redelivered="2026-11-01"), rule)
    assert late.passed
    both_old = verdict_of(approve(LATEST, amount="10.00", delivered="2026-11-01", redelivered="2026-11-02"), rule)
    assert not both_old.passed and both_old.details == {"delivered": "2026-11-01", "redelivered": "2026-11-02"}


def test_latest_of_money_is_a_type_error_at_the_function():
    text = LATEST.source.replace("latest(delivered, redelivered)", "latest(amount, paid)")
    [found] = problems(text)
    assert found == (f"{at(text, 'latest(amount')}: latest(): takes dates, like latest(delivered, redelivered) or "
                     "latest([delivered, shipped])")


def test_a_window_that_depends_on_a_fact():
    policy = with_refund_rule("""\
          - guard: expr                 # 15 days for electronics, else 7
            id: refund_window_by_category
            expr: "now - delivered <= days(category == 'electronics' ? 15 : 7)"
            code: window_expired
""")
    rule = "refund_window_by_category"
    assert verdict_of(approve(policy, amount="1.00", delivered="2026-11-10", category="electronics"), rule).passed
    assert not verdict_of(approve(policy, amount="1.00", delivered="2026-11-10", category="books"), rule).passed
    assert verdict_of(approve(policy, amount="1.00", delivered="2026-11-16", category="books"), rule).passed


def test_role_roles_and_actor_are_read_by_expressions():
    policy = with_refund_rule("""\
          - guard: expr
            id: big_refunds_by_supervisors
            when: "amount > money('1000.00')"
            expr: "'supervisor' in roles && actor != 'mallory'"
            code: approval_limit_exceeded
""")
    case = opened("RF-20261122-000001", "refund", {"order_id": "SO-1", "paid": "5000.00", "amount": "1500.00",
                                                    "customer": CUSTOMER.id}, policy, NOW)
    by = {who: verdict_of(decide(policy, case, "approve", who, {}, NOW), "big_refunds_by_supervisors")
          for who in (AGENT, SUPERVISOR, Actor("mallory", "supervisor"))}
    assert [v.passed for v in by.values()] == [False, True, False]
    assert by[AGENT].details["roles"] == ["agent"] and by[SUPERVISOR].details["roles"] == ["agent", "supervisor"]


def test_a_fact_may_not_take_the_name_of_what_an_expression_reads_of_the_decision():
    text = DEFAULT.source.replace("  tracking: {type: text", "  role: {type: text}\n  tracking: {type: text")
    [found] = problems(text)
    assert "'role' is what an expression reads of the decision" in found


def test_a_helper_given_the_wrong_number_of_arguments_is_an_error_at_its_name():
    text = LATEST.source.replace("<= days(7)", "<= days(7, 2)")
    assert problems(text) == [f"{at(text, 'days(7, 2)')}: days(): takes one argument, like days(14); given 2"]


def test_a_table_takes_its_codes_from_its_rows_rules():
    text = returns_with(TABLES).source.replace("hit: unique\n", "hit: unique\n            code: x\n")
    line = _line_of(text, "id: return_evidence") - 1
    assert problems(text) == [f"rules.yaml:{line}:13: kinds.return.events.approve.guards.1.table: a table's "
                              "refusals carry the code of its row's rule: give code: in rule: or in a row"]


def test_a_misspelt_helper_is_an_error_with_did_you_mean():
    text = LATEST.source.replace("latest(delivered", "lastest(delivered")
    assert problems(text) == [f"{at(text, 'lastest(')}: unknown function 'lastest' (did you mean 'latest'?)"]
