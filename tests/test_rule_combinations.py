"""Rules combined and rules in force for a period, as a policy author writes them: ``all_of``, ``any_of`` and
``not`` with what each says when it holds and when it refuses; ``from``/``until`` on their first and last day
in the policy's zone, judged by the event or by the opening; an expression guard's verdicts.

Guards are written as in a policy file and judged as :func:`casework.decide.decide` judges them (helpers in
``test_rule_edges``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from test_rule_edges import NOW, ROLES, SHANGHAI, TYPES, judge, rule

from casework import Actor
from casework.policies.context import GuardContext
from casework.policies.tables import Cell

PHOTO = {"guard": "evidence", "id": "photo", "any_of": ["photo"]}
UNUSED = {"guard": "condition", "id": "unused", "allowed": ["unused"]}
BOOKS_ONLY = {"guard": "category_excluded", "id": "no_food", "when": {"category": ["food"]}, "categories": ["food"]}
WITH_PHOTO = [{"type": "photo", "ref": None}]


def applies(guard: Any, *, now: datetime = NOW, opened: datetime | None = None, **facts: Any) -> bool:
    ctx = GuardContext(kind="return", event="approve", state="requested", facts=facts, data={},
                       actor=Actor("alice", "agent"), now=now, tz=SHANGHAI, roles=ROLES, opened=opened,
                       types=TYPES)
    return bool(guard.applies(ctx))


# ---- all_of / any_of / not ---------------------------------------------------------------------------------------
def test_all_of_holds_when_every_branch_that_applies_holds_and_says_each():
    both = rule(guard="all_of", id="photo_and_unused", guards=[PHOTO, UNUSED, BOOKS_ONLY])
    v = judge(both, {"evidence": WITH_PHOTO, "condition": "unused", "category": "books"})
    assert v.passed and v.code is None and v.guard == "photo_and_unused"
    assert v.message == ("all hold: (1) evidence present: one of photo; "
                         "(2) item condition is unused; accepted: unused")


def test_all_of_refuses_with_the_first_failing_branchs_code_and_lists_every_failing_branch():
    both = rule(guard="all_of", guards=[PHOTO, UNUSED])
    v = judge(both, {"evidence": [], "condition": "used"})
    assert not v.passed and v.code == "evidence_missing"
    assert v.message == ("2 of 2 must-hold rules fail: (1) missing evidence: photo; required: one of photo; "
                         "(2) item condition is used; accepted: unused")
    assert [(b["guard"], b["code"]) for b in v.details["branches"]] == [
        ("photo", "evidence_missing"), ("unused", "condition_unacceptable")]
    assert v.details["combinator"] == "all_of" and v.details["missing"] == ["photo"]
    one = judge(both, {"evidence": WITH_PHOTO, "condition": "used"})
    assert one.code == "condition_unacceptable" and one.message.startswith("1 of 2 must-hold rules fail: (1) item")


def test_a_combinator_with_its_own_code_and_message_speaks_for_its_branches():
    named = rule(guard="all_of", guards=[PHOTO, UNUSED], code="return_refused",
                 message="a return needs {missing} and an unused item")
    v = judge(named, {"evidence": [], "condition": "used"})
    assert v.code == "return_refused" and v.message == "a return needs photo and an unused item"
    assert v.details["combinator"] is None
    # Holding, it carries no code at all.
    assert judge(named, {"evidence": WITH_PHOTO, "condition": "unused"}).code is None


def test_all_of_and_any_of_with_no_branch_applying_hold():
    only_food = [BOOKS_ONLY]
    assert judge(rule(guard="all_of", guards=only_food), {"category": "books"}).message == "no branch applies"
    v = judge(rule(guard="any_of", guards=only_food), {"category": "books"})
    assert v.passed and v.message == "no alternative applies"


def test_any_of_holds_by_its_first_holding_alternative_and_refuses_listing_all():
    either = rule(guard="any_of", guards=[PHOTO, UNUSED])
    v = judge(either, {"evidence": [], "condition": "unused"})
    assert v.passed and v.message == "holds: item condition is unused; accepted: unused"
    both = judge(either, {"evidence": WITH_PHOTO, "condition": "unused"})
    assert both.message == "holds: evidence present: one of photo"
    none = judge(either, {"evidence": [], "condition": "used"})
    assert not none.passed and none.code == "evidence_missing" and none.details["combinator"] == "any_of"
    assert none.message.startswith("none of 2 alternatives holds: (1) missing evidence: photo")
    assert len(none.details["branches"]) == 2


def test_not_refuses_when_its_rule_holds_and_passes_when_it_does_not():
    not_vip = rule(guard="not", id="not_unused", rule=UNUSED, code="condition_unacceptable")
    refused = judge(not_vip, {"condition": "unused"})
    assert not refused.passed and refused.code == "condition_unacceptable"
    assert refused.message == "must not hold, but does: item condition is unused; accepted: unused"
    held = judge(not_vip, {"condition": "used"})
    assert held.passed and held.message == "does not hold, as required: item condition is used; accepted: unused"
    assert held.details == {"condition": "used", "accepted": ["unused"], "outcomes": {"1": False}}
    skipped = judge(rule(guard="not", rule=BOOKS_ONLY, code="category_excluded"), {"category": "books"})
    assert skipped.passed and skipped.message == "its rule does not apply" and skipped.details == {"outcomes": {}}


def test_a_combinator_judges_the_facts_of_every_branch():
    both = rule(guard="all_of", guards=[UNUSED, {"guard": "amount_within", "amount": "amount", "limit": "paid"}])
    assert both.judges() == {"condition", "amount", "paid"}
    assert rule(guard="not", rule=UNUSED, code="x").judges() == {"condition"}


# ---- from / until ------------------------------------------------------------------------------------------------
PROMOTION = rule(guard="range", field="score", min=1, **{"from": "2026-11-11", "until": "2026-11-30"})


def shanghai(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def test_a_rule_is_in_force_from_its_first_to_its_last_day_in_the_policys_zone():
    assert applies(PROMOTION, now=shanghai(11))
    assert applies(PROMOTION, now=shanghai(30, 23, 59))
    assert not applies(PROMOTION, now=shanghai(10, 23, 59))
    assert not applies(PROMOTION, now=shanghai(1, month=12))
    # 16:30 UTC on the 10th is already the 11th in Shanghai.
    assert applies(PROMOTION, now=datetime.fromisoformat("2026-11-10T16:30:00+00:00"))
    assert not applies(PROMOTION, now=datetime.fromisoformat("2026-11-30T16:30:00+00:00"))


def test_a_rule_with_only_a_first_or_only_a_last_day_is_open_on_the_other_side():
    since = rule(guard="responded", **{"from": "2026-11-11"})
    assert applies(since, now=shanghai(11)) and applies(since, now=shanghai(1, month=12) + timedelta(days=400))
    assert not applies(since, now=shanghai(10, 23, 59))
    assert since.period_text() == "from 2026-11-11"
    until = rule(guard="responded", until="2026-11-30")
    assert applies(until, now=shanghai(30, 23, 59)) and not applies(until, now=shanghai(1, month=12))
    assert until.period_text() == "until 2026-11-30"
    assert PROMOTION.period_text() == "from 2026-11-11 until 2026-11-30"
    assert rule(guard="responded").period_text() == ""


def test_a_rule_dated_by_the_opening_judges_the_day_the_case_was_opened():
    opened = rule(guard="responded", until="2026-11-30", dated_by="opened")
    december = shanghai(5, month=12)
    assert applies(opened, now=december, opened=shanghai(30, 20))
    assert not applies(opened, now=shanghai(29), opened=shanghai(1, month=12))
    # Without an opening instant (a case being opened), the event's instant is judged.
    assert applies(opened, now=shanghai(29), opened=None) and not applies(opened, now=december, opened=None)
    by_event = rule(guard="responded", until="2026-11-30")
    assert not applies(by_event, now=december, opened=shanghai(30, 20))


def test_a_when_mapping_matches_any_listed_value_and_the_role_or_a_role_it_inherits():
    when = rule(guard="responded", when={"reason": ["defective", "wrong_item"], "role": ["agent"]})
    assert applies(when, reason="wrong_item") and not applies(when, reason="no_reason") and not applies(when)
    assert when.judges() == {"reason"}
    supervisor = GuardContext(kind="return", event="approve", state="requested", facts={"reason": "defective"},
                              data={}, actor=Actor("sam", "supervisor"), now=NOW, tz=SHANGHAI, roles=ROLES)
    customer = GuardContext(kind="return", event="approve", state="requested", facts={"reason": "defective"},
                            data={}, actor=Actor("c", "customer"), now=NOW, tz=SHANGHAI, roles=ROLES)
    assert when.applies(supervisor) and not when.applies(customer)
    each = rule(guard="responded", when={"category": ["a"], "condition": ["b"], "channel": ["app"]})
    assert applies(each, category="a", condition="b", channel="app")
    assert not applies(each, category="a", condition="b", channel="email")
    assert not applies(each, category="a", condition="x", channel="app")
    assert each.judges() == {"category", "condition", "channel"}


# ---- an expression guard --------------------------------------------------------------------------------------
def test_an_expression_guard_says_what_it_read_when_it_holds_and_when_it_refuses():
    big = rule(guard="expr", id="photo_above_500", when="amount > money('500.00')", expr="'photo' in evidence",
               code="evidence_missing", message="a refund of {amount} (above 500.00) needs a photo",
               details={"missing": "photo"})
    assert not applies(big, amount="400.00", evidence=[])
    refused = judge(big, {"amount": "600.00", "evidence": []})
    assert refused.passed is False and refused.code == "evidence_missing"
    assert refused.message == "a refund of 600.00 (above 500.00) needs a photo"
    assert refused.details == {"amount": "600.00", "evidence": [], "missing": "photo"}
    held = judge(big, {"amount": "600.00", "evidence": WITH_PHOTO})
    assert held.passed and held.code is None and held.message == "'photo' in evidence holds (evidence photo)"
    assert held.details == {"amount": "600.00", "evidence": ["photo"]}
    plain = rule(guard="expr", expr="'photo' in evidence", code="evidence_missing")
    no = judge(plain, {"evidence": []})
    assert no.message == "'photo' in evidence does not hold (evidence none)" and no.guard == "expr"


def test_an_expression_guard_refuses_a_fact_it_needs_that_the_case_does_not_hold():
    v = judge(rule(guard="expr", expr="amount <= paid", code="amount_exceeds_paid"), {"amount": "5.00"})
    assert not v.passed and v.code == "field_missing"
    assert v.message == "paid is not known; this rule needs it" and v.details["missing"] == ["paid"]
    two = judge(rule(guard="expr", expr="amount <= paid", code="amount_exceeds_paid"), {})
    assert two.message == "amount, paid are not known; this rule needs it"


def test_an_expression_that_cannot_be_judged_on_the_facts_is_refused_saying_why():
    v = judge(rule(guard="expr", expr="int(note) > 0", code="note_unreadable"), {"note": "abc"})
    assert v.passed is False and v.code == "note_unreadable"
    assert v.message.startswith("the rule could not be judged on these facts: Function 'int' error")
    assert v.details["error"] in v.message and v.details["note"] == "abc"
    missing = judge(rule(guard="expr", expr="amount <= paid", code="amount_exceeds_paid"), {})
    assert missing.passed is False and missing.to_json()["passed"] is False


def test_a_date_only_fact_in_an_expression_is_midnight_in_the_policys_zone():
    # Delivered on the 21st: midnight in Shanghai is 34 hours before 10:00 on the 22nd (in UTC it would be 26).
    since = rule(guard="expr", expr="now - delivered >= duration('30h')", code="window_expired")
    assert judge(since, {"delivered": "2026-11-21"}).passed
    on = rule(guard="expr", expr="delivered >= date('2026-11-21')", code="window_expired")
    assert judge(on, {"delivered": "2026-11-21"}).passed
    assert judge(on, {"delivered": "2026-11-20T23:59:00+08:00"}).passed is False


def test_a_refusal_message_fills_its_placeholders_and_keeps_the_unknown_ones():
    listed = rule(guard="expr", expr="size(evidence) > 2", code="evidence_missing",
                  message="only {evidence} given; {unknown} stays, {0} too")
    v = judge(listed, {"evidence": [{"type": "photo", "ref": None}, {"type": "video", "ref": None}]})
    assert v.message == "only {evidence} given; {unknown} stays, {0} too"  # a template that cannot be filled: as is
    named = rule(guard="expr", expr="size(evidence) > 2", code="evidence_missing",
                 message="only {evidence} given; {unknown} stays")
    assert judge(named, {"evidence": [{"type": "photo", "ref": None}, {"type": "video", "ref": None}]}).message \
        == "only photo, video given; {unknown} stays"


def test_an_expression_guard_tells_every_value_it_read():
    both = rule(guard="expr", expr="amount <= paid", code="amount_exceeds_paid")
    assert judge(both, {"amount": "5.00", "paid": "10.00"}).message == "amount <= paid holds (amount 5.00; paid 10.00)"
    two = rule(guard="expr", expr="size(evidence) >= 2", code="evidence_missing")
    assert judge(two, {"evidence": [{"type": "photo", "ref": None}, {"type": "video", "ref": None}]}).message \
        == "size(evidence) >= 2 holds (evidence photo, video)"
    nothing = rule(guard="expr", expr="1 < 2", code="x")
    assert judge(nothing, {}).message == "1 < 2 holds"
    never = rule(guard="expr", expr="1 > 2", code="x")
    assert judge(never, {}).message == "1 > 2 does not hold"


def test_an_expression_guard_gives_its_messages_the_facts_it_reads_and_its_details():
    guard = rule(guard="expr", expr="'photo' in evidence", when="amount > money('500.00')", code="evidence_missing",
                 details={"wanted": "photo"})
    assert guard.gives() == {"evidence", "amount", "wanted"}
    missing = rule(guard="expr", expr="has_receipt", code="field_missing")
    assert missing.gives() == {"has_receipt", "missing"}


def test_a_period_window_takes_any_duration():
    window = rule(guard="window", within="7d", by_category={"electronics": {"within": "36h", "from": "2026-11-01"}})
    assert window.by_category["electronics"].within == timedelta(hours=36)


def test_an_expression_guard_judges_the_facts_of_its_when_and_its_expression():
    guard = rule(guard="expr", expr="condition == 'unused'", when="amount > money('500.00')",
                 code="condition_unacceptable")
    assert guard.judges() == {"condition", "amount"}
    # Evidence only accumulates: what a rule found present stays present, so it is no fact judged.
    assert rule(guard="expr", expr="'photo' in evidence", code="evidence_missing").judges() == set()
    assert rule(guard="expr", expr="size(evidence) > 1", code="evidence_missing").gives() == {"evidence"}


# ---- a decision table ------------------------------------------------------------------------------------------
def table(**extra: Any) -> Any:
    return rule(guard="table", hit="first", inputs=["reason", "category"],
                rule={"guard": "window", "since": "delivered"},
                rows=[{"reason": "no_reason", "category": "electronics", "within": "15d"},
                      {"reason": "no_reason", "within": "7d"},
                      {"reason": "defective", "then": "pass"},
                      {"reason": "wrong_item", "within": "14d", "when": {"category": ["books"]}}], **extra)


def test_a_table_row_decides_by_its_rule_and_is_named_by_its_row():
    v = judge(table(id="return_window"),
              {"reason": "no_reason", "category": "electronics", "delivered": "2026-11-10"})
    assert v.passed and v.guard == "return_window" and v.details["table_row"] == 1
    assert v.message == "delivered 12 days ago; the window is 15 days"
    late = judge(table(), {"reason": "no_reason", "category": "books", "delivered": "2026-11-10"})
    assert late.passed is False and late.code == "window_expired" and late.guard == "table"
    assert late.details["table_row"] == 2


def test_a_table_row_that_requires_nothing_or_does_not_apply_passes_saying_so():
    passed = judge(table(), {"reason": "defective", "category": "books"})
    assert passed.passed is True and passed.message == "row 3 requires nothing here"
    assert passed.details == {"table_row": 3}
    skipped = judge(table(), {"reason": "wrong_item", "category": "toys"})
    assert skipped.passed is True and skipped.message == "row 4 requires nothing here"


def test_a_case_no_row_matches_is_not_judged_by_the_table():
    assert not applies(table(), reason="other", category="books")
    assert applies(table(), reason="defective", category="books")
    assert not applies(table(until="2026-11-01"), reason="defective", category="books")
    v = table().evaluate(GuardContext(kind="return", event="approve", state="requested", facts={"reason": "other"},
                                      data={}, actor=Actor("alice", "agent"), now=NOW, tz=SHANGHAI, roles=ROLES))
    assert v.passed is True and v.message == "no row matches this case"


def band(cell: str) -> Any:
    """A table with one row matching ``amount`` by ``cell`` (a comparison or a range on money)."""
    return rule(guard="table", hit="first", inputs=["amount"], rule={"guard": "evidence", "any_of": ["photo"]},
                rows=[{"amount": cell}])


def test_a_money_band_in_a_table_cell_holds_its_bounds_exactly():
    def matched(cell: str, amount: str) -> bool:
        return applies(band(cell), amount=amount)

    assert [matched("100.00..500.00", a) for a in ("99.99", "100.00", "500.00", "500.01")] == [
        False, True, True, False]
    assert [matched("> 500.00", a) for a in ("500.00", "500.01")] == [False, True]
    assert [matched(">= 500.00", a) for a in ("499.99", "500.00")] == [False, True]
    assert [matched("< 500.00", a) for a in ("499.99", "500.00")] == [True, False]
    assert [matched("<= 500.00", a) for a in ("500.00", "500.01")] == [True, False]
    assert not matched("> 500.00", "n/a") and not matched("< 500.00", "n/a")  # not a number: matches no band


# ---- combinators: a branch that does not apply, and what every branch said ---------------------------------------
def test_a_branch_that_does_not_apply_is_left_out_and_the_branches_after_it_are_still_judged():
    either = rule(guard="any_of", id="photo_unless_food", guards=[BOOKS_ONLY, PHOTO])
    v = judge(either, {"category": "books", "evidence": []})
    assert not v.passed and v.code == "evidence_missing"
    assert v.message == "none of 1 alternatives holds: (1) missing evidence: photo; required: one of photo"
    assert v.details["outcomes"] == {"2": False}
    both = rule(guard="all_of", id="photo_and_unused", guards=[BOOKS_ONLY, PHOTO, UNUSED])
    v = judge(both, {"category": "books", "evidence": WITH_PHOTO, "condition": "used"})
    assert not v.passed and v.details["outcomes"] == {"2": True, "3": False}


def test_a_refused_any_of_says_how_each_branch_came_out():
    either = rule(guard="any_of", guards=[PHOTO, UNUSED])
    v = judge(either, {"evidence": [], "condition": "used"})
    assert not v.passed and v.details["outcomes"] == {"1": False, "2": False}


def test_a_combinator_inside_a_table_row_is_the_tables_rule_not_a_branch_of_the_outer_combinator():
    row_rule = {"guard": "all_of", "guards": [PHOTO, UNUSED]}
    inner = rule(guard="table", hit="first", inputs=["category"], rows=[{"category": "books", "then": row_rule}])
    outer = rule(guard="any_of", guards=[inner, PHOTO])
    v = judge(outer, {"category": "books", "evidence": [], "condition": "used"})
    assert not v.passed and v.details["outcomes"] == {"1": False, "2": False}


# ---- a table's cells as written ------------------------------------------------------------------------------
NOT_A_CELL = ("is not a cell: write a value, a list, '*', '!value', '> 500.00' or '100.00..500.00' (money as a "
              "quoted decimal string)")


@pytest.mark.parametrize("raw", [[], ["defective", 1.5]])
def test_a_list_cell_holds_one_or_more_values(raw: Any):
    with pytest.raises(ValueError) as refused:
        Cell.parse(raw)
    assert str(refused.value) == "a list cell holds one or more values, like [defective, wrong_item]"


@pytest.mark.parametrize("raw", [1.5, {"reason": "defective"}])
def test_a_float_or_a_mapping_is_not_a_cell(raw: Any):
    with pytest.raises(ValueError) as refused:
        Cell.parse(raw)
    assert str(refused.value) == f"{raw!r} {NOT_A_CELL}"


def test_each_cell_keeps_the_text_it_was_written_as_and_matches_what_it_says():
    written = [["defective", "wrong_item"], "*", "<= 500.00", "> 500.00", "500.00..500.00", "!food, books", True, 7]
    cells = [Cell.parse(raw) for raw in written]
    assert [c.text for c in cells] == ["[defective, wrong_item]", "*", "<= 500.00", "> 500.00", "500.00..500.00",
                                       "!food, books", "true", "7"]
    assert cells[1].any and cells[4].matches("500.00") and not cells[4].matches("500.01")  # a range of one amount
    assert cells[5].matches("toys") and not cells[5].matches("books") and not cells[5].matches("food")
    assert cells[6].matches(True) and not cells[6].matches(False)
    no = Cell.parse(False)
    assert no.text == "false" and no.matches(False) and not no.matches(True)
    # A fact the case does not hold matches only "*": not a list, not "any other value", not a band.
    assert cells[1].matches(None) and not any(c.matches(None) for c in cells[2:])
    with pytest.raises(ValueError, match="the range ends before it begins"):
        Cell.parse("500.01..500.00")
