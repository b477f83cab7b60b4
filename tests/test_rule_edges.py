"""Rules at their edges, as a policy author writes them: each guard judged on the boundary it draws.

A 48-hour window at exactly 48 hours and one minute past; ``within: 36h`` on a date-only fact; ``required``
in the event's data or in the case's facts; an amount of 0.00 with and without ``positive``; a range's
bounds; what a passing verdict says; a guard without an ``id``; guards are immutable. Each guard is
written as it is in a policy file (a mapping with ``guard:``) and judged on a case's facts at a fixed
instant in the policy's zone (Asia/Shanghai), as :func:`casework.decide.decide` judges it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from casework import Actor, load_policy
from casework import facts as F
from casework.domain import Verdict
from casework.policies.context import GuardContext, RoleBook
from casework.policies.guard_kinds import Guard, known_codes

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=SHANGHAI)
ROLES = RoleBook(inherits={"customer": (), "agent": (), "supervisor": ("agent",), "auditor": ()},
                 limits={"agent": Decimal("2000.00"), "supervisor": None})
GUARD: TypeAdapter[Any] = TypeAdapter(Guard)
TYPES = dict(load_policy().fact_types)  # the shipped policy's facts: amount is money, delivered a date ...


def rule(**written: Any) -> Any:
    """A guard as a policy file writes it (``guard: window``, ``within: 48h`` ...)."""
    return GUARD.validate_python(written)


def judge(guard: Any, facts: dict[str, Any] | None = None, data: dict[str, Any] | None = None, *,
          now: datetime = NOW, role: str = "agent", responded: bool = False) -> Verdict:
    """The guard's verdict on a case holding ``facts`` when an event brings ``data``."""
    data = data or {}
    ctx = GuardContext(kind="refund", event="approve", state="requested", facts=F.merge(facts or {}, data),
                       data=data, actor=Actor("alice", role), now=now, tz=SHANGHAI, roles=ROLES,
                       responded=responded, types=TYPES)
    assert guard.applies(ctx)
    verdict: Verdict = guard.evaluate(ctx)
    return verdict


def at(delta: timedelta) -> str:
    """An instant ``delta`` before NOW, as a fact holds it."""
    return (NOW - delta).isoformat()


# ---- window: the timed path (a window in hours, or a delivery with a time of day) -------------------------
WINDOW_48H = rule(guard="window", id="late_delivery_claim", since="delivered", within="48h")


def test_a_48_hour_window_holds_at_exactly_48_hours():
    v = judge(WINDOW_48H, {"delivered": at(timedelta(hours=48))})
    assert v.passed and v.code is None
    assert v.message == "delivered 2 days ago; the window is 2 days"
    assert v.details == {"since": "delivered", "elapsed_seconds": 48 * 3600, "window_seconds": 48 * 3600,
                         "window": "2 days"}


def test_a_48_hour_window_is_expired_one_minute_past():
    v = judge(WINDOW_48H, {"delivered": at(timedelta(hours=48, minutes=1))})
    assert not v.passed and v.code == "window_expired"
    assert v.message == "delivered 2 days 1 minute ago; the window is 2 days"
    assert v.details["elapsed_seconds"] == 48 * 3600 + 60


def test_the_elapsed_time_is_told_in_whole_minutes_rounded_down():
    v = judge(WINDOW_48H, {"delivered": at(timedelta(hours=5, minutes=30, seconds=59))})
    assert v.passed
    assert v.message == "delivered 5 hours 30 minutes ago; the window is 2 days"
    assert v.details["elapsed_seconds"] == 5 * 3600 + 30 * 60 + 59


def test_a_delivery_one_minute_ago_is_in_time_and_one_minute_ahead_is_a_future_date():
    assert judge(WINDOW_48H, {"delivered": at(timedelta(minutes=1))}).message.startswith("delivered 1 minute ago")
    ahead = judge(WINDOW_48H, {"delivered": at(timedelta(minutes=-1))})
    assert not ahead.passed and ahead.code == "date_in_future"
    assert "is later than now" in ahead.message and ahead.details["date"] == at(timedelta(minutes=-1))


