"""Cron expressions as every cron user reads them, on APScheduler 3 triggers.

APScheduler 3's `CronTrigger.from_crontab` reads day-of-week numbers with 0 = Monday, so "0 3 * * 1" would
run on Tuesdays; the weekday field is translated to day names first. 0 and 7 both mean Sunday.
"""

from __future__ import annotations

from datetime import UTC

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def standard_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, 1 = Monday) in APScheduler's terms.

    APScheduler 3's `CronTrigger.from_crontab` reads numbers with 0 = MONDAY, so "0 3 * * 1" would run
    on Tuesdays; spelling the days out as names keeps the meaning every cron user expects.
    """
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.lower().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            low, high = 0, 6
        elif "-" in body:
            a, b = body.split("-", 1)
            low, high = _day_number(a), _day_number(b)
            if high == 0 and low > 0:  # "5-7" or "fri-sun": through Sunday
                high = 7
        else:
            low = high = _day_number(body)
            if step_text:
                high = 6
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _day_number(text: str) -> int:
    if text in _DAY_NAMES:
        return _DAY_NAMES.index(text)
    value = int(text)
    if not 0 <= value <= 7:
        raise ValueError(f"day of week {value} is not 0-7")
    return value % 7 if value == 7 else value


def cron_trigger(expr: str):
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, dow = expr.split()
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=standard_day_of_week(dow), timezone=UTC
    )
