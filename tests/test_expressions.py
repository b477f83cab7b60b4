"""Expressions in a policy, as a policy author writes them: typed facts, `guard: expr`, `when:` as an expression,
and what `policy check` says about a mistake in one (FILE:LINE:COL, with "did you mean")."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal

import pytest
from test_rule_edges import NOW as EDGE_NOW
from test_rule_edges import SHANGHAI, TYPES, judge, rule

from casework import Actor, Engine, PolicyError, PolicySet, TransitionDenied, load_policy, parse_policy
from casework.decide import decide
from casework.policies.declarations import BUILTIN
from casework.policies.expressions import Expression, Outcome, check, from_minor, samples, to_minor
from casework.transition import opened

NOW = datetime.fromisoformat("2026-11-22T10:00:00+08:00")
AGENT, CUSTOMER = Actor("alice", "agent"), Actor("cust-1", "customer")
DEFAULT = load_policy()

# "Require a photo for refunds above 500.00", as README's Policies section writes it.
PHOTO_RULE = """\
          - guard: expr                 # a refund above 500.00 needs a photo
            id: refund_photo_above_500
            when: "amount > money('500.00')"
            expr: "'photo' in evidence"
            code: evidence_missing
            message: "a refund of {amount} (above 500.00) needs a photo"
            details: {missing: photo}
"""
ANCHOR = "          - guard: fraud_flag\n            id: refund_fraud_confirmed\n"


def with_refund_rule(rule: str, facts: str = "", name: str = "rules.yaml") -> PolicySet:
    """The default policy with ``rule`` added to a refund's approve (and ``facts`` declared)."""
    assert ANCHOR in DEFAULT.source
    text = DEFAULT.source.replace(ANCHOR, rule + ANCHOR)
    text = text.replace("  tracking: {type: text", facts + "  tracking: {type: text")
    return parse_policy(text, name)


PHOTO = with_refund_rule(PHOTO_RULE)


def approve(policy: PolicySet, **facts: object) -> object:
    base = {"order_id": "SO-1", "paid": "5000.00", "customer": CUSTOMER.id}
    case = opened("RF-20261122-000001", "refund", {**base, **facts}, policy, NOW)
    return decide(policy, case, "approve", AGENT, {}, NOW)


def problems(policy_text: str) -> list[str]:
    with pytest.raises(PolicyError) as refused:
        parse_policy(policy_text, "rules.yaml")
    return [str(p) for p in refused.value.problems]


# ---- require a photo for refunds above 500.00 ------------------------------------------------------------
def test_a_refund_above_500_without_a_photo_is_refused_with_evidence_missing_and_the_authors_message():
    decision = approve(PHOTO, amount="500.01", evidence=[{"type": "order_record", "ref": None}])
    assert not decision.allowed and decision.codes == ["evidence_missing"]
    [refusal] = decision.reasons
    assert refusal.guard == "refund_photo_above_500"
    assert refusal.message == "a refund of 500.01 (above 500.00) needs a photo"
    assert refusal.details["missing"] == "photo" and refusal.details["amount"] == "500.01"
    assert refusal.source == f"rules.yaml:{PHOTO.source.splitlines().index('            id: refund_photo_above_500')}"


def test_a_refund_above_500_with_a_photo_is_allowed():
    decision = approve(PHOTO, amount="1800.00", evidence=[{"type": "photo", "ref": "IMG_1.jpg"}])
    assert decision.allowed
    [verdict] = [v for v in decision.verdicts if v.guard == "refund_photo_above_500"]
    assert verdict.message == "'photo' in evidence holds (evidence photo)"


def test_a_refund_of_exactly_500_needs_no_photo_money_is_compared_exactly():
    decision = approve(PHOTO, amount="500.00")
    assert decision.allowed
    assert not [v for v in decision.verdicts if v.guard == "refund_photo_above_500"]  # the rule does not apply


def test_money_reaches_an_expression_as_whole_minor_units_never_a_float():
    assert to_minor("500.00") == 50000 and to_minor("0.10") + to_minor("0.20") == to_minor("0.30")
    with pytest.raises(ValueError, match="never a float"):
        to_minor(0.1)
    with pytest.raises(ValueError, match="two decimal places"):
        to_minor("1.001")


def test_a_refund_up_to_what_was_paid_plus_shipping_less_a_deduction_is_exact_to_the_cent():
    policy = with_refund_rule("""\
          - guard: expr
            id: refund_within_paid_shipping_deduction
            expr: "amount <= paid + shipping - deduction"
            code: amount_exceeds_paid
            message: "{amount} is more than {paid} paid + {shipping} shipping - {deduction} deducted"
""", facts="  shipping: {type: money}\n  deduction: {type: money}\n")
    def verdict(amount: str) -> object:
        decision = approve(policy, amount=amount, paid="0.10", shipping="0.30", deduction="0.10")
        return next(v for v in decision.verdicts if v.guard == "refund_within_paid_shipping_deduction")

    assert verdict("0.30").passed  # 0.10 + 0.30 - 0.10, exactly (in binary floats: 0.30000000000000004)
    over = verdict("0.31")
    assert not over.passed and over.code == "amount_exceeds_paid"
    assert over.message == "0.31 is more than 0.10 paid + 0.30 shipping - 0.10 deducted"