def test_a_date_only_fact_with_a_window_of_36_hours_counts_from_midnight_in_the_policys_zone():
    window = rule(guard="window", since="delivered", within="36h")
    # Delivered on 21 November: midnight there is 34 hours before 10:00 on the 22nd.
    v = judge(window, {"delivered": "2026-11-21"})
    assert v.passed and v.details["elapsed_seconds"] == 34 * 3600 and v.details["window_seconds"] == 36 * 3600
    assert v.message == "delivered 1 day 10 hours ago; the window is 1 day 12 hours"
    # At 12:00 exactly 36 hours have passed; a minute later the window has closed.
    assert judge(window, {"delivered": "2026-11-21"}, now=NOW + timedelta(hours=2)).passed
    late = judge(window, {"delivered": "2026-11-21"}, now=NOW + timedelta(hours=2, minutes=1))
    assert not late.passed and late.code == "window_expired"
    # Delivered "today" (a date) is 10 hours ago, not a date in the future.
    assert judge(window, {"delivered": "2026-11-22"}).passed
    assert judge(window, {"delivered": "2026-11-23"}).code == "date_in_future"


def test_a_date_only_fact_with_a_window_in_whole_days_counts_calendar_days():
    window = rule(guard="window", since="delivered", within="2d")
    v = judge(window, {"delivered": "2026-11-20"}, now=NOW.replace(hour=23, minute=59))
    assert v.passed and v.message == "delivered 2 days ago; the window is 2 days"
    assert v.details == {"since": "delivered", "elapsed_days": 2, "window_days": 2, "window": "2 days"}
    assert judge(window, {"delivered": "2026-11-21"}).message == "delivered 1 day ago; the window is 2 days"
    late = judge(window, {"delivered": "2026-11-19"})
    assert not late.passed and late.details["elapsed_days"] == 3


def test_a_window_without_its_start_date_is_refused_as_a_missing_field():
    v = judge(WINDOW_48H, {})
    assert not v.passed and v.code == "field_missing"
    assert v.message == "the delivered date is not known; this rule needs it"
    assert v.details == {"field": "delivered"}


def test_the_category_window_comes_before_the_reason_window_and_the_label_is_told():
    window = rule(guard="window", since="delivered", within="7d", by_reason={"defective": "14d"},
                  by_category={"electronics": "15d"}, label="a return")
    both = {"delivered": "2026-11-10", "reason": "defective", "category": "electronics"}
    assert window.window_for(both) == timedelta(days=15)
    assert judge(window, both).message == "delivered 12 days ago; the window for a return is 15 days"
    assert window.window_for({**both, "category": "books"}) == timedelta(days=14)
    assert window.window_for({"reason": "no_reason", "category": "books"}) == timedelta(days=7)


def test_a_period_window_counts_only_within_its_dates_and_is_named():
    window = rule(guard="window", since="delivered", within="7d",
                  by_category={"electronics": {"within": "15d", "from": "2026-11-11", "until": "2026-11-30"}})
    v = judge(window, {"delivered": "2026-11-10", "category": "electronics"})
    assert v.passed and v.details["period"] == "from 2026-11-11 until 2026-11-30"
    assert "(from 2026-11-11 until 2026-11-30)" in v.message
    after = judge(window, {"delivered": "2026-11-25", "category": "electronics"}, now=NOW.replace(month=12))
    assert not after.passed and after.details["window"] == "7 days" and "period" not in after.details
    # Asked for a decision (a context), the period counts; asked without one, it never does.
    during = GuardContext(kind="return", event="approve", state="requested", facts={}, data={},
                          actor=Actor("alice", "agent"), now=NOW, tz=SHANGHAI, roles=ROLES)
    assert window.window_for({"category": "electronics"}, during) == timedelta(days=15)
    assert window.window_for({"category": "electronics"}) == timedelta(days=7)


def test_a_guard_built_in_python_takes_durations_as_timedeltas():
    window = rule(guard="window", within=timedelta(hours=48),
                  by_category={"electronics": {"within": timedelta(days=15), "from": "2026-11-11"}})
    assert window.within == timedelta(hours=48)
    assert window.by_category["electronics"].within == timedelta(days=15)


# ---- required: in the event's data, or in the case's facts ------------------------------------------------
def test_required_from_the_event_needs_the_event_to_bring_the_field_even_if_the_case_has_it():
    note = rule(guard="required", fields=["note"])  # from: event is the default
    refused = judge(note, {"note": "written when the case was opened"})
    assert not refused.passed and refused.code == "field_missing"
    assert refused.message == "missing note; this event needs note"
    assert refused.details == {"missing": ["note"], "required": ["note"]}
    given = judge(note, {}, {"note": "checked the parcel"})
    assert given.passed and given.message == "given: note" and given.details["missing"] == []


