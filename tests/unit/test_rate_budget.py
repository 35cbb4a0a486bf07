"""The workspace budget's arithmetic on a fake clock: finals never refused, progress yields, 429 pauses."""

from __future__ import annotations

import pytest

from bot.clients.slack_budget import SlackBudget
from bot.domain.rate_budget import LIMITS, PER_CHANNEL, Limit, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_published_limits_are_never_exceeded_in_any_minute() -> None:
    # chat.update is Tier 3 (50 a minute); chat.postMessage about 1 a second per channel.
    assert LIMITS["chat.update"].window_max <= 50
    assert PER_CHANNEL["chat.postMessage"].per_minute <= 60


@pytest.mark.parametrize("calls", [1, 5, 6, 50, 200])
def test_calls_that_must_go_out_wait_their_turn_and_keep_the_pace(calls: int) -> None:
    clock = Clock()
    bucket = TokenBucket(Limit(per_minute=60, burst=5), clock())
    sent = []
    for _ in range(calls):
        clock.sleep(bucket.take(clock()))
        sent.append(clock())
    # Any 60 s window sees at most burst + per_minute calls; every call went out.
    assert len(sent) == calls
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u - t < 60) <= 65
    assert clock() == pytest.approx(max(0, calls - 5) * 1.0)


def test_progress_takes_only_a_free_token_and_yields_to_finals() -> None:
    clock = Clock()
    budget = SlackBudget({"chat.update": Limit(per_minute=60, burst=2)}, {}, clock=clock, sleep=clock.sleep)
    assert budget.try_acquire("chat.update", "C1", waiter="a")
    assert budget.try_acquire("chat.update", "C1", waiter="a")
    assert not budget.try_acquire("chat.update", "C1", waiter="a")  # spent: coalesce
    # A final result arrives while progress waits: it goes first (1 s later, at the method's pace).
    assert budget.acquire("chat.update", "C1") == pytest.approx(1.0)
    assert not budget.try_acquire("chat.update", "C1", waiter="a")  # still in debt for the final
    clock.now += 1.0
    assert budget.try_acquire("chat.update", "C1", waiter="a")


def test_waiting_progress_messages_are_served_in_the_order_they_started_waiting() -> None:
    clock = Clock()
    budget = SlackBudget({"chat.update": Limit(per_minute=60, burst=1)}, {}, clock=clock, sleep=clock.sleep)
    assert budget.try_acquire("chat.update", waiter="first")
    assert not budget.try_acquire("chat.update", waiter="a")
    assert not budget.try_acquire("chat.update", waiter="b")
    assert budget.retry_in("chat.update", waiter="a") == pytest.approx(1.0)
    assert budget.retry_in("chat.update", waiter="b") == pytest.approx(2.0)
    clock.now += 1.0
    assert not budget.try_acquire("chat.update", waiter="b")  # a token is free, but it is a's turn
    assert budget.try_acquire("chat.update", waiter="a")
    clock.now += 1.0
    budget.withdraw("chat.update", "b")  # b's build finished: it leaves the line
    assert budget.try_acquire("chat.update", waiter="c")


def test_a_429_pauses_the_method_for_every_caller() -> None:
    clock = Clock()
    budget = SlackBudget({"chat.update": Limit(per_minute=600, burst=10)}, {}, clock=clock, sleep=clock.sleep)
    budget.pause("chat.update", 7)
    assert not budget.try_acquire("chat.update", waiter="p")
    assert budget.acquire("chat.update") == pytest.approx(7.0, abs=0.2)
    assert budget.acquire("chat.postMessage") == 0  # other methods are not affected


def test_post_message_is_paced_per_channel_and_across_the_workspace() -> None:
    clock = Clock()
    budget = SlackBudget(
        {"chat.postMessage": Limit(per_minute=60, burst=2)},
        {"chat.postMessage": Limit(per_minute=60, burst=1)},
        clock=clock,
        sleep=clock.sleep,
    )
    assert budget.acquire("chat.postMessage", "C1") == 0
    assert budget.acquire("chat.postMessage", "C2") == 0  # another channel: no wait
    assert budget.acquire("chat.postMessage", "C1") == pytest.approx(1.0)  # same channel: a second apart
    for channel in ("C3", "C4", "C5"):
        budget.acquire("chat.postMessage", channel)
    assert clock() == pytest.approx(4.0)  # the workspace bucket (1 a second) paced the other channels too
