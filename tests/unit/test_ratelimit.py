"""Pull-budget maths: header parsing, pulls per launch, warning hysteresis, sparklines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.ratelimit import (
    ALL_CLEAR,
    LOW,
    OK,
    WARNING,
    PullBudget,
    Thresholds,
    bucket_samples,
    next_alert,
    parse_ratelimit_headers,
    pulls_needed,
    sparkline,
    window_demand,
)
from bot.errors import InvalidInput


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # the documented anonymous answer
        (
            {
                "ratelimit-limit": "100;w=21600",
                "ratelimit-remaining": "76;w=21600",
                "docker-ratelimit-source": "203.0.113.7",
            },
            (100, 76, 21600, "203.0.113.7", False),
        ),
        # header names are case-insensitive; numbers are whatever the registry says
        ({"RateLimit-Limit": "200;w=21600", "RateLimit-Remaining": "199;w=21600"}, (200, 199, 21600, None, False)),
        ({"ratelimit-limit": "10;w=3600", "ratelimit-remaining": "0;w=3600"}, (10, 0, 3600, None, False)),
        # several policies: the tightest (fewest remaining) wins, with the limit of the same window
        (
            {"ratelimit-limit": "100;w=21600, 2500;w=60", "ratelimit-remaining": "76;w=21600, 10;w=60"},
            (2500, 10, 60, None, False),
        ),
        (
            {"ratelimit-limit": "100;w=21600, 2500;w=60", "ratelimit-remaining": "5;w=21600, 2400;w=60"},
            (100, 5, 21600, None, False),
        ),
        # several limits, one remaining: paired by window
        (
            {"ratelimit-limit": "2500;w=60, 100;w=21600", "ratelimit-remaining": "40;w=21600"},
            (100, 40, 21600, None, False),
        ),
        # spaces and extra parameters are tolerated
        (
            {"ratelimit-limit": " 100 ; w=21600 ; comment=x", "ratelimit-remaining": "7;w=21600"},
            (100, 7, 21600, None, False),
        ),
        # no window given
        ({"ratelimit-limit": "100", "ratelimit-remaining": "50"}, (100, 50, None, None, False)),
        # a limit without remaining: remaining unknown
        ({"ratelimit-limit": "100;w=21600"}, (100, None, 21600, None, False)),
        # no rate-limit headers at all: unlimited (Pro/Team accounts)
        ({"docker-ratelimit-source": "acct-1", "content-type": "x"}, (None, None, None, "acct-1", True)),
        ({}, (None, None, None, None, True)),
    ],
)
def test_parse_ratelimit_headers(headers: dict[str, str], expected: tuple) -> None:
    budget = parse_ratelimit_headers(headers)
    assert (budget.limit, budget.remaining, budget.window_seconds, budget.source, budget.unlimited) == expected


def test_unreadable_headers_are_an_error_not_unlimited() -> None:
    with pytest.raises(ValueError, match="unreadable"):
        parse_ratelimit_headers({"ratelimit-limit": "lots", "ratelimit-remaining": "some"})


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, (1, 1)),
        ({"num_workers": 0}, (1, 1)),
        ({"num_workers": 4}, (5, 5)),
        ({"min_workers": 2, "max_workers": 8}, (3, 9)),
        ({"min_workers": 0, "max_workers": 0}, (1, 1)),
        ({"max_workers": 3}, (1, 4)),
    ],
)
def test_pulls_needed(kwargs: dict[str, int], expected: tuple[int, int]) -> None:
    assert pulls_needed(**kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_workers": -1}, "num_workers"),
        ({"min_workers": 5, "max_workers": 2}, "max_workers"),
        ({"num_workers": 2, "max_workers": 4}, "num_workers"),
        ({"num_workers": 1.5}, "num_workers"),
    ],
)
def test_pulls_needed_rejects_bad_sizes(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        pulls_needed(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


def budget(remaining: int | None, limit: int = 100) -> PullBudget:
    return PullBudget(limit=limit, remaining=remaining, window_seconds=21600)


def run(samples: list[PullBudget], thresholds: Thresholds) -> list[str]:
    """Feed samples through the state machine like the periodic job does; return the notices sent."""
    state, sent = OK, []
    for sample in samples:
        decision = next_alert(state, sample, thresholds)
        state = decision.state
        if decision.notify:
            sent.append(decision.notify)
    return sent


def test_falling_then_recovering_budget_gives_one_warning_and_one_all_clear() -> None:
    thresholds = Thresholds(percent=20, minimum=10)
    remaining = [100, 80, 40, 21, 19, 15, 18, 19, 20, 22, 10, 3, 0, 0, 12, 19, 24, 60, 100, 90]
    assert run([budget(r) for r in remaining], thresholds) == [WARNING, ALL_CLEAR]


def test_hovering_at_the_line_does_not_flap() -> None:
    thresholds = Thresholds(percent=20, minimum=10)
    assert run([budget(r) for r in [30, 19, 20, 19, 21, 19, 22, 19]], thresholds) == [WARNING]


def test_each_new_crossing_warns_again() -> None:
    thresholds = Thresholds(percent=20, minimum=10)
    notices = run([budget(r) for r in [50, 5, 100, 5, 100]], thresholds)
    assert notices == [WARNING, ALL_CLEAR, WARNING, ALL_CLEAR]


@pytest.mark.parametrize(
    ("thresholds", "limit", "remaining", "warns"),
    [
        (Thresholds(percent=20, minimum=0), 100, 19, True),
        (Thresholds(percent=20, minimum=0), 100, 20, False),
        (Thresholds(percent=0, minimum=10), 100, 9, True),
        (Thresholds(percent=0, minimum=10), 100, 10, False),
        (Thresholds(percent=0, minimum=0, needed=30), 100, 29, True),  # launches of the window need 30
        (Thresholds(percent=0, minimum=0, needed=30), 100, 30, False),
        (Thresholds(percent=20, minimum=10), 1000, 150, True),  # 20 % of the limit the header gave
        (Thresholds(percent=20, minimum=10), 1000, 250, False),
    ],
)
def test_warning_line(thresholds: Thresholds, limit: int, remaining: int, warns: bool) -> None:
    decision = next_alert(OK, budget(remaining, limit), thresholds)
    assert (decision.notify == WARNING) is warns
    assert decision.state == (LOW if warns else OK)


def test_warning_reason_names_the_launch_demand() -> None:
    decision = next_alert(OK, budget(25), Thresholds(percent=10, minimum=5, needed=40))
    assert decision.notify == WARNING
    assert "launches in this window need 40" in decision.reason


def test_unlimited_budget_clears_a_warning_and_never_warns() -> None:
    unlimited = PullBudget(None, None, None, unlimited=True)
    assert next_alert(LOW, unlimited, Thresholds()).notify == ALL_CLEAR
    assert next_alert(OK, unlimited, Thresholds()).notify is None


def test_unknown_remaining_keeps_the_state() -> None:
    unknown = PullBudget(100, None, 21600)
    assert next_alert(LOW, unknown, Thresholds()).state == LOW
    assert next_alert(LOW, unknown, Thresholds()).notify is None


def test_sparkline_scales_to_the_limit_and_shows_gaps() -> None:
    assert sparkline([100, 50, None, 0], high=100) == "█▅ ▁"
    assert sparkline([None, None]) == "  "
    assert sparkline([]) == ""
    assert len(sparkline([5] * 24, high=100)) == 24


def test_bucket_samples_keeps_the_lowest_per_slot_and_drops_old_ones() -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    samples = [
        (now - timedelta(hours=30), 1),  # older than 24 h: ignored
        (now - timedelta(hours=23, minutes=30), 90),
        (now - timedelta(hours=23, minutes=10), 70),  # same slot: the lower one
        (now - timedelta(minutes=5), 40),
    ]
    slots = bucket_samples(samples, now, hours=24, buckets=24)
    assert slots[0] == 70
    assert slots[-1] == 40
    assert slots[1:-1] == [None] * 22


def test_window_demand_counts_launches_inside_the_window_and_planned_ones() -> None:
    now = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
    launches = [
        (now - timedelta(hours=7), 9),  # outside a 6 h window
        (now - timedelta(hours=2), 5),
        (now + timedelta(hours=1), 3),  # planned
        (now - timedelta(minutes=1), None),
    ]
    assert window_demand(launches, now, 21600) == 8
