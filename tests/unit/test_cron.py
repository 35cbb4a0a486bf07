"""Cron schedules read exactly as crontab(5) does, checked against published examples.

Sources of the examples: the crontab(5) manual page (cronie / Vixie cron: its EXAMPLE CRON FILE and the
"30 4 1,15 * 5" day-of-month OR day-of-week note), Wikipedia's "cron" article ("0 0 13 * 5": every Friday and
every 13th), and the problems reported in issue 12. 2026-01-01 is a Thursday.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.catalog import image_from_dict
from bot.domain.cron import CronError, check_cron, next_fire, next_fires, parse_cron
from bot.errors import InvalidInput
from jobs.scheduler import CrontabTrigger

START = datetime(2026, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


PUBLISHED = [
    # crontab(5): "run five minutes after midnight, every day"
    ("5 0 * * *", ["2026-01-01 00:05", "2026-01-02 00:05", "2026-01-03 00:05"]),
    # crontab(5): "run at 2:15pm on the first of every month"
    ("15 14 1 * *", ["2026-01-01 14:15", "2026-02-01 14:15", "2026-03-01 14:15"]),
    # crontab(5): "run at 10 pm on weekdays"
    ("0 22 * * 1-5", ["2026-01-01 22:00", "2026-01-02 22:00", "2026-01-05 22:00"]),
    # crontab(5): "run 23 minutes after midn, 2am, 4am ..., everyday"
    ("23 0-23/2 * * *", ["2026-01-01 00:23", "2026-01-01 02:23", "2026-01-01 04:23"]),
    # crontab(5): "run at 5 after 4 every sunday"
    ("5 4 * * sun", ["2026-01-04 04:05", "2026-01-11 04:05", "2026-01-18 04:05"]),
    # crontab(5): "30 4 1,15 * 5" runs "on the 1st and 15th of each month, plus every Friday"
    ("30 4 1,15 * 5", ["2026-01-01 04:30", "2026-01-02 04:30", "2026-01-09 04:30"]),
    # Wikipedia: "0 0 13 * 5" runs every Friday and every 13th
    ("0 0 13 * 5", ["2026-01-02 00:00", "2026-01-09 00:00", "2026-01-13 00:00"]),
    # issue 12: the 1st, the 15th and every Monday (the product used to require both: first fire in June)
    ("0 3 1,15 * 1", ["2026-01-01 03:00", "2026-01-05 03:00", "2026-01-12 03:00"]),
    # 0 and 7 are both Sunday; 0-7 is every day; 5-7 is Friday to Sunday
    ("0 3 * * 0", ["2026-01-04 03:00", "2026-01-11 03:00", "2026-01-18 03:00"]),
    ("0 3 * * 7", ["2026-01-04 03:00", "2026-01-11 03:00", "2026-01-18 03:00"]),
    ("0 3 * * 0-7", ["2026-01-01 03:00", "2026-01-02 03:00", "2026-01-03 03:00"]),
    ("0 3 * * 5-7", ["2026-01-02 03:00", "2026-01-03 03:00", "2026-01-04 03:00"]),
    ("0 3 * * 1", ["2026-01-05 03:00", "2026-01-12 03:00", "2026-01-19 03:00"]),  # Monday, not Tuesday
    # names, any case, also in ranges and next to months
    ("0 12 * jan-mar MON-fri", ["2026-01-01 12:00", "2026-01-02 12:00", "2026-01-05 12:00"]),
    ("0 0 1 Jul *", ["2026-07-01 00:00", "2027-07-01 00:00", "2028-07-01 00:00"]),
    # steps: from *, from a range, from a single number (to the end of the field)
    ("*/15 * * * *", ["2026-01-01 00:15", "2026-01-01 00:30", "2026-01-01 00:45"]),
    ("5/20 * * * *", ["2026-01-01 00:05", "2026-01-01 00:25", "2026-01-01 00:45"]),
    ("0 0 * * */2", ["2026-01-03 00:00", "2026-01-04 00:00", "2026-01-06 00:00"]),  # Sun, Tue, Thu, Sat
    # a day field starting with "*" is unrestricted for the OR rule: odd days that are Mondays
    ("0 0 */2 * 1", ["2026-01-05 00:00", "2026-01-19 00:00", "2026-02-09 00:00"]),
    # a leap day fires every four years
    ("0 0 29 2 *", ["2028-02-29 00:00", "2032-02-29 00:00", "2036-02-29 00:00"]),
    # the macros of crontab(5)
    ("@yearly", ["2027-01-01 00:00", "2028-01-01 00:00", "2029-01-01 00:00"]),
    ("@monthly", ["2026-02-01 00:00", "2026-03-01 00:00", "2026-04-01 00:00"]),
    ("@weekly", ["2026-01-04 00:00", "2026-01-11 00:00", "2026-01-18 00:00"]),
    ("@daily", ["2026-01-02 00:00", "2026-01-03 00:00", "2026-01-04 00:00"]),
    ("@hourly", ["2026-01-01 01:00", "2026-01-01 02:00", "2026-01-01 03:00"]),
]


@pytest.mark.parametrize(("expr", "expected"), PUBLISHED)
def test_published_examples_fire_when_crontab_says(expr: str, expected: list[str]) -> None:
    assert next_fires(parse_cron(expr), START) == [at(t) for t in expected]


@pytest.mark.parametrize(("expr", "expected"), PUBLISHED)
def test_the_scheduler_trigger_fires_at_the_same_times(expr: str, expected: list[str]) -> None:
    trigger = CrontabTrigger(expr)
    fired: list[datetime] = []
    previous = None
    now = START.replace(second=1)  # the scheduler asks just after the start
    while len(fired) < 3:
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        fired.append(fire)
        previous, now = fire, fire
    assert fired == [at(t) for t in expected]


def test_a_fire_time_is_at_or_after_the_moment_asked() -> None:
    daily = parse_cron("0 3 * * *")
    assert next_fire(daily, at("2026-01-01 03:00")) == at("2026-01-01 03:00")
    assert next_fire(daily, at("2026-01-01 03:00:00.5")) == at("2026-01-02 03:00")


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("0 3 30 2 *", "day 30 never occurs in February"),
        ("0 0 31 4,6,9,11 *", "day 31 never occurs in April, June, September, November"),
        ("0 0 30,31 feb *", "day 30, 31 never occurs in February"),
    ],
)
def test_schedules_that_never_fire_are_refused_with_the_reason(expr: str, reason: str) -> None:
    with pytest.raises(CronError) as caught:
        check_cron(expr)
    assert caught.value.kind == "never"
    assert str(caught.value) == reason
    with pytest.raises(InvalidInput) as refused:
        image_from_dict({"name": "x", "base": "ubuntu:22.04", "repository": "r.example/x", "schedule": expr})
    assert (refused.value.field, refused.value.value) == ("schedule", expr)
    assert refused.value.reason == f"never fires ({reason})"
    assert "Pick days that exist" in refused.value.fix


def test_day_31_with_a_weekday_fires_on_the_weekday() -> None:
    # both day fields restricted: Feb 31 never matches, but every Monday in February does
    assert next_fires(check_cron("0 0 31 2 mon"), START, 2) == [at("2026-02-02 00:00"), at("2026-02-09 00:00")]


@pytest.mark.parametrize(
    ("expr", "kind", "message"),
    [
        ("61 * * * *", "value", "minute '61': 61 is outside 0-59"),
        ("0 24 * * *", "value", "hour '24': 24 is outside 0-23"),
        ("0 0 0 * *", "value", "day of month '0': 0 is outside 1-31"),
        ("0 0 * 13 *", "value", "month '13': 13 is outside 1-12"),
        ("0 0 * * 8", "value", "day of week '8': 8 is outside 0-7"),
        ("*/0 * * * *", "value", "minute '*/0': the step must be a whole number above 0"),
        ("5-1 * * * *", "value", "minute '5-1': the range runs backwards (5 is after 1)"),
        ("0 0 * * mon-sun", "value", "day of week 'mon-sun': the range runs backwards (mon is after sun)"),
        ("0 0 * * funday", "value", "day of week 'funday': 'funday' is not a number or a name (sun-sat)"),
        ("0 0 * * 1,", "value", "the day of week field has an empty list item"),
        ("0 3 * * 1 2026", "fields", "it has 6 fields"),
        ("every day", "fields", "it has 2 fields"),
        ("@reboot", "value", "@reboot runs at start-up, it is not a schedule"),
        ("@fortnightly", "value", "@fortnightly is not a known macro"),
    ],
)
def test_invalid_expressions_name_the_part_and_the_problem(expr: str, kind: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expr)
    assert caught.value.kind == kind
    assert str(caught.value).startswith(message)


def test_whitespace_is_normalised_and_names_kept() -> None:
    assert parse_cron("  0  3 *\t* Mon ").text == "0 3 * * Mon"
    spec = image_from_dict({"name": "x", "base": "ubuntu:22.04", "repository": "r.example/x", "schedule": "0  3 * * 1"})
    assert spec.schedule == "0 3 * * 1"