def test_required_from_the_case_is_met_by_the_cases_facts():
    order = rule(guard="required", fields=["order_id", "note"], **{"from": "case"})
    assert judge(order, {"order_id": "SO-1", "note": "x"}).passed
    v = judge(order, {"order_id": "SO-1", "note": ""})
    assert not v.passed and v.details["missing"] == ["note"]
    assert v.message == "missing note; this event needs order_id, note"
    assert order.judges() == {"order_id", "note"} and rule(guard="required", fields=["note"]).judges() == set()


@pytest.mark.parametrize("empty", [None, "", []])
def test_required_counts_an_empty_value_as_missing(empty: Any):
    assert not judge(rule(guard="required", fields=["note"]), {}, {"note": empty}).passed


# ---- amounts -----------------------------------------------------------------------------------------------
def test_an_amount_of_zero_is_within_what_was_paid_unless_the_rule_says_positive():
    plain = rule(guard="amount_within")
    v = judge(plain, {"amount": "0.00", "paid": "59.00"})
    assert v.passed and v.message == "amount 0.00 within paid 59.00"
    assert v.details == {"field": "amount", "observed": "0.00", "limit_field": "paid", "limit": "59.00"}
    positive = rule(guard="amount_within", positive=True)
    zero = judge(positive, {"amount": "0.00", "paid": "59.00"})
    assert not zero.passed and zero.code == "amount_exceeds_paid"
    assert zero.message == "amount is 0.00; it must be above 0.00"
    assert judge(positive, {"amount": "0.01", "paid": "59.00"}).passed
    assert judge(positive, {"amount": "0.50", "paid": "0.50"}).passed


def test_an_amount_equal_to_the_limit_is_within_and_one_cent_more_exceeds():
    guard = rule(guard="amount_within", amount="difference", limit="paid")
    assert judge(guard, {"difference": "59.00", "paid": "59.00"}).message == "difference 59.00 within paid 59.00"
    over = judge(guard, {"difference": "59.01", "paid": "59.00"})
    assert not over.passed and over.message == "difference 59.01 exceeds paid 59.00"


def test_an_amount_rule_names_the_missing_amount_or_limit():
    guard = rule(guard="amount_within")
    assert judge(guard, {"paid": "1.00"}).details == {"field": "amount"}
    no_limit = judge(guard, {"amount": "1.00"})
    assert no_limit.code == "field_missing" and no_limit.message == "the paid is not known; this rule needs it"


def test_the_approval_limit_is_inclusive_and_a_role_without_authority_is_refused():
    guard = rule(guard="approval_limit")
    at_limit = judge(guard, {"amount": "2000.00"})
    assert at_limit.passed and at_limit.message == "amount 2000.00 is within the agent approval limit of 2000.00"
    assert at_limit.details == {"role": "agent", "observed": "2000.00", "limit": "2000.00"}
    over = judge(guard, {"amount": "2000.01"})
    assert not over.passed and over.code == "approval_limit_exceeded"
    assert over.message == "amount 2000.01 is over the agent approval limit of 2000.00"
    unlimited = judge(guard, {"amount": "90000.00"}, role="supervisor")
    assert unlimited.passed and unlimited.message == "role supervisor has no approval limit"
    none = judge(guard, {"amount": "1.00"}, role="auditor")
    assert not none.passed and none.message == "role auditor has no approval authority; amount is 1.00"
    assert judge(guard, {}).code == "field_missing"


# ---- range --------------------------------------------------------------------------------------------------
SCORE = rule(guard="range", field="score", min=1, max=5)


@pytest.mark.parametrize(("score", "passed"), [(0, False), (1, True), (5, True), (6, False)])
def test_a_range_includes_both_bounds(score: int, passed: bool):
    v = judge(SCORE, {}, {"score": score})
    assert v.passed is passed and v.code == (None if passed else "value_out_of_range")
    assert v.message == f"score is {score}; accepted: 1 to 5"
    assert v.details == {"field": "score", "observed": score, "min": 1, "max": 5}