def test_a_fact_the_expression_needs_and_the_case_lacks_refuses_with_field_missing():
    policy = with_refund_rule("""\
          - {guard: expr, id: refund_before_purchase_anniversary, expr: "now - purchased <= days(365)",
             code: window_expired}
""")
    decision = approve(policy, amount="10.00")
    assert decision.codes == ["field_missing"] and decision.reasons[0].details["missing"] == ["purchased"]
    assert approve(policy, amount="10.00", purchased="2026-01-02").allowed
    assert approve(policy, amount="10.00", purchased="2025-11-21").codes == ["window_expired"]


def test_a_built_in_guard_can_apply_when_an_expression_holds():
    policy = with_refund_rule("""\
          - guard: evidence             # refunds above 1000.00 need the invoice
            id: refund_invoice_above_1000
            when: "amount > money('1000.00')"
            all_of: [invoice]
""")
    assert approve(policy, amount="1000.00").allowed
    assert approve(policy, amount="1000.01").codes == ["evidence_missing"]
    assert policy.judged("refund", "approved", "pay") >= {"amount"}


# ---- policy check: mistakes in expressions, at FILE:LINE:COL ------------------------------------------
def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _with_expr(expr: str) -> str:
    return PHOTO.source.replace("""expr: "'photo' in evidence\"""", f'expr: "{expr}"')


def test_a_misspelt_fact_is_an_error_at_its_line_and_column_with_did_you_mean():
    text = _with_expr("amout > money('1.00')")
    line = _line_of(text, 'expr: "amout')
    assert problems(text) == [f"rules.yaml:{line}:20: 'amout' is not a declared fact (did you mean 'amount'?)"]


def test_an_unknown_function_is_an_error_with_did_you_mean():
    text = _with_expr("amount > mony('1.00')")
    line = _line_of(text, "mony")
    assert problems(text) == [f"rules.yaml:{line}:29: unknown function 'mony' (did you mean 'money'?)"]


def test_money_compared_with_a_date_is_a_type_error():
    text = _with_expr("amount > delivered")
    [problem] = problems(text)
    assert problem.startswith(f"rules.yaml:{_line_of(text, 'amount > delivered')}:20: type error: amount is money, "
                              "delivered is a date")


def test_money_compared_with_a_bare_number_is_a_type_error_pointing_at_money():
    [problem] = problems(_with_expr("amount > 500.00"))
    assert "type error" in problem and "write money('500.00')" in problem


def test_a_syntax_error_is_placed_at_its_column_inside_the_expression():
    text = _with_expr("amount > (money('1.00')")
    [problem] = problems(text)
    assert problem.startswith(f"rules.yaml:{_line_of(text, 'amount > (')}:43: Syntax error")


def test_an_expression_must_be_true_or_false():
    [problem] = problems(_with_expr("amount + money('1.00')"))
    assert problem.endswith("a guard must be true or false; this gives money or a span")


def test_a_money_literal_that_is_not_money_is_an_error():
    [problem] = problems(_with_expr("amount > money('5.0x')"))
    assert "money(): '5.0x' is not an amount of money" in problem


def test_an_expression_guard_needs_a_known_reason_code():
    text = PHOTO.source.replace("code: evidence_missing", "code: evidence_mising")
    [problem] = problems(text)
    assert problem.startswith(f"rules.yaml:{_line_of(text, 'evidence_mising')}:19: unknown reason code "
                              "'evidence_mising' (did you mean 'evidence_missing'?)")


def test_all_mistakes_of_the_expressions_are_reported_in_one_run():
    text = _with_expr("amout > money('1.00')").replace("""when: "amount > money('500.00')\"""",
                                                          'when: "amount > delivered"')
    assert len(problems(text)) == 2


# ---- typed fact declarations ---------------------------------------------------------------------------
def test_the_default_policy_declares_the_facts_casework_knows_by_name_with_their_types():
    declared = DEFAULT.document.declared()
    assert {n: d.type for n, d in BUILTIN.items()} == {n: declared[n].type for n in BUILTIN}
    assert DEFAULT.document.personal == ["address", "customer_name", "email", "phone"]


def test_a_policy_without_facts_declares_the_built_in_ones():
    text = DEFAULT.source.split("\nfacts:\n")[0] + "\npersonal: [phone]\n" + DEFAULT.source.split(
        "customer_name: {type: text, personal: true}\n")[1]
    assert parse_policy(text).document.declared() == BUILTIN


def test_only_declared_facts_may_be_read_and_a_new_fact_is_read_as_its_type():
    text = PHOTO.source.replace(ANCHOR, '          - {guard: expr, id: no_final_sale, expr: "!final_sale", '
                                        'code: fraud_flagged}\n' + ANCHOR)
    assert "'final_sale' is not a declared fact; declare it under facts:" in problems(text)[0]
    declared = parse_policy(text.replace("  tracking: {type: text",
                                         "  final_sale: {type: bool}\n  tracking: {type: text"), "rules.yaml")
    assert approve(declared, amount="10.00").allowed  # absent: false
    assert approve(declared, amount="10.00", final_sale=True).codes == ["fraud_flagged"]


