"""The service calendar: wall-clock and service-hours deadlines, holidays, special days, DST."""

import time as time_module
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from casework import InvalidInput, parse_policy
from casework.policies.calendar import Deadline, ServiceCalendar
from casework.policies.files import default_policy_path

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
DESK = ServiceCalendar(SHANGHAI, (time(9), time(21)), frozenset({date(2027, 1, 1)}))


def at(text: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def test_request_at_2055_on_the_eve_of_a_holiday_gets_its_service_hours_after_the_holiday():
    due = DESK.deadline(at("2026-12-31T20:55"), Deadline.parse("8 service hours"))
    # 5 minutes on Dec 31, the desk is closed on Jan 1, the other 7h55 on Jan 2 from 09:00.
    assert due.astimezone(SHANGHAI) == at("2027-01-02T16:55")


def test_a_24h_wall_clock_deadline_ignores_service_hours_and_holidays():
    due = DESK.deadline(at("2026-12-31T20:55"), Deadline.parse("24h"))
    assert due.astimezone(SHANGHAI) == at("2027-01-01T20:55")


def test_a_request_outside_hours_waits_for_the_next_opening():
    due = DESK.deadline(at("2026-11-23T23:30"), Deadline.parse("2 service hours"))
    assert due.astimezone(SHANGHAI) == at("2026-11-24T11:00")
    assert DESK.next_open(at("2026-11-23T23:30")).astimezone(SHANGHAI) == at("2026-11-24T09:00")
    assert not DESK.is_open(at("2026-11-23T08:59"))
    assert DESK.is_open(at("2026-11-23T09:00"))


def test_24h_across_the_spring_dst_change_is_24_real_hours():
    # 2026-03-08 02:00 America/New_York jumps to 03:00: 24 elapsed hours end at 13:00 local, not 12:00.
    due = ServiceCalendar.always_open(NEW_YORK).deadline(at("2026-03-07T12:00", NEW_YORK), Deadline.parse("24h"))
    assert due.astimezone(NEW_YORK) == at("2026-03-08T13:00", NEW_YORK)
    assert due - at("2026-03-07T12:00", NEW_YORK) == timedelta(hours=24)


def test_service_hours_across_the_autumn_dst_change_count_real_open_time():
    # 2026-11-01 in New York has 25 hours; a desk open 00:00-24:00 that day is open 25 real hours.
    desk = ServiceCalendar(NEW_YORK, None)
    start = at("2026-11-01T00:00", NEW_YORK)
    due = desk.deadline(start, Deadline.parse("25 service hours"))
    assert due.astimezone(NEW_YORK) == at("2026-11-02T00:00", NEW_YORK)


def test_special_days_and_weekday_hours_override_the_daily_hours():
    desk = ServiceCalendar(SHANGHAI, (time(9), time(21)), special={date(2026, 11, 24): (time(12), time(14))},
                           weekdays={2: None})  # closed on Wednesdays
    due = desk.deadline(at("2026-11-24T08:00"), Deadline.parse("3 service hours"))
    # Tue 24th: 12:00-14:00 (2h); Wed 25th closed; Thu 26th from 09:00: 1h more.
    assert due.astimezone(SHANGHAI) == at("2026-11-26T10:00")


@pytest.mark.parametrize("text", ["24", "-1h", "8 hours of service", "", "1.5h"])
def test_malformed_deadlines_are_refused_with_the_value_and_the_accepted_forms(text):
    with pytest.raises(InvalidInput, match="24h"):
        Deadline.parse(text)


def test_the_policy_file_can_ask_for_service_hours_deadlines():
    text = default_policy_path().read_text().replace("first_response: 12 service hours",
                                                     'first_response: "8 service hours"')
    policy = parse_policy(text)
    due = policy.first_response_due("refund", at("2026-12-31T20:55"))
    assert due.astimezone(SHANGHAI) == at("2027-01-02T16:55")
    assert policy.first_response_due("refund", at("2026-11-23T10:00")) == at("2026-11-23T18:00")


# ---- deadlines as a policy writes them, and the desk's hours at their edges ------------------------------------
@pytest.mark.parametrize(("text", "span", "service"), [
    ("30m", timedelta(minutes=30), False), ("90min", timedelta(minutes=90), False), ("2h", timedelta(hours=2), False),
    ("7d", timedelta(days=7), False), ("2w", timedelta(days=14), False), ("1 service hour", timedelta(hours=1), True),
    (" 8 service hours ", timedelta(hours=8), True), ("90 service minutes", timedelta(minutes=90), True),
    ("1 service minute", timedelta(minutes=1), True), ("36600d", timedelta(days=36_600), False),
])
def test_each_unit_of_a_deadline_counts_as_written_and_reads_back_the_same(text, span, service):
    deadline = Deadline.parse(text)
    assert (deadline.span, deadline.service) == (span, service)
    assert Deadline.parse(str(deadline)) == deadline


def test_a_deadline_is_shown_as_a_policy_writes_it():
    shown = [str(Deadline.parse(t)) for t in ("30m", "36h", "7d", "90m", "8 service hours", "90 service minutes")]
    assert shown == ["30m", "36h", "168h", "90m", "8 service hours", "90 service minutes"]


def test_a_deadline_longer_than_a_century_is_refused_with_the_field_and_the_limit():
    with pytest.raises(InvalidInput) as refused:
        Deadline.parse("36601d", field="first_response")
    assert str(refused.value) == "first_response '36601d' is too long; at most 36600 days"
    assert (refused.value.field, refused.value.value) == ("first_response", "36601d")
    with pytest.raises(InvalidInput, match="too long"):
        Deadline.parse("5229w")


def test_a_deadline_that_is_not_text_is_refused_naming_its_field_and_value():
    with pytest.raises(InvalidInput) as refused:
        Deadline.parse(24, field="first_response")
    assert str(refused.value) == "first_response 24 is not a deadline; write 30m, 24h, 7d or '8 service hours'"
    assert (refused.value.field, refused.value.value) == ("first_response", 24)


def test_a_desk_that_never_opens_has_no_next_opening_and_no_service_deadline():
    closed = ServiceCalendar(SHANGHAI, (time(9), time(17)), weekdays=dict.fromkeys(range(7)))
    said = "the service calendar has no opening within 1098 days of 2026-11-23T10:00:00+08:00"
    with pytest.raises(InvalidInput) as refused:
        closed.next_open(at("2026-11-23T10:00"))
    assert str(refused.value) == said
    with pytest.raises(InvalidInput) as refused:
        closed.deadline(at("2026-11-23T10:00"), Deadline.parse("1 service hour"))
    assert str(refused.value) == said
    assert closed.service_between(at("2026-11-23T10:00"), at("2026-11-30T10:00")) == timedelta(0)


def test_a_day_of_service_hours_ends_at_closing_time_not_at_the_next_opening():
    assert DESK.deadline(at("2026-11-23T09:00"), Deadline.parse("12 service hours")) == at("2026-11-23T21:00")
    assert DESK.deadline(at("2026-11-23T09:00"), Deadline.parse("721 service minutes")) == at("2026-11-24T09:01")


def test_the_desk_is_open_from_its_opening_minute_and_closed_from_its_closing_minute():
    assert DESK.is_open(at("2026-11-23T20:59")) and not DESK.is_open(at("2026-11-23T21:00"))
    assert DESK.next_open(at("2026-11-23T15:00")) == at("2026-11-23T15:00")  # open: now
    assert DESK.next_open(at("2026-11-23T21:00")) == at("2026-11-24T09:00")
    assert not DESK.is_open(at("2027-01-01T12:00"))  # the holiday
    assert DESK.next_open(at("2027-01-01T12:00")) == at("2027-01-02T09:00")


def test_a_night_desk_open_past_midnight_is_open_after_midnight_and_counts_its_hours_across_it():
    night = ServiceCalendar(SHANGHAI, (time(22), time(2)))
    assert night.is_open(at("2026-11-24T01:59")) and not night.is_open(at("2026-11-24T02:00"))
    assert night.is_open(at("2026-11-23T22:00")) and not night.is_open(at("2026-11-23T21:59"))
    assert night.deadline(at("2026-11-23T23:00"), Deadline.parse("4 service hours")) == at("2026-11-24T23:00")
    assert night.service_between(at("2026-11-23T12:00"), at("2026-11-24T12:00")) == timedelta(hours=4)


def test_a_special_day_wins_over_a_holiday_and_a_weekday_and_an_always_open_desk_never_closes():
    day = date(2027, 1, 1)  # a Friday, and a holiday
    desk = ServiceCalendar(SHANGHAI, (time(9), time(21)), frozenset({day}), special={day: (time(10), time(12))},
                           weekdays={4: None})
    assert desk.hours_on(day) == (time(10), time(12))
    assert desk.hours_on(date(2027, 1, 8)) is None  # another Friday
    assert desk.hours_on(date(2027, 1, 7)) == (time(9), time(21))
    assert DESK.hours_on(day) is None
    always = ServiceCalendar.always_open(SHANGHAI)
    assert always.hours_on(day) == (time(0), time(0)) and always.is_open(at("2027-01-01T03:00"))
    assert ServiceCalendar.always_open().tz == ZoneInfo("UTC")


def test_open_time_between_two_instants_counts_only_the_hours_the_desk_is_open():
    assert DESK.service_between(at("2026-11-23T20:00"), at("2026-11-24T10:30")) == timedelta(hours=2, minutes=30)
    assert DESK.service_between(at("2026-11-23T12:00"), at("2026-11-23T11:00")) == timedelta(0)
    assert DESK.service_between(at("2026-11-23T08:00"), at("2026-11-23T09:00")) == timedelta(0)


def test_elapsed_time_is_open_time_for_a_service_deadline_and_wall_clock_time_otherwise_never_negative():
    start, end = at("2026-11-23T20:00"), at("2026-11-24T10:30")
    assert DESK.elapsed(start, end, Deadline.parse("8 service hours")) == timedelta(hours=2, minutes=30)
    assert DESK.elapsed(start, end, Deadline.parse("24h")) == timedelta(hours=14, minutes=30)
    assert DESK.elapsed(end, start, Deadline.parse("24h")) == timedelta(0)


def test_a_deadline_is_extended_by_open_time_or_wall_clock_time_and_not_by_nothing():
    due = at("2026-11-23T20:00")
    assert DESK.extend(due, timedelta(hours=2), Deadline.parse("8 service hours")) == at("2026-11-24T10:00")
    assert DESK.extend(due, timedelta(hours=2), Deadline.parse("24h")) == at("2026-11-23T22:00")
    closed = at("2026-11-23T22:00")  # nothing to add: the due time stays, even outside the desk's hours
    assert DESK.extend(closed, timedelta(0), Deadline.parse("8 service hours")) == closed
    assert DESK.extend(closed, timedelta(hours=-1), Deadline.parse("8 service hours")) == closed


def test_a_wall_clock_deadline_is_given_in_utc():
    due = DESK.deadline(at("2026-11-23T20:00"), Deadline.parse("24h"))
    assert due.tzinfo == UTC and due == at("2026-11-24T20:00")


def test_the_desk_keeps_its_own_zone_and_gives_utc_whatever_the_machines_zone(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "America/New_York")  # 09:30 in Shanghai is still the day before in New York
    time_module.tzset()
    try:
        assert DESK.is_open(at("2026-11-23T09:30"))
        assert [t.isoformat() for t in DESK.opening(date(2026, 11, 23)) or ()] == [
            "2026-11-23T01:00:00+00:00", "2026-11-23T13:00:00+00:00"]
        assert DESK.next_open(at("2026-11-23T08:00")).isoformat() == "2026-11-23T01:00:00+00:00"
        assert DESK.next_open(at("2026-11-23T10:00")).isoformat() == "2026-11-23T02:00:00+00:00"
        assert DESK.deadline(at("2026-11-23T10:00"), Deadline.parse("1 service hour")).isoformat() == (
            "2026-11-23T03:00:00+00:00")
        assert DESK.deadline(at("2026-11-23T10:00"), Deadline.parse("24h")).isoformat() == "2026-11-24T02:00:00+00:00"
    finally:
        monkeypatch.undo()
        time_module.tzset()


def test_a_night_desk_is_open_after_midnight_on_a_machine_a_day_ahead_of_the_desk(monkeypatch: pytest.MonkeyPatch):
    pago = ZoneInfo("Pacific/Pago_Pago")  # UTC-11; the machine's zone below is UTC+14, a day ahead
    night = ServiceCalendar(pago, (time(22), time(2)))
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time_module.tzset()
    try:
        one_am = at("2026-11-24T01:00", pago)  # in the night that began on the 23rd
        assert night.is_open(one_am) and night.next_open(one_am) == one_am
        assert night.deadline(one_am, Deadline.parse("30 service minutes")) == at("2026-11-24T01:30", pago)
    finally:
        monkeypatch.undo()
        time_module.tzset()


def test_a_deadline_given_without_its_field_is_called_a_deadline():
    with pytest.raises(InvalidInput) as refused:
        Deadline.parse("24")
    assert str(refused.value) == "deadline '24' is not a deadline; write 30m, 24h, 7d or '8 service hours'"
    assert refused.value.field == "deadline"


def test_a_century_of_minutes_and_one_more_is_too_long():
    assert Deadline.parse("52704000m").span == timedelta(days=36_600)
    with pytest.raises(InvalidInput, match="too long"):
        Deadline.parse("52704001m")


def test_the_search_for_an_opening_reaches_as_far_as_its_message_says():
    """Closed every day but special days: an opening 1098 days after the start is found, one a day later is not."""
    from datetime import date

    from casework.policies.calendar import MAX_DAYS

    start = at("2026-11-23T10:00")
    closed = dict.fromkeys(range(7))
    for days, found in ((MAX_DAYS, True), (MAX_DAYS + 1, False)):
        opening_day = date(2026, 11, 23) + timedelta(days=days)
        desk = ServiceCalendar(SHANGHAI, (time(9), time(17)), weekdays=closed,
                               special={opening_day: (time(9), time(17))})
        if found:
            assert desk.next_open(start).astimezone(SHANGHAI).date() == opening_day
        else:
            with pytest.raises(InvalidInput, match=f"no opening within {MAX_DAYS} days of "):
                desk.next_open(start)