def test_a_range_with_only_a_max_or_only_a_min_is_open_on_the_other_side():
    at_most = rule(guard="range", field="score", max=5)
    assert judge(at_most, {"score": -3}).passed and not judge(at_most, {"score": 6}).passed
    assert judge(at_most, {"score": 5}).message == "score is 5; accepted: … to 5"
    at_least = rule(guard="range", field="score", min=1)
    assert judge(at_least, {"score": 1000}).passed and not judge(at_least, {"score": 0}).passed
    assert judge(at_least, {"score": 1}).message == "score is 1; accepted: 1 to …"


def test_a_range_reads_the_events_value_before_the_cases_and_needs_one():
    assert not judge(SCORE, {"score": 3}, {"score": 9}).passed
    assert judge(SCORE, {"score": 3}).passed
    missing = judge(SCORE, {})
    assert missing.code == "field_missing" and missing.message == "the score is not known; this rule needs it"


# ---- what a passing verdict says ------------------------------------------------------------------------------
def test_passing_verdicts_say_why_they_pass():
    cat = judge(rule(guard="category_excluded", categories=["perishable_food", "custom_made"]), {"category": "books"})
    assert cat.passed and cat.message == "category books is not excluded" and cat.code is None
    assert cat.details == {"category": "books", "excluded": ["perishable_food", "custom_made"]}
    assert judge(rule(guard="category_excluded", categories=["x"]), {}).message == "category (none) is not excluded"
    cond = judge(rule(guard="condition", allowed=["unopened", "unused"]), {"condition": "unused"})
    assert cond.passed and cond.message == "item condition is unused; accepted: unopened, unused"
    ev = judge(rule(guard="evidence", all_of=["order_record"], any_of=["photo", "video"]),
               {"evidence": [{"type": "order_record", "ref": None}, {"type": "video", "ref": "v.mp4"}]})
    assert ev.passed and ev.message == "evidence present: order_record and one of photo/video"
    assert ev.details == {"missing": [], "present": ["order_record", "video"], "all_of": ["order_record"],
                          "any_of": ["photo", "video"]}
    flags = judge(rule(guard="fraud_flag", flags=["fraud_confirmed"]), {"flags": ["vip"]})
    assert flags.passed and flags.message == "customer has none of the flags fraud_confirmed"
    assert flags.details == {"flags": [], "blocking": ["fraud_confirmed"]}
    responded = judge(rule(guard="responded"), {}, responded=True)
    assert responded.passed and responded.message == "the case has had a first response"


def test_failing_verdicts_list_what_is_missing_or_present():
    ev = judge(rule(guard="evidence", all_of=["order_record"], any_of=["photo", "video"]), {"evidence": []})
    assert ev.message == "missing evidence: order_record, photo or video; required: order_record and one of photo/video"
    assert ev.details["missing"] == ["order_record", "photo or video"]
    only_any = judge(rule(guard="evidence", any_of=["photo"]), {"evidence": [{"type": "photo", "ref": None}]})
    assert only_any.message == "evidence present: one of photo"
    flagged = judge(rule(guard="fraud_flag", flags=["fraud_confirmed", "chargeback"]),
                    {"flags": ["chargeback", "vip"]})
    assert not flagged.passed and flagged.code == "fraud_flagged"
    assert flagged.message == "customer is flagged chargeback" and flagged.details["flags"] == ["chargeback"]
    cond = judge(rule(guard="condition", allowed=["unused"]), {})
    assert not cond.passed and cond.code == "condition_unacceptable"
    assert cond.message == "the item's condition is not known; accepted: unused"
    assert not judge(rule(guard="responded"), {}).passed


def test_a_counter_below_its_threshold_passes_and_at_it_needs_the_named_role():
    counter = rule(guard="fraud_counter", at_least=5, unless_role="supervisor")
    below = judge(counter, {"refunds_last_30_days": 4})
    assert below.passed and below.message == "refunds_last_30_days is 4, below 5"
    at = judge(counter, {"refunds_last_30_days": 5})
    assert not at.passed and at.code == "fraud_flagged"
    assert at.message == "refunds_last_30_days is 5, at least 5; only a supervisor may proceed"
    assert at.details == {"counter": "refunds_last_30_days", "observed": 5, "threshold": 5,
                          "required_role": "supervisor"}
    exempt = judge(counter, {"refunds_last_30_days": 7}, role="supervisor")
    assert exempt.passed and exempt.message == "refunds_last_30_days is 7 (at least 5); only a supervisor may proceed"
    assert exempt.details["observed"] == 7 and below.details["observed"] == 4
    assert judge(counter, {}).passed
    strict = judge(rule(guard="fraud_counter", at_least=1), {"refunds_last_30_days": 1}, role="supervisor")
    assert not strict.passed and strict.message == "refunds_last_30_days is 1, at least 1"