def test_a_fact_casework_knows_cannot_be_declared_another_type():
    text = DEFAULT.source.replace("  amount: {type: money", "  amount: {type: date")
    [problem] = problems(text)
    assert problem.startswith(f"rules.yaml:{_line_of(text, '  amount: {type: date')}:")
    assert problem.endswith("amount is money (casework reads it so); declared date")


def test_an_enum_names_a_value_list_there_is():
    text = DEFAULT.source.replace("values: conditions", "values: conditons")
    [problem] = problems(text)
    assert "unknown value list 'conditons' (did you mean 'conditions'?)" in problem


def test_a_fact_declared_personal_is_masked_like_the_personal_list(tmp_path):
    text = DEFAULT.source.replace("  tracking: {type: text", "  wechat_id: {type: text, personal: true}\n"
                                                             "  tracking: {type: text")
    policy = parse_policy(text, "rules.yaml")
    with Engine(f"sqlite:///{tmp_path / 'c.db'}", policies=policy) as engine:
        case = engine.open("complaint", {"order_id": "SO-1", "wechat_id": "wx-12345678"}, actor=CUSTOMER)
        assert engine.get(case.number).facts["wechat_id"] != "wx-12345678"
        assert engine.get(case.number, reveal=True).facts["wechat_id"] == "wx-12345678"
        assert engine.verify().ok  # the version's stored personal facts are its text's


# ---- through the engine, on both databases ---------------------------------------------------------------
def test_the_engine_refuses_and_records_a_refund_above_500_without_a_photo(make_engine):
    engine = make_engine(policies=PHOTO)
    case = engine.open("refund", {"order_id": "SO-7", "amount": "800.00", "paid": "800.00",
                                  "evidence": ["order_record"]}, actor=CUSTOMER)
    with pytest.raises(TransitionDenied) as denied:
        engine.fire(case.number, "approve", actor=AGENT)
    assert denied.value.decision.codes == ["evidence_missing"]
    assert engine.history(case.number)[-1].outcome == "refused"
    engine.fire(case.number, "provide_evidence", actor=CUSTOMER, data={"evidence": ["photo=IMG_2.jpg"]})
    assert engine.fire(case.number, "approve", actor=AGENT).state == "approved"
    assert engine.verify().ok


# ---- reason codes of the policy's own: "refuse returns of items sold as final sale" --------------------
FINAL_SALE_CODE = """
codes:
  final_sale:
    meaning: the item was sold as final sale, so it cannot be returned
    operator:
      en: "Final sale: {message}."
      zh-CN: "清仓商品：{message}。"
    customer:
      en: "We're sorry, items sold as final sale cannot be returned."
      zh-CN: "很抱歉，清仓商品不支持退货。"
"""
FINAL_SALE_RULE = """\
          - guard: expr                 # items sold as final sale are not returned
            id: no_return_of_final_sale
            expr: "!final_sale"
            code: final_sale
            message: "the item was sold as final sale"
"""
RETURN_ANCHOR = "          - guard: fraud_flag\n            id: return_fraud_confirmed\n"


def final_sale_policy(codes: str = FINAL_SALE_CODE) -> str:
    return (DEFAULT.source.replace(RETURN_ANCHOR, FINAL_SALE_RULE + RETURN_ANCHOR)
            .replace("  tracking: {type: text", "  final_sale: {type: bool}\n  tracking: {type: text") + codes)


FINAL_SALE = parse_policy(final_sale_policy(), "rules.yaml")
# Opened by an agent for the customer: how the item was sold is the shop's to say, not a fact a customer opens with.
RETURN = {"order_id": "SO-9", "amount": "99.00", "paid": "99.00", "reason": "defective", "delivered": "2026-11-20",
          "evidence": ["order_record", "photo"], "final_sale": True, "customer": "cust-1"}


def test_a_final_sale_return_is_refused_with_its_own_code_and_messages_in_english_and_chinese(tmp_path):
    with Engine(f"sqlite:///{tmp_path / 'c.db'}", policies=FINAL_SALE, clock=lambda: NOW) as engine:
        case = engine.open("return", RETURN, actor=AGENT)
        decision = engine.check(case.number, "approve", actor=AGENT)
        assert decision.codes == ["final_sale"]
        assert decision.reasons[0].message == "the item was sold as final sale"
        assert engine.messages(decision, lang="en") == ["We're sorry, items sold as final sale cannot be returned."]
        assert engine.messages(decision, lang="zh-CN") == ["很抱歉，清仓商品不支持退货。"]
        operator = engine.messages(decision, audience="operator", lang="zh-CN")
        assert operator == ["清仓商品：the item was sold as final sale。"]
        assert not engine.open("return", {**RETURN, "final_sale": False}, actor=AGENT).facts["final_sale"]


def test_a_code_the_policy_does_not_declare_is_refused_with_unknown_reason_code():
    text = final_sale_policy(codes="")
    [problem] = problems(text)
    assert problem.startswith(f"rules.yaml:{_line_of(text, 'code: final_sale')}:19: unknown reason code 'final_sale'")


