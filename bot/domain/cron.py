"""Cron expressions exactly as crontab(5) reads them (Vixie cron / cronie), in UTC; pure.

- Five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or jan-dec), day of week
  (0-7 or sun-sat; 0 and 7 are Sunday, so `0-7` and `mon-sun` are every day).
- Each field is a list of `*`, `N`, `N-M`, optionally with a step (`*/15`, `1-30/5`; `N/step` runs from N to the
  field's end, as cronie reads it). Names are three letters, any case, also in ranges (`mon-fri`).
- Day of month and day of week: when both are restricted (neither starts with `*`), a day matches when EITHER
  does (`0 3 1,15 * 1` fires on the 1st, the 15th and every Monday); otherwise both must match (`*` matches
  all, and `*/2` counts as unrestricted here, as in cron's own code).
- The macros @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly; @reboot is not a schedule.

APScheduler 3's CronTrigger reads day-of-week numbers with 0 = Monday and always ANDs the two day fields,
so the scheduler uses this module's `next_fire` (jobs/scheduler.py wraps it in a trigger), and every
schedule is checked here when it is written: one that can never fire (`0 3 30 2 *`) is refused with the
reason.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Dates repeat their weekdays every 28 years between 1901 and 2099, so a schedule that has not fired within
# that horizon never will (2100 is not a leap year; nobody here waits that long).
HORIZON_DAYS = 28 * 366


class CronError(ValueError):
    """A cron expression that is not valid, or never fires; the message says which part and why.

    `kind` is "fields" (not five fields), "value" (a field is wrong) or "never" (valid, but never fires)."""

    def __init__(self, message: str, kind: str = "value") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # the number of the first name (jan = 1, sun = 0)


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTH_NAMES, 1),
    _Field("day of week", 0, 7, DAY_NAMES, 0),
)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the values each field allows, and which day fields are restricted."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def matches(self, moment: datetime) -> bool:
        return moment.minute in self.minutes and moment.hour in self.hours and self.matches_day(moment.date())


def parse_cron(text: str) -> CronSchedule:
    """Parse a crontab(5) expression; raises CronError naming the field and the problem."""
    if not isinstance(text, str) or not text.strip():
        raise CronError("it is empty", "fields")
    expr = " ".join(text.split())
    lowered = expr.lower()
    if lowered.startswith("@"):
        if lowered == "@reboot":
            raise CronError("@reboot runs at start-up, it is not a schedule")
        if lowered not in MACROS:
            raise CronError(f"{expr} is not a known macro (use one of {', '.join(MACROS)})")
        expr_fields = MACROS[lowered].split()
    else:
        expr_fields = expr.split()
    if len(expr_fields) != 5:
        raise CronError(f"it has {len(expr_fields)} fields", "fields")
    values = [_parse_field(part, spec) for part, spec in zip(expr_fields, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])
    return CronSchedule(
        text=expr,
        minutes=frozenset(values[0]),
        hours=frozenset(values[1]),
        days=frozenset(values[2]),
        months=frozenset(values[3]),
        weekdays=weekdays,
        days_restricted=not expr_fields[2].startswith("*"),
        weekdays_restricted=not expr_fields[4].startswith("*"),
    )


def _parse_field(text: str, spec: _Field) -> set[int]:
    found: set[int] = set()
    for item in text.split(","):
        found.update(_parse_item(item, spec))
    return found


def _parse_item(item: str, spec: _Field) -> range:
    where = f"{spec.label} {item!r}"
    if not item:
        raise CronError(f"the {spec.label} field has an empty list item")
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{where}: the step must be a whole number above 0")
        step = int(step_text)
    if body == "*":
        low, high = spec.low, spec.high
    elif "-" in body:
        first, _, last = body.partition("-")
        low, high = _value(first, spec, where), _value(last, spec, where)
        if low > high:
            raise CronError(f"{where}: the range runs backwards ({first} is after {last})")
    else:
        low = _value(body, spec, where)
        high = spec.high if slash else low  # `5/15`: from 5 to the end of the field, every 15
    return range(low, high + 1, step)


def _value(text: str, spec: _Field, where: str) -> int:
    low_text = text.lower()
    if low_text in spec.names:
        return spec.names.index(low_text) + spec.name_base
    if not text.isdigit():
        names = f" or a name ({spec.names[0]}-{spec.names[-1]})" if spec.names else ""
        raise CronError(f"{where}: {text!r} is not a number{names}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise CronError(f"{where}: {value} is outside {spec.low}-{spec.high}")
    return value


# ---------------------------------------------------------------- when it fires


def next_fire(schedule: CronSchedule, moment: datetime) -> datetime | None:
    """The first fire time at or after `moment` (UTC, whole minutes); None when it never fires."""
    moment = moment.astimezone(UTC)
    start = moment.replace(second=0, microsecond=0)
    if start < moment:
        start += timedelta(minutes=1)
    day = start.date()
    for offset in range(HORIZON_DAYS):
        candidate = day + timedelta(days=offset)
        if not schedule.matches_day(candidate):
            continue
        after = start if offset == 0 else None
        at = _first_time(schedule, candidate, after)
        if at is not None:
            return at
    return None


def _first_time(schedule: CronSchedule, day: date, after: datetime | None) -> datetime | None:
    for hour in sorted(schedule.hours):
        if after is not None and hour < after.hour:
            continue
        for minute in sorted(schedule.minutes):
            at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            if after is None or at >= after:
                return at
    return None


def next_fires(schedule: CronSchedule, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` fire times strictly after `after`."""
    times: list[datetime] = []
    moment = after + timedelta(microseconds=1)
    while len(times) < count:
        at = next_fire(schedule, moment)
        if at is None:
            break
        times.append(at)
        moment = at + timedelta(minutes=1)
    return times


def never_fires_reason(schedule: CronSchedule) -> str | None:
    """Why `schedule` can never fire, or None when it does."""
    if not (schedule.days_restricted and schedule.weekdays_restricted):
        possible = [(m, d) for m in sorted(schedule.months) for d in sorted(schedule.days) if d <= _longest_month(m)]
        if not possible:
            months = ", ".join(calendar.month_name[m] for m in sorted(schedule.months))
            days = ", ".join(str(d) for d in sorted(schedule.days))
            return f"day {days} never occurs in {months}"
    if next_fire(schedule, datetime(2026, 1, 1, tzinfo=UTC)) is None:
        return "no date in the next 28 years matches both the day of month and the day of week"
    return None


def _longest_month(month: int) -> int:
    return calendar.monthrange(2024, month)[1]  # 2024 is a leap year: February has its 29th


def check_cron(text: str) -> CronSchedule:
    """parse_cron, also refusing a schedule that never fires (CronError says why)."""
    schedule = parse_cron(text)
    reason = never_fires_reason(schedule)
    if reason:
        raise CronError(reason, "never")
    return schedule


def upcoming(expr: str | None, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` fire times of a stored schedule (none without a schedule)."""
    return next_fires(parse_cron(expr), after, count) if expr else []


def describe_times(times: list[datetime]) -> str:
    """`Mon 2026-01-05 03:00, Mon 2026-01-12 03:00 UTC` (the schedule's own zone is UTC)."""
    return ", ".join(t.strftime("%a %Y-%m-%d %H:%M") for t in times) + (" UTC" if times else "")
