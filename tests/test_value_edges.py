"""What people type, at its edges: money, dates, durations, time zones, evidence, and the facts of a case as
they are normalised on the way in and merged by an event. Each bad value is refused with InvalidInput naming
the field and the value, in a message saying what is accepted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from casework import InvalidInput
from casework import facts as F
from casework.values import (
    did_you_mean,
    format_duration,
    money_str,
    normalize_date_text,
    one_of,
    parse_duration,
    parse_evidence,
    parse_instant,
    parse_money,
    parse_zone,
    suggest,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def refused(call: Any, *args: Any, **kw: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        call(*args, **kw)
    return info.value


# ---- money ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "amount"), [("59.00", "59.00"), ("59", "59"), ("59.5", "59.5"), (" 0.01 ", "0.01"),
                                               (0, "0"), (120, "120"), (Decimal("5.10"), "5.10")])
def test_money_is_a_decimal_with_at_most_two_places(given: Any, amount: str):
    assert parse_money(given) == Decimal(amount) and str(parse_money(given)) == amount


@pytest.mark.parametrize(("given", "why"), [
    ("-1.00", "amounts cannot be negative"), ("1.234", "at most 2 decimal places"),
    ("1,00", "expected a decimal like 59.00"), ("", "expected a decimal like 59.00"),
    ("1e3", "expected a decimal like 59.00"), (Decimal("-2"), "amounts cannot be negative"),
])
def test_money_that_is_not_an_amount_says_why(given: Any, why: str):
    e = refused(parse_money, given, "paid")
    assert str(e) == f"paid {given!r} is not a valid amount: {why}"
    assert (e.field, e.value) == ("paid", given)


def test_money_never_passes_through_a_float_or_a_boolean():
    e = refused(parse_money, 59.0)
    assert str(e) == 'amount 59.0 is not a decimal string; write money as a string like "59.00"'
    assert (e.field, e.value) == ("amount", 59.0)
    assert "True is not a decimal string" in str(refused(parse_money, True))
    other = refused(parse_money, ["59.00"], "paid")
    assert str(other) == "paid ['59.00'] is not an amount; expected a decimal like 59.00" and other.field == "paid"


def test_money_is_shown_with_two_places():
    assert money_str(Decimal("5")) == "5.00" and money_str(Decimal("5.1")) == "5.10"
    assert money_str(Decimal("0")) == "0.00" and money_str(Decimal("1999.99")) == "1999.99"


# ---- dates and instants ----------------------------------------------------------------------------------------------
def test_a_date_is_midnight_in_the_zone_given_and_a_time_without_offset_is_read_there():
    assert parse_instant("2026-11-02", "delivered", SHANGHAI) == datetime(2026, 11, 2, tzinfo=SHANGHAI)
    assert parse_instant(" 2026-11-02 ") == datetime(2026, 11, 2, tzinfo=UTC)
    assert parse_instant("2026-11-02T14:30:00", "d", SHANGHAI) == datetime(2026, 11, 2, 14, 30, tzinfo=SHANGHAI)
    offset = parse_instant("2026-11-02T14:30:00+00:00", "d", SHANGHAI)
    assert offset == datetime(2026, 11, 2, 14, 30, tzinfo=UTC) and offset.utcoffset() == timedelta(0)
    assert parse_instant(date(2026, 11, 2), "d", SHANGHAI) == datetime(2026, 11, 2, tzinfo=SHANGHAI)
    naive = datetime(2026, 11, 2, 9)
    assert parse_instant(naive, "d", SHANGHAI) == datetime(2026, 11, 2, 9, tzinfo=SHANGHAI)
    aware = datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert parse_instant(aware, "d", SHANGHAI) is aware


@pytest.mark.parametrize("given", ["2026-13-01", "yesterday", "2026-11-02T25:00", 20261102, None])
def test_a_date_that_is_not_one_is_refused_naming_the_field(given: Any):
    e = refused(parse_instant, given, "delivered")
    assert str(e) == (f"delivered {given!r} is not a date; expected an ISO date (2026-11-02) or datetime "
                      "(2026-11-02T14:30:00+08:00)")
    assert (e.field, e.value) == ("delivered", given)


def test_a_date_fact_keeps_its_form_and_a_time_gets_its_zone():
    assert normalize_date_text("2026-11-02", "delivered", SHANGHAI) == "2026-11-02"
    assert normalize_date_text(" 2026-11-02 ", "delivered", SHANGHAI) == "2026-11-02"
    assert normalize_date_text(date(2026, 11, 2), "delivered") == "2026-11-02"
    assert normalize_date_text("2026-11-02T09:00", "delivered", SHANGHAI) == "2026-11-02T09:00:00+08:00"
    assert normalize_date_text(datetime(2026, 11, 2, 9), "delivered", SHANGHAI) == "2026-11-02T09:00:00+08:00"
    assert refused(normalize_date_text, "2026-02-30", "delivered").field == "delivered"


def test_a_time_zone_is_an_iana_name():
    assert parse_zone(" Asia/Shanghai ") == SHANGHAI and parse_zone("UTC") == ZoneInfo("UTC")
    for bad in ("Mars/Olympus", "", "   ", None, "../etc"):
        e = refused(parse_zone, bad, "timezone")
        assert str(e) == f"unknown time zone {bad!r}; use an IANA name like Asia/Shanghai or UTC"
        assert (e.field, e.value) == ("timezone", bad)


# ---- durations -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "seconds"), [("30m", 1800), ("30 min", 1800), (" 24h ", 86400), ("7d", 604800),
                                                ("2w", 1209600), ("0m", 0), ("36600d", 36600 * 86400)])
def test_a_duration_is_a_whole_number_and_a_unit(given: str, seconds: int):
    assert parse_duration(given) == timedelta(seconds=seconds)


@pytest.mark.parametrize("given", ["7", "7 days", "1.5h", "-1d", "", 7, None])
def test_a_duration_without_its_unit_is_refused(given: Any):
    e = refused(parse_duration, given, "within")
    assert str(e) == f"within {given!r} is not a duration; write a whole number and a unit, like 30m, 24h, 7d, 2w"
    assert (e.field, e.value) == ("within", given)


def test_a_duration_longer_than_a_century_is_a_typo():
    e = refused(parse_duration, "36601d", "within")
    assert str(e) == "within '36601d' is too long; at most 36600 days" and (e.field, e.value) == ("within", "36601d")
    assert refused(parse_duration, "5229w").field == "duration"


def test_a_century_is_the_longest_duration_to_the_minute():
    century = 36_600 * 24 * 60
    assert parse_duration(f"{century}m") == timedelta(days=36_600)
    assert "too long" in str(refused(parse_duration, f"{century + 1}m"))


def test_a_decimal_in_exponent_form_is_read_as_its_plain_amount():
    assert parse_money(Decimal("1E+2")) == Decimal("100") and money_str(parse_money(Decimal("1E+2"))) == "100.00"
    assert parse_money(Decimal("5.1E-1")) == Decimal("0.51")


def test_a_bad_date_time_fact_is_refused_naming_the_fact():
    e = refused(normalize_date_text, "2026-11-02T25:00", "delivered", SHANGHAI)
    assert (e.field, e.value) == ("delivered", "2026-11-02T25:00") and str(e).startswith("delivered '2026-11-02T25")


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(0), "0 minutes"), (timedelta(seconds=59), "0 minutes"), (timedelta(minutes=1), "1 minute"),
    (timedelta(hours=1), "1 hour"), (timedelta(days=1), "1 day"), (timedelta(days=7), "7 days"),
    (timedelta(days=7, hours=2), "7 days 2 hours"), (timedelta(days=1, minutes=5), "1 day 5 minutes"),
    (timedelta(days=2, hours=3, minutes=4), "2 days 3 hours"), (timedelta(hours=3, minutes=5), "3 hours 5 minutes"),
    (timedelta(hours=-5), "0 minutes"),
])
def test_a_duration_is_told_in_its_two_largest_units(delta: timedelta, text: str):
    assert format_duration(delta) == text


# ---- evidence --------------------------------------------------------------------------------------------------------
def test_evidence_is_a_type_with_an_optional_reference():
    assert parse_evidence("photo") == {"type": "photo", "ref": None}
    assert parse_evidence(" photo = IMG_0042.jpg ") == {"type": "photo", "ref": "IMG_0042.jpg"}
    assert parse_evidence("link=https://x/y?a=b") == {"type": "link", "ref": "https://x/y?a=b"}
    for bad in ("", "=IMG.jpg", "photo=", "photo=  ", "  "):
        e = refused(parse_evidence, bad)
        assert str(e) == f"evidence {bad!r} is malformed; expected TYPE or TYPE=REFERENCE, like photo=IMG_0042.jpg"
        assert (e.field, e.value) == ("evidence", bad)


def test_evidence_as_a_case_holds_it():
    assert F.normalize_evidence("photo=a.jpg") == [{"type": "photo", "ref": "a.jpg"}]
    assert F.normalize_evidence(["video", {"type": "photo", "ref": 42}, {"type": "receipt"}]) == [
        {"type": "video", "ref": None}, {"type": "photo", "ref": "42"}, {"type": "receipt", "ref": None}]
    assert F.normalize_evidence(("photo",)) == [{"type": "photo", "ref": None}]
    for bad in ([{"type": ""}], [{"ref": "x"}], [3], [{"type": 5}]):
        e = refused(F.normalize_evidence, bad)
        assert str(e) == f"evidence {bad[0]!r} is malformed; expected TYPE or TYPE=REFERENCE"
        assert e.field == "evidence" and e.value == bad[0]


# ---- choices ---------------------------------------------------------------------------------------------------------
def test_an_unknown_word_is_refused_with_every_choice_and_a_close_one_suggested():
    assert one_of("refund", ["refund", "return"], "kind") == "refund"
    e = refused(one_of, "refnd", ["refund", "return"], "kind")
    assert str(e) == "unknown kind 'refnd' (did you mean 'refund'?); expected one of: refund, return"
    assert (e.field, e.value) == ("kind", "refnd")
    far = refused(one_of, "zzz", ("refund", "return"), "kind", "case kind")
    assert str(far) == "unknown kind 'zzz'; expected one of: refund, return" and far.field == "case kind"
    assert refused(one_of, 5, ["5"], "kind").value == 5
    assert did_you_mean("aprove", ["approve", "review"]) == " (did you mean 'approve'?)"
    assert did_you_mean("xyz", ["approve"]) == ""
    assert suggest("reveiw", ["review", "reviews", "approve", "revise"]) == ["review", "reviews", "revise"]
    assert suggest("reveiw", ["review", "reviews", "revise"], n=1) == ["review"]


# ---- facts on the way in --------------------------------------------------------------------------------------------
def test_facts_are_normalised_by_what_their_name_says_they_are():
    out = F.normalize({"amount": "59", "paid": "0059.5", "delivered": "2026-11-02", "refunds_last_30_days": " 4 ",
                       "flags": "vip, fraud_confirmed,vip,", "currency": " cny ", "order_id": " SO-1 ",
                       "evidence": "photo=a.jpg", "custom": "kept", "count": 3, "ok": True, "big": Decimal("1.5"),
                       "none": None}, SHANGHAI)
    assert out == {"amount": "59.00", "paid": "59.50", "delivered": "2026-11-02", "refunds_last_30_days": 4,
                   "flags": ["fraud_confirmed", "vip"], "currency": "CNY", "order_id": "SO-1",
                   "evidence": [{"type": "photo", "ref": "a.jpg"}], "custom": "kept", "count": 3, "ok": True,
                   "big": "1.5"}
    assert F.normalize({"amount": "59.00"})["amount"] == "59.00"
    assert F.normalize({"flags": ["b", " a ", ""]}) == {"flags": ["a", "b"]}
    assert F.normalize({"delivered": "2026-11-02T09:00"}, SHANGHAI) == {"delivered": "2026-11-02T09:00:00+08:00"}


@pytest.mark.parametrize(("facts", "message", "field"), [
    ({"amount": 59.0}, 'amount 59.0 is not a decimal string; write money as a string like "59.00"', "amount"),
    ({"refunds_last_30_days": "-1"}, "refunds_last_30_days '-1' is not a non-negative whole number",
     "refunds_last_30_days"),
    ({"score": "３"}, "score '３' is not a non-negative whole number", "score"),
    ({"score": True}, "score True is not a non-negative whole number", "score"),
    ({"score": 2.0}, "score 2.0 is not a non-negative whole number", "score"),
    ({"refunds_last_30_days": Decimal("5")}, "refunds_last_30_days Decimal('5') is not a non-negative whole number",
     "refunds_last_30_days"),
    ({"flags": 5}, "flags 5 is not a list", "flags"),
    ({"delivered": "soon"}, "delivered 'soon' is not a date; expected an ISO date (2026-11-02) or datetime "
     "(2026-11-02T14:30:00+08:00)", "delivered"),
    ({"currency": "CN"}, "currency 'CN' is not a 3-letter ISO code like CNY or USD", "currency"),
    ({"currency": "C1Y"}, "currency 'C1Y' is not a 3-letter ISO code like CNY or USD", "currency"),
    ({"reason": "  "}, "reason is empty", "reason"),
    ({"reason": True}, "reason True is not text", "reason"),
    ({"note": ["a"]}, "note ['a'] is not text", "note"),
    ({"custom": 1.5}, "fact custom 1.5: floats are not accepted; pass a string", "custom"),
    ({"custom": [1]}, "fact custom [1] is not a text, number or boolean", "custom"),
    ({"note": "a\x00b"}, "note contains a NUL character; remove it", "note"),
    ({"order_id": "x" * 201}, "order_id is 201 characters long; at most 200 are accepted", "order_id"),
    ({"custom": "x" * 10_001}, "custom is 10001 characters long; at most 10000 are accepted", "custom"),
])
def test_a_bad_fact_is_refused_naming_it(facts: dict[str, Any], message: str, field: str):
    e = refused(F.normalize, facts)
    assert str(e) == message and e.field == field


@pytest.mark.parametrize("facts", [{"refunds_last_30_days": "-1"}, {"score": True}, {"score": Decimal("5")},
                                   {"flags": 5}, {"flags": {"vip": True}}, {"reason": True}, {"reason": "  "},
                                   {"custom": [1]}, {"custom": {"a": 1}}, {"note": "a\x00b"}],
                         ids=lambda facts: next(iter(facts)))
def test_a_refused_fact_carries_the_value_given(facts: dict[str, Any]):
    """What a library caller shows or logs next to the field: the value as it was given, not a reading of it."""
    [(name, given)] = facts.items()
    e = refused(F.normalize, facts)
    assert (e.field, e.value) == (name, given)


def test_text_at_its_limit_is_kept_and_a_number_given_as_text_is_text():
    assert F.normalize({"order_id": "x" * 200})["order_id"] == "x" * 200
    assert F.normalize({"note": "y" * 10_000})["note"] == "y" * 10_000
    assert F.normalize({"order_id": 1001}) == {"order_id": "1001"}
    assert F.check_text("x" * 41, "note", 40 + 1) == "x" * 41
    long = refused(F.check_text, "z" * 50, "note", 40)
    assert long.value == "z" * 40 + "…"


@pytest.mark.parametrize("name", ["", "_", "__", "two words", "dash-ed", "é!", 5])
def test_a_fact_name_is_letters_digits_and_underscores(name: Any):
    e = refused(F.normalize, {name: "x"})
    assert str(e) == f"fact name {name!r} is not valid; use letters, digits and underscores"
    assert (e.field, e.value) == ("fact", name)


def test_a_fact_the_policy_declares_is_normalised_as_its_type_says():
    types = {"deposit": "money", "shipped_on": "date", "boxes": "int", "gift": "bool", "size": "enum",
             "tags": "list", "proof": "evidence", "at": "datetime", "label": "text"}
    out = F.normalize({"deposit": "5", "shipped_on": "2026-11-02", "boxes": "3", "gift": " TRUE ", "size": " L ",
                       "tags": "a,b", "proof": "photo", "at": "2026-11-02T09:00", "label": "x", "other": "y"},
                      SHANGHAI, types)
    assert out == {"deposit": "5.00", "shipped_on": "2026-11-02", "boxes": 3, "gift": True, "size": "L",
                   "tags": ["a", "b"], "proof": [{"type": "photo", "ref": None}], "at": "2026-11-02T09:00:00+08:00",
                   "label": "x", "other": "y"}
    assert F.normalize({"gift": "false"}, UTC, types) == {"gift": False}
    assert F.normalize({"gift": False}, UTC, types) == {"gift": False}
    e = refused(F.normalize, {"gift": "yes"}, UTC, types)
    assert str(e) == "gift 'yes' is not true or false" and (e.field, e.value) == ("gift", "yes")


# ---- facts after an event --------------------------------------------------------------------------------------------
def test_an_events_data_overrides_facts_except_evidence_and_flags_which_accumulate():
    facts = {"amount": "10.00", "evidence": [{"type": "photo", "ref": "a"}], "flags": ["vip"]}
    data = {"amount": "8.00", "evidence": [{"type": "photo", "ref": "a"}, {"type": "photo", "ref": "b"},
                                           {"type": "photo", "ref": "b"},  # the same file given twice: kept once
                                           {"type": "video", "ref": None}, {"type": "video", "ref": None}],
            "flags": ["chargeback"]}  # a flag added; vip, which the case holds, stays
    merged = F.merge(facts, data)
    assert merged == {"amount": "8.00", "flags": ["chargeback", "vip"], "evidence": [
        {"type": "photo", "ref": "a"}, {"type": "photo", "ref": "b"}, {"type": "video", "ref": None}]}
    assert facts["evidence"] == [{"type": "photo", "ref": "a"}]  # the case's own facts are not changed
    assert F.merge({}, {"evidence": [{"type": "x", "ref": None}], "breaches": ["b"]}) == {
        "evidence": [{"type": "x", "ref": None}], "breaches": ["b"]}
    assert F.evidence_types(merged) == {"photo", "video"} and F.evidence_types({}) == set()


def test_money_and_instants_are_read_back_typed():
    assert F.money({"amount": "59.00"}, "amount") == Decimal("59.00") and F.money({}, "amount") is None
    assert F.instant({"delivered": "2026-11-02"}, "delivered", SHANGHAI) == datetime(2026, 11, 2, tzinfo=SHANGHAI)
    assert F.instant({}, "delivered", SHANGHAI) is None
    e = refused(F.instant, {"delivered": "last week"}, "delivered", SHANGHAI)  # (a fact kept as text, read as a date)
    assert (e.field, e.value) == ("delivered", "last week") and str(e).startswith("delivered 'last week' is not a date")


def test_a_kind_that_is_not_text_is_refused_as_unknown_not_crashed_on(engine):
    from casework import Actor

    with pytest.raises(InvalidInput, match=r"^unknown case kind 5; expected one of: "):
        engine.open(5, {"order_id": "SO-1"}, actor=Actor("c", "customer"))


# ---- deadlines and the service calendar ---------------------------------------------------------------------
def test_a_deadline_is_told_as_it_is_written():
    from casework.policies.calendar import Deadline

    assert str(Deadline.parse("24h")) == "24h" and str(Deadline.parse("7d")) == "168h"
    assert str(Deadline.parse("90m")) == "90m" and str(Deadline.parse("8 service hours")) == "8 service hours"
    assert str(Deadline.parse("90 service minutes")) == "90 service minutes"
    assert Deadline.parse("1 service hour") == Deadline(timedelta(hours=1), service=True)
    e = refused(Deadline.parse, "36601d", "resolution")
    assert str(e) == "resolution '36601d' is too long; at most 36600 days" and e.field == "resolution"


def test_a_desk_that_never_closes_counts_service_time_as_wall_clock_time():
    from casework.policies.calendar import Deadline, ServiceCalendar

    always = ServiceCalendar.always_open()
    assert always.tz == ZoneInfo("UTC") and ServiceCalendar.always_open(SHANGHAI).tz == SHANGHAI
    start = datetime(2026, 11, 22, 10, tzinfo=SHANGHAI)
    assert always.deadline(start, Deadline.parse("8 service hours")) == start + timedelta(hours=8)
    assert always.is_open(start) and always.next_open(start) == start
    assert always.service_between(start, start + timedelta(hours=30)) == timedelta(hours=30)


def test_service_time_runs_to_the_end_of_the_day_and_resumes_at_the_next_opening():
    from datetime import time

    from casework.policies.calendar import Deadline, ServiceCalendar

    desk = ServiceCalendar(SHANGHAI, (time(9), time(18)))
    start = datetime(2026, 11, 23, 16, tzinfo=SHANGHAI)  # a Monday, two hours before closing
    assert desk.deadline(start, Deadline.parse("2 service hours")) == datetime(2026, 11, 23, 18, tzinfo=SHANGHAI)
    assert desk.deadline(start, Deadline.parse("3 service hours")) == datetime(2026, 11, 24, 10, tzinfo=SHANGHAI)
    evening = datetime(2026, 11, 23, 18, tzinfo=SHANGHAI)  # closing time: closed
    assert not desk.is_open(evening) and desk.next_open(evening) == datetime(2026, 11, 24, 9, tzinfo=SHANGHAI)
    assert desk.is_open(datetime(2026, 11, 23, 9, tzinfo=SHANGHAI))
    assert desk.elapsed(start, start + timedelta(days=1), Deadline.parse("8 service hours")) == timedelta(hours=9)
    assert desk.elapsed(start, start - timedelta(hours=1), Deadline.parse("24h")) == timedelta(0)
    assert desk.extend(start, timedelta(0), Deadline.parse("24h")) == start
    closed = ServiceCalendar(SHANGHAI, (time(9), time(18)), weekdays=dict.fromkeys(range(7)))
    e = refused(closed.next_open, start)
    assert str(e) == f"the service calendar has no opening within 1098 days of {start.isoformat()}"
    assert str(refused(closed.add_service_time, start, timedelta(hours=1))).startswith(
        "the service calendar has no opening within 1098 days of ")


def test_an_instant_that_does_not_read_is_named_as_a_date_unless_its_field_is_given():
    with pytest.raises(InvalidInput) as unnamed:
        parse_instant("soon")
    assert (str(unnamed.value).startswith("date 'soon' is not a date; expected an ISO date (2026-11-02)"),
            unnamed.value.field) == (True, "date")
    with pytest.raises(InvalidInput) as named:
        parse_instant("soon", "delivered")
    assert str(named.value).startswith("delivered 'soon' is not a date") and named.value.field == "delivered"