def test_a_declared_code_may_not_take_the_name_of_one_of_the_engines():
    found = problems(final_sale_policy(codes=FINAL_SALE_CODE.replace("  final_sale:", "  fraud_flagged:")))
    assert any("'fraud_flagged' is a reason code of the engine; give its texts under messages:" in p for p in found)


def test_the_report_counts_refusals_by_the_policys_own_code(make_engine):
    engine = make_engine(policies=FINAL_SALE)
    case = engine.open("return", RETURN, actor=AGENT)
    with pytest.raises(TransitionDenied):
        engine.fire(case.number, "approve", actor=AGENT)
    assert engine.report().overall.refusals_by_code == {"final_sale": 1}


def test_a_policy_test_may_expect_the_policys_own_code(tmp_path):
    from casework.policies.authoring import run_policy_test_files

    suite = tmp_path / "final-sale.test.yaml"
    suite.write_text("""\
now: "2026-11-22T10:00:00+08:00"
scenarios:
  - name: a final-sale return is refused with final_sale
    kind: return
    facts: {order_id: SO-9, reason: defective, delivered: "-2d", evidence: [order_record, photo], final_sale: true}
    role: agent
    event: approve
    expect: {allowed: false, codes: [final_sale]}
""")
    run = run_policy_test_files(FINAL_SALE, [suite])
    assert not run.failed and len(run.results) == 1


# ---- effective dates: "15 days for electronics during the promotion" ----------------------------------
NO_REASON_ROW = "within: 7d, label: a no-reason return}\n"
assert DEFAULT.source.count(NO_REASON_ROW) == 1
PROMOTION = parse_policy(DEFAULT.source.replace(NO_REASON_ROW, """within: 7d, label: a no-reason return,
                 # Singles' Day promotion: 15 days for electronics
                 by_category: {electronics: {within: 15d, from: 2026-11-11, until: 2026-11-30}}}
"""), "rules.yaml")


def no_reason_return(policy: PolicySet, delivered: str, now: datetime, opened_at: datetime | None = None) -> object:
    facts = {"order_id": "SO-5", "amount": "899.00", "paid": "899.00", "reason": "no_reason", "condition": "unused",
             "category": "electronics", "delivered": delivered, "evidence": [{"type": "order_record", "ref": None}],
             "customer": CUSTOMER.id}
    case = opened("RT-20261122-000001", "return", facts, policy, opened_at or now)
    return decide(policy, case, "approve", AGENT, {}, now)


def test_during_the_promotion_electronics_have_15_days():
    decision = no_reason_return(PROMOTION, "2026-11-10", NOW)  # day 12, on 2026-11-22
    assert decision.allowed
    [window] = [v for v in decision.verdicts if v.guard == "no_reason_return_window"]
    assert window.details["period"] == "from 2026-11-11 until 2026-11-30"
    assert "the window for a no-reason return (from 2026-11-11 until 2026-11-30) is 15 days" in window.message


def test_after_the_promotion_electronics_have_7_days_again():
    after = datetime.fromisoformat("2026-12-12T10:00:00+08:00")
    decision = no_reason_return(PROMOTION, "2026-12-01", after)  # day 11, after 2026-11-30
    assert decision.codes == ["window_expired"] and decision.reasons[0].details["window_days"] == 7


def test_the_last_day_of_the_promotion_counts_in_the_policys_zone():
    last_evening = datetime.fromisoformat("2026-11-30T23:30:00+08:00")  # 15:30 UTC: still 30 November in Shanghai
    assert no_reason_return(PROMOTION, "2026-11-18", last_evening).allowed
    next_morning = datetime.fromisoformat("2026-12-01T00:30:00+08:00")
    assert not no_reason_return(PROMOTION, "2026-11-18", next_morning).allowed


def test_a_rule_in_force_for_a_period_applies_only_within_it():
    policy = with_refund_rule(PHOTO_RULE.replace("            details: {missing: photo}\n",
                                                 "            details: {missing: photo}\n"
                                                 "            from: 2026-12-01\n"))
    assert approve(policy, amount="800.00").allowed  # 22 November: not yet in force
    december = datetime.fromisoformat("2026-12-01T09:00:00+08:00")
    case = opened("RF-20261201-000001", "refund", {"order_id": "SO-1", "amount": "800.00", "paid": "800.00",
                                                   "customer": CUSTOMER.id}, policy, december)
    assert decide(policy, case, "approve", AGENT, {}, december).codes == ["evidence_missing"]


def test_a_rule_dated_by_the_opening_judges_requests_made_during_the_promotion():
    text = PROMOTION.source.replace("until: 2026-11-30}", "until: 2026-11-30, dated_by: opened}")
    policy = parse_policy(text, "rules.yaml")
    opened_during = datetime.fromisoformat("2026-11-29T10:00:00+08:00")
    decided_after = datetime.fromisoformat("2026-12-05T10:00:00+08:00")
    assert no_reason_return(policy, "2026-11-21", decided_after, opened_during).allowed  # day 14, opened in time
    assert not no_reason_return(PROMOTION, "2026-11-21", decided_after, opened_during).allowed


