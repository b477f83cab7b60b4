"""The service calendar: wall-clock and service-hours deadlines, holidays, special days, DST."""

from datetime import date, datetime, time, timedelta
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