# ---- naming, immutability ----------------------------------------------------------------------------------------
def test_a_guard_without_an_id_is_named_by_its_kind():
    assert judge(rule(guard="range", field="score", min=1), {"score": 2}).guard == "range"
    assert judge(rule(guard="range", id="csat_score", field="score", min=1), {"score": 2}).guard == "csat_score"


def test_guards_are_immutable_once_loaded():
    with pytest.raises(ValidationError):
        WINDOW_48H.within = timedelta(days=30)
    with pytest.raises(ValidationError):
        SCORE.max = 10
    assert WINDOW_48H.within == timedelta(hours=48) and SCORE.max == 5


def test_the_codes_the_engine_knows_include_every_builtin_guards_code():
    codes = known_codes()
    assert codes == sorted(codes)
    for code in ("window_expired", "category_excluded", "value_out_of_range", "field_missing", "date_in_future",
                 "fact_not_permitted", "fact_judged", "not_available", "role_not_permitted", "ok"):
        assert (code in codes) is (code != "ok"), code


# ---- reopening a closed case ------------------------------------------------------------------------------------
def closed_refund(policy: Any, closed_at: datetime) -> Any:
    from dataclasses import replace

    from casework.transition import opened

    case = opened("RF-20261122-000001", "refund", {"order_id": "SO-1", "amount": "5.00", "paid": "5.00",
                                                   "customer": "c-1"}, policy, closed_at - timedelta(days=1))
    return replace(case, state="closed", closed=True, state_since=closed_at)


def test_a_closed_case_may_be_reopened_until_exactly_14_days_after_closing():
    from casework.decide import decide

    policy = load_policy()
    case = closed_refund(policy, NOW)
    at_limit = decide(policy, case, "reopen", Actor("c-1", "customer"), {}, NOW + timedelta(days=14))
    v = at_limit.verdicts[-1]
    assert at_limit.allowed and (v.guard, v.passed, v.code) == ("reopen_within", True, None)
    assert v.message == "closed 14 days ago; it may be reopened until 2026-12-06 10:00 (14 days after closing)"
    assert v.details == {"since": "closed", "elapsed_days": 14, "window": "14 days",
                         "until": "2026-12-06T02:00:00+00:00"}
    late = decide(policy, case, "reopen", Actor("c-1", "customer"), {}, NOW + timedelta(days=14, minutes=1))
    assert not late.allowed and late.codes == ["window_expired"] and late.verdicts[-1].passed is False
    early = decide(policy, case, "reopen", Actor("c-1", "customer"), {}, NOW + timedelta(days=3, hours=5))
    assert early.verdicts[-1].message.startswith("closed 3 days ago; it may be reopened until 2026-12-06 10:00")


def test_a_kind_without_reopen_within_may_be_reopened_any_time():
    from casework import parse_policy
    from casework.decide import decide

    shipped = load_policy()
    limit = "    reopen_within: 2w                   # a closed case may be reopened within 14 days of closing\n"
    text = shipped.source.replace(limit, "", 1)
    assert text != shipped.source
    policy = parse_policy(text, "no_limit.yaml")
    case = closed_refund(policy, NOW)
    decision = decide(policy, case, "reopen", Actor("c-1", "customer"), {}, NOW + timedelta(days=400))
    assert decision.allowed
    assert [(v.guard, v.message) for v in decision.verdicts][-1] == ("reopen_within",
                                                                     "no limit on reopening after closing")
    assert decision.verdicts[-1].details == {}  # no window, no deadline: nothing to report


def test_a_counter_the_case_does_not_hold_or_holds_at_zero_counts_zero():
    once = rule(guard="fraud_counter", at_least=1)
    absent = judge(once, {})
    assert absent.passed and absent.message == "refunds_last_30_days is 0, below 1"
    assert absent.details == {"counter": "refunds_last_30_days", "observed": 0, "threshold": 1, "required_role": None}
    assert judge(once, {"refunds_last_30_days": 0}).passed
    refused = judge(once, {"refunds_last_30_days": 1})
    assert refused.passed is False and refused.details["observed"] == 1