def test_a_period_that_ends_before_it_begins_is_an_error_at_its_line():
    text = PROMOTION.source.replace("until: 2026-11-30}", "until: 2026-11-01}")
    [problem] = problems(text)
    assert problem.startswith(f"rules.yaml:{_line_of(text, 'until: 2026-11-01')}:")
    assert problem.endswith("until 2026-11-01 is before from 2026-11-11: the rule is never in force")


# ---- a declared fact is taken in as its type says -------------------------------------------------------
def test_a_declared_fact_is_normalised_and_refused_as_its_type_when_a_case_is_opened(tmp_path):
    from casework import InvalidInput

    text = DEFAULT.source.replace("  tracking: {type: text", "  shipping: {type: money}\n  final_sale: {type: bool}\n"
                                  "  sale_channel: {type: enum, values: [flagship, outlet]}\n  tracking: {type: text")
    policy = parse_policy(text, "rules.yaml")
    with Engine(f"sqlite:///{tmp_path / 'c.db'}", policies=policy) as engine:
        case = engine.open("complaint", {"order_id": "SO-1", "shipping": "12.5", "final_sale": "true",
                                         "sale_channel": "outlet", "customer": "cust-1"}, actor=AGENT)
        assert (case.facts["shipping"], case.facts["final_sale"]) == ("12.50", True)
        for bad, said in (({"shipping": "twelve"}, "shipping"), ({"shipping": 12.5}, "not a decimal string"),
                          ({"final_sale": "perhaps"}, "true or false"),
                          ({"sale_channel": "outlett"}, "did you mean 'outlet'")):
            with pytest.raises(InvalidInput, match=said):
                engine.open("complaint", {"order_id": "SO-2", "customer": "cust-1", **bad}, actor=AGENT)


def test_policy_check_warns_when_a_codes_messages_use_a_placeholder_the_expr_guard_does_not_give():
    without = with_refund_rule(PHOTO_RULE.replace("            details: {missing: photo}\n", ""))
    [warning] = [w for w in without.warnings if "refund_photo_above_500" in w.message]
    assert warning.line == _line_of(without.source, "- guard: expr                 # a refund above 500.00")
    assert warning.message == ("refund_photo_above_500: the evidence_missing messages use {missing}, which its "
                               "refusals do not give; add details: {missing: ...}")
    assert not [w for w in PHOTO.warnings if "refund_photo_above_500" in w.message]


def test_expressions_judge_alike_from_many_threads_and_each_decision_reads_its_own_facts():
    """An engine shared across threads evaluates one policy version's compiled expressions (and casework's
    functions) from many threads at once: each evaluation sees its own facts, never another thread's or an
    earlier evaluation's."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC

    from casework.policies.expressions import Expression

    expr = Expression("amount > money('5.00') && now - delivered <= days(7)")
    types = {"amount": "money", "delivered": "date"}

    def judge(i: int) -> tuple[bool, bool]:
        amount = f"{i % 10}.00"  # above 5.00 for 6..9
        delivered = "2026-11-20" if i % 3 else "2026-11-01"  # in the window unless i % 3 == 0
        got = expr.run({"amount": amount, "delivered": delivered}, types, NOW, UTC).value
        return got, (i % 10 > 5 and i % 3 != 0)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(judge, range(400)))
    assert all(got is want for got, want in results)
    assert expr.run({"amount": "9.00"}, types, NOW, UTC).missing == ("delivered",)  # nothing left from before


# ---- what an expression reads, and what `policy check` says, exactly ------------------------------------------
TAIL = ("; money is compared with, added to and subtracted from money only (write money('500.00')), a date with "
        "dates and now, a span with days(n) or duration('24h')")


def checked(text: str, want: str | None = None) -> list[tuple[int, int, str]]:
    """What `policy check` finds in an expression on the shipped policy's facts (line and column inside it)."""
    typed = {name: samples(kind, None) for name, kind in TYPES.items()}  # (made here: each check makes its own)
    found = check(Expression(text), TYPES, typed) if want is None else check(Expression(text), TYPES, typed, want)
    return [(p.line, p.column, p.message) for p in found]


def read(text: str, facts: dict[str, object], types: dict[str, str] = TYPES) -> Outcome:
    return Expression(text).run(facts, types, EDGE_NOW, SHANGHAI)


def test_a_type_error_names_every_fact_the_expression_reads_with_its_type():
    assert checked("score + reason > 0") == [(1, 1, "type error: reason is an enum (text), score is an int" + TAIL)]
    assert checked("flags + evidence > 0") == [
        (1, 1, "type error: evidence is evidence (a list of types), flags is a list of text" + TAIL)]
    assert checked("amount > delivered") == [(1, 1, "type error: amount is money, delivered is a date" + TAIL)]


def test_a_type_error_between_literals_says_what_cel_could_not_do_and_that_it_reads_no_facts():
    assert checked("1 + 1 > 0 && 'a' + 1 == 'b'") == [
        (1, 1, "type error (Unsupported operation: string + int): it reads no facts" + TAIL)]


def test_a_type_error_behind_a_value_that_fails_is_still_found():
    # flags[0] fails on a case with no flags (not the expression's type); with a flag it adds text to a number.
    assert checked("flags[0] + 1 == 2") == [
        (1, 1, "type error (Unsupported operation: string + int): flags is a list of text" + TAIL)]
    assert checked("100 / score == 1 || note + 1 == 2") == [
        (1, 1, "type error (Unsupported operation: string + int): note is a text, score is an int" + TAIL)]
    assert checked("note == '' ? int(note) == 1 : note + 1 == 2") == [  # int('') fails for that text only
        (1, 1, "type error (Unsupported operation: string + int): note is a text" + TAIL)]


def test_an_index_past_the_end_of_a_list_is_no_error_in_the_check_and_refuses_a_case_without_the_flag():
    assert checked("flags[0] == 'vip'") == []
    outcome = read("flags[0] == 'vip'", {"flags": []})
    assert outcome == Outcome(None, {"flags": []}, (), "index out of bounds: 0")
    assert read("flags[0] == 'vip'", {"flags": ["vip"]}).value is True


def test_a_condition_must_be_true_or_false_and_the_check_says_what_it_gives():
    assert checked("delivered") == [(1, 1, "a condition must be true or false; this gives a date")]
    assert checked("score") == [(1, 1, "a condition must be true or false; this gives int")]
    assert checked("note") == [(1, 1, "a condition must be true or false; this gives str")]
    assert checked("flags", want="a guard") == [(1, 1, "a guard must be true or false; this gives list")]


def test_an_unknown_function_with_no_near_name_lists_the_functions_casework_adds():
    hint = "; casework adds money(), date(), days(), latest(), earliest()"
    assert checked("f1(amount)") == [(1, 1, f"unknown function 'f1'{hint}")]
    assert checked("amount > foo(amount)") == [(1, 10, f"unknown function 'foo'{hint}")]
    # Called as a method it is not looked for after the dot: the problem is placed at the expression's start.
    assert checked("amount > money('1.00') && note.foo()") == [(1, 1, f"unknown function 'foo'{hint}")]


def test_a_mistake_on_the_second_line_of_an_expression_is_placed_on_that_line():
    assert checked("amount > money('1.00') &&\n  amout") == [
        (2, 3, "'amout' is not a declared fact (did you mean 'amount'?)")]
    assert checked("amount > money('1.00') &&\n  amount > money('1.00') && amout") == [
        (2, 29, "'amout' is not a declared fact (did you mean 'amount'?)")]
    assert checked("amount > money('1.00') &&\n  score > 1 &&\n    amout") == [
        (3, 5, "'amout' is not a declared fact (did you mean 'amount'?)")]


def test_a_conditional_without_its_else_is_a_syntax_error_at_the_expressions_start():
    assert checked("amount ? true") == [(1, 1, "Incomplete `ExprContext` for `_?_:_` expression!")]


def test_an_expression_with_a_syntax_error_reads_no_facts_and_calls_no_functions():
    broken = Expression("amount >")
    assert broken.error is not None and broken.program is None
    assert (broken.reads(), broken.functions, broken.bound, broken.own, broken.who) == (
        frozenset(), frozenset(), frozenset(), (), False)


def test_a_date_the_date_function_cannot_read_is_an_error_at_the_function():
    assert checked("score > 0 && date('tomorrow') < now") == [
        (1, 14, "date(): date 'tomorrow' is not a date; expected an ISO date (2026-11-02) or datetime "
                "(2026-11-02T14:30:00+08:00)")]
    outcome = read("date(note) < now", {"note": "tomorrow"})
    assert outcome.error == ("Function 'date' error: Python function call failed: InvalidInput: date 'tomorrow' is "
                             "not a date; expected an ISO date (2026-11-02) or datetime (2026-11-02T14:30:00+08:00)")


def test_the_helpers_say_what_they_take():
    assert checked("earliest() < now") == [
        (1, 1, "earliest(): takes dates, like earliest(delivered, redelivered) or earliest([delivered, shipped])")]
    assert checked("days(true) > days(1)") == [
        (1, 1, "days(): takes a whole number of days, like days(14); given True")]
    assert checked("money(1, 2) > amount") == [(1, 1, "money(): takes one argument, like money('500.00'); given 2")]
    assert checked("earliest([delivered, shipped]) < now && latest([delivered]) < now") == []


def test_the_earliest_of_several_dates_or_of_a_list_of_them():
    facts = {"delivered": "2026-11-20", "shipped": "2026-11-18", "purchased": "2026-11-15"}
    assert read("now - earliest(delivered, shipped, purchased) > days(6)", facts).value is True
    assert read("now - earliest([delivered, shipped]) > days(6)", facts).value is False
    assert read("now - latest([purchased, shipped]) <= days(5)", facts).value is True


def test_a_fact_after_now_in_name_order_is_read_too():
    assert read("now - shipped <= days(7)", {"shipped": "2026-11-20"}) == Outcome(True, {"shipped": "2026-11-20"})