def test_refusals_are_recorded_as_passed_false_with_what_they_judged():
    no_reply = judge(rule(guard="responded"), {})
    assert no_reply.passed is False and no_reply.code == "response_pending"
    assert no_reply.message == "the case has not had a first response yet; wait for it or its deadline"
    none = judge(rule(guard="approval_limit"), {"amount": "1.00"}, role="auditor")
    assert none.passed is False and none.details == {"role": "auditor", "observed": "1.00", "limit": None}
    missing = judge(rule(guard="approval_limit", amount="adjustment"), {"amount": "1.00"})
    assert missing.passed is False and missing.details == {"field": "adjustment"}
    assert missing.message == "the adjustment is not known; this rule needs it"
    assert judge(SCORE, {}).details == {"field": "score"}
    several = judge(rule(guard="required", fields=["note", "resolution"]), {}, {})
    assert several.message == "missing note, resolution; this event needs note, resolution"
    assert judge(rule(guard="required", fields=["note", "resolution"]), {}, {"note": "a", "resolution": "b"}
                 ).message == "given: note, resolution"


def test_every_verdict_says_what_it_judged_with_every_listed_value():
    unlimited = judge(rule(guard="approval_limit"), {"amount": "90000.00"}, role="supervisor")
    assert unlimited.details == {"role": "supervisor", "observed": "90000.00", "limit": None}
    no_amount = judge(rule(guard="amount_within"), {"paid": "1.00"})
    assert no_amount.passed is False and no_amount.message == "the amount is not known; this rule needs it"
    excluded = judge(rule(guard="category_excluded", categories=["custom_made", "perishable_food"]),
                     {"category": "custom_made"})
    assert excluded.passed is False and excluded.code == "category_excluded"
    assert excluded.message == "category custom_made is excluded; excluded categories: custom_made, perishable_food"
    unknown = judge(rule(guard="condition", allowed=["unopened", "unused"]), {})
    assert unknown.passed is False and unknown.details == {"condition": None, "accepted": ["unopened", "unused"]}
    assert unknown.message == "the item's condition is not known; accepted: unopened, unused"
    assert judge(WINDOW_48H, {}).passed is False


def test_a_delivery_at_this_very_instant_is_in_time_not_in_the_future():
    v = judge(WINDOW_48H, {"delivered": NOW.isoformat()})
    assert v.passed is True and v.message == "delivered 0 minutes ago; the window is 2 days"
    ahead = judge(WINDOW_48H, {"delivered": (NOW + timedelta(seconds=1)).isoformat()})
    assert ahead.passed is False and ahead.code == "date_in_future"


def test_a_delivery_dated_today_in_the_policys_zone_is_not_in_the_future_while_utc_is_still_yesterday():
    early = NOW.replace(hour=7)  # 23:00 UTC on the 21st
    v = judge(rule(guard="window", since="delivered", within="7d"), {"delivered": "2026-11-22"}, now=early)
    assert v.passed is True and v.details["elapsed_days"] == 0
    tomorrow = judge(rule(guard="window", since="delivered", within="7d"), {"delivered": "2026-11-23"}, now=early)
    assert tomorrow.passed is False and tomorrow.code == "date_in_future"


def test_an_amount_rule_names_the_missing_limit_and_refuses_zero_as_passed_false():
    no_limit = judge(rule(guard="amount_within"), {"amount": "1.00"})
    assert no_limit.details == {"field": "paid"}
    zero = judge(rule(guard="amount_within", positive=True), {"amount": "0.00", "paid": "5.00"})
    assert zero.passed is False


def test_evidence_and_flag_messages_name_every_type_and_flag_in_the_policys_order():
    evidence = rule(guard="evidence", id="ev", all_of=["photo", "order_record"], any_of=["video", "receipt"])
    short = judge(evidence, {"evidence": [{"type": "photo"}]})
    assert short.message == ("missing evidence: order_record, video or receipt; "
                             "required: photo, order_record and one of video/receipt")
    whole = judge(evidence, {"evidence": [{"type": t} for t in ("receipt", "order_record", "photo")]})
    assert whole.passed and whole.message == "evidence present: photo, order_record and one of video/receipt"
    flags = rule(guard="fraud_flag", id="ff", flags=["chargeback", "abuse"])
    assert judge(flags, {"flags": ["abuse", "chargeback"]}).message == "customer is flagged chargeback, abuse"
    assert judge(flags, {"flags": []}).message == "customer has none of the flags chargeback, abuse"