def test_a_case_without_flags_reads_as_no_flags_and_each_flag_as_text():
    assert read("size(flags) == 0", {}) == Outcome(True, {"flags": []})
    assert read("'vip' in flags && '3' in flags", {"flags": ["vip", 3]}).value is True


def test_a_bool_fact_given_as_text_by_the_cli_is_read_as_true_or_false_and_anything_else_is_an_error():
    gift = {"gift": "bool"}
    assert read("gift", {"gift": "true"}, gift) == Outcome(True, {"gift": "true"})
    assert read("gift", {"gift": "false"}, gift) == Outcome(False, {"gift": "false"})
    assert read("gift", {"gift": True}, gift).value is True
    assert read("!gift", {}, gift) == Outcome(True, {"gift": False})  # not known: false
    assert read("gift", {"gift": "yes"}, gift) == Outcome(None, {}, (), "gift 'yes' is not a bool: write true or false")


def test_a_fact_with_no_declaration_is_read_as_text():
    assert read("note == 'x'", {"note": "x"}, {}) == Outcome(True, {"note": "x"})


def test_a_fact_that_is_not_its_type_is_named_with_its_value_and_the_facts_read_before_it_are_kept():
    outcome = read("amount > money('1.00') && now - delivered <= days(7)", {"amount": "2", "delivered": "soon"})
    assert outcome == Outcome(None, {"amount": "2.00"}, (), "delivered 'soon' is not a date: delivered 'soon' is "
                              "not a date; expected an ISO date (2026-11-02) or datetime (2026-11-02T14:30:00+08:00)")


def test_money_is_shown_as_people_read_it_with_its_sign_and_two_places():
    assert read("amount > money('500.00')", {"amount": "600"}).values == {"amount": "600.00"}
    assert read("adjustment < money('0.00')", {"adjustment": "-1.5"}).values == {"adjustment": "-1.50"}
    assert read("adjustment == money('0.00')", {"adjustment": "0"}).values == {"adjustment": "0.00"}
    assert read("adjustment < money('1.00')", {"adjustment": Decimal("0.5")}).values == {"adjustment": "0.50"}
    assert from_minor(-150) == "-1.50" and from_minor(0) == "0.00" and from_minor(5) == "0.05"


def test_evidence_given_as_type_equals_reference_by_the_cli_is_read_as_its_types():
    outcome = read("'photo' in evidence", {"evidence": ["photo=IMG_1.jpg=v2", "receipt"]})
    assert outcome == Outcome(True, {"evidence": ["photo", "receipt"]})


def test_a_when_reads_money_and_evidence_as_people_read_them_in_the_refusals_details():
    photo = rule(guard="expr", id="photo", when="amount > money('500.00')", expr="'photo' in evidence",
                 code="evidence_missing")
    v = judge(photo, {"amount": "600", "evidence": ["receipt=r.pdf"]})
    assert v.details == {"amount": "600.00", "evidence": ["receipt"]}
    assert v.message == "'photo' in evidence does not hold (evidence receipt)"
    capped = rule(guard="expr", id="capped", when="'receipt' in evidence", expr="amount <= money('500.00')",
                  code="amount_exceeds_paid")
    v = judge(capped, {"amount": "600", "evidence": [{"type": "receipt", "ref": "r.pdf"}]})
    assert v.details == {"evidence": ["receipt"], "amount": "600.00"}


def test_an_expression_is_the_same_expression_as_another_with_the_same_text():
    assert Expression("amount > money('1.00')") == Expression("amount > money('1.00')")
    assert Expression("amount > money('1.00')") != Expression("amount > money('2.00')")
    assert Expression("score > 1") != "score > 1"
    assert len({Expression("score > 1"), Expression("score > 1")}) == 1
    assert hash(Expression("score > 1")) == hash("score > 1")


def test_now_and_a_date_reach_an_expression_in_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "Asia/Shanghai")  # a machine whose own zone is not UTC
    time.tzset()
    try:
        # 10:00 in Shanghai is 02:00 UTC; the delivery date is midnight in the policy's zone, 16:00 UTC the day before.
        assert read("now.getHours() == 2 && delivered.getHours() == 16", {"delivered": "2026-11-20"}).value is True
    finally:
        monkeypatch.undo()
        time.tzset()


KINDS = {"gift": "bool", "at": "datetime", "on": "date", "tags": "list", "level": "enum", "ev": "evidence",
         "score": "int", "amount": "money", "note": "text"}


def kind_samples() -> dict[str, tuple[object, ...]]:
    values = {"level": ["low", "high"], "tags": ["a", "b"]}
    return {name: samples(kind, values.get(name)) for name, kind in KINDS.items()}


def test_every_kind_of_fact_is_checked_as_its_type():
    every = ("gift && now - at > days(1) && now - on > days(1) && level in ['low', 'high'] && 'a' in tags && "
             "'x' in ev && score >= 0 && amount >= money('0.00') && note != 'y'")
    assert check(Expression(every), KINDS, kind_samples()) == []


@pytest.mark.parametrize("branch", [
    "gift", "!gift", "score == 0", "score > 1000", "size(tags) == 0", "'b' in tags", "level == 'low'",
    "level == 'high'", "amount == money('0.00')", "amount > money('1000000.00')", "on < date('2000-01-02')",
    "at > date('2099-12-31')", "size(ev) == 0", "size(ev) > 0",
])
def test_a_type_error_behind_a_branch_on_a_facts_empty_or_large_value_is_found(branch: str):
    # The check tries each fact at an empty, zero or earliest value and at a large or latest one.
    [found] = check(Expression(f"{branch} ? note + 1 == 2 : true"), KINDS, kind_samples())
    assert found.message.startswith("type error (Unsupported operation: string + int): ")
    empty = check(Expression("note == '' ? score + 'a' == 1 : true"), KINDS, kind_samples())
    assert [p.message.split(";")[0] for p in empty] == ["type error: note is a text, score is an int"]


def test_a_when_that_cannot_be_judged_applies_the_rule_and_the_refusal_shows_the_value_as_given():
    photo = rule(guard="expr", id="photo", when="amount > money('500.00')", expr="'photo' in evidence",
                 code="evidence_missing")
    v = judge(photo, {"amount": "lots", "evidence": []})
    assert not v.passed and v.code == "evidence_missing"
    assert v.details == {"amount": "lots", "evidence": []}


def test_rules_of_one_decision_that_read_the_same_fact_each_read_every_fact_they_need():
    # The second rule finds amount already read by the first (converted once per decision), and still reads score.
    both = rule(guard="all_of", id="both", guards=[
        {"guard": "expr", "id": "some", "expr": "amount > money('1.00')", "code": "amount_exceeds_paid"},
        {"guard": "expr", "id": "low", "expr": "amount > money('1.00') && score < 5", "code": "amount_exceeds_paid"}])
    v = judge(both, {"amount": "2.00", "score": 3})
    assert v.passed and v.message == ("all hold: (1) amount > money('1.00') holds (amount 2.00); "
                                      "(2) amount > money('1.00') && score < 5 holds (amount 2.00; score 3)")


@pytest.mark.parametrize("hidden", ["on > date('2050-01-01')", "score > 1000"])
def test_an_expression_over_more_than_six_facts_tries_each_fact_at_both_values(hidden: str):
    # Nine facts: 64 patterns instead of all 512 combinations, in which every fact still takes both of its values.
    rest = ("amount >= money('0.00') && at != now && size(ev) >= 0 && (gift || !gift) && level != 'z' && "
            "note != 'z' && size(tags) >= 0 && score >= 0 && on != now")
    [found] = check(Expression(f"({hidden} ? note + 1 == 2 : true) && {rest}"), KINDS, kind_samples())
    assert found.message.startswith("type error (Unsupported operation: string + int): amount is money, at is a "
                                    "datetime, ev is evidence (a list of types), gift is a bool, level is an enum")


@pytest.mark.parametrize("when, holds", [
    ("role != 'agent'", False), ("role == 'agent' && actor == 'alice'", True),       # who acts
    ("now < timestamp('2026-11-01T00:00:00Z')", False), ("now > timestamp('2026-11-22T01:59:00Z')", True),  # now
    # a date fact is midnight in the policy's zone: 2026-11-21 in Shanghai is 2026-11-20T16:00Z
    ("delivered > timestamp('2026-11-20T16:30:00Z')", False), ("delivered < timestamp('2026-11-20T16:30:00Z')", True),
])
def test_a_when_expression_reads_who_acts_now_and_dates_in_the_policys_zone(when: str, holds: bool):
    from test_rule_edges import ROLES

    from casework.policies.context import GuardContext

    guarded = rule(guard="expr", id="gated", when=when, expr="false", code="evidence_missing")
    ctx = GuardContext(kind="refund", event="approve", state="requested", facts={"delivered": "2026-11-21"},
                       data={}, actor=AGENT, now=EDGE_NOW, tz=SHANGHAI, roles=ROLES, responded=False, types=TYPES)
    assert guarded.applies(ctx) is holds


def test_an_expression_and_a_table_cell_read_and_write_back_as_a_policy_writes_them():
    from pydantic import TypeAdapter, ValidationError

    from casework.policies.tables import Cell

    cells: TypeAdapter[Cell] = TypeAdapter(Cell)
    band = cells.validate_python("100.00..500.00")
    assert isinstance(band, Cell) and band.matches("250.00") and not band.matches("500.01")
    assert cells.validate_python(band) is band and cells.dump_python(band) == "100.00..500.00"
    listed = cells.validate_python(["a", "b", True])
    assert listed.matches("b") and not listed.matches("c") and listed.matches(True)
    assert cells.dump_python(listed) == ["a", "b", "true"] and listed.text == "[a, b, true]"  # a list, not a repr
    assert cells.validate_python(cells.dump_python(listed)) == listed
    exprs: TypeAdapter[Expression] = TypeAdapter(Expression)
    one = exprs.validate_python("x")  # one character is an expression
    assert isinstance(one, Expression) and one.text == "x" and exprs.dump_python(one) == "x"
    assert exprs.dump_json(exprs.validate_python("amount > money('1.00')")) == b"\"amount > money('1.00')\""
    with pytest.raises(ValidationError):
        exprs.validate_python("")
