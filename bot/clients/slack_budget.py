"""One workspace-wide request budget per Slack Web API method, shared by every thread and client of the bot.

`bot/clients/slack.call()` spends from it before every call (`acquire`: waits its turn, never drops the
call); progress updates (`bot/clients/slack_progress.py`) only send when a token is free right now
(`try_acquire`) and otherwise keep their latest content for later, so that many builds' progress coalesces
instead of crowding out the messages that must arrive. Progress messages that wait are served in the
order they started waiting. A 429 pauses the method for everyone (`pause`). The arithmetic is
`bot/domain/rate_budget.py`.

A budget belongs to one bot token on one API URL (one app in one workspace): `budget_for(url, token)`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from bot.domain.rate_budget import LIMITS, PER_CHANNEL, Limit, TokenBucket

log = logging.getLogger(__name__)

# A waiting progress message retries at least this often; one silent longer has gone (its job crashed).
STALE_WAITER_SECONDS = 120.0


class SlackBudget:
    def __init__(
        self,
        limits: Mapping[str, Limit] = LIMITS,
        per_channel: Mapping[str, Limit] = PER_CHANNEL,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = dict(limits)
        self.per_channel = dict(per_channel)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str | None], TokenBucket] = {}
        self._waiting: dict[str, OrderedDict[object, float]] = {}  # method -> progress waiters, oldest first
        self.waited_seconds = 0.0  # total time callers slept for the budget (logs, benchmarks)

    def _buckets_for(self, method: str, channel: str | None, now: float) -> list[TokenBucket]:
        wanted: list[tuple[tuple[str, str | None], Limit]] = []
        if method in self.limits:
            wanted.append(((method, None), self.limits[method]))
        if channel and method in self.per_channel:
            wanted.append(((method, channel), self.per_channel[method]))
        found = []
        for key, limit in wanted:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(limit, now)
            found.append(bucket)
        return found

    def _line(self, method: str, now: float) -> OrderedDict[object, float]:
        """The progress messages waiting for `method`, oldest first; one not seen for a while has left."""
        line = self._waiting.setdefault(method, OrderedDict())
        for waiter, seen in list(line.items()):
            if now - seen > STALE_WAITER_SECONDS:
                del line[waiter]
        return line

    def acquire(self, method: str, channel: str | None = None) -> float:
        """Reserve a call (in order, never refused) and sleep until it may go out; returns the wait."""
        with self._lock:
            now = self._clock()
            wait = max((b.take(now) for b in self._buckets_for(method, channel, now)), default=0.0)
            self.waited_seconds += wait
        if wait > 0:
            if wait > 5:
                log.info("Slack budget: %s waits %.1f s for its turn", method, wait)
            self._sleep(wait)
        return wait

    def try_acquire(self, method: str, channel: str | None = None, waiter: object | None = None) -> bool:
        """Take a call only if one is free now and no progress message has been waiting longer than `waiter`."""
        with self._lock:
            now = self._clock()
            line = self._line(method, now)
            ahead = next(iter(line), None)
            buckets = self._buckets_for(method, channel, now)
            if (ahead is None or ahead is waiter) and all(b.free_now(now) for b in buckets):
                for bucket in buckets:
                    bucket.take_if_free(now)
                line.pop(waiter, None)
                return True
            if waiter is not None:
                line[waiter] = now  # keeps its place if it already had one
            return False

    def retry_in(self, method: str, channel: str | None = None, waiter: object | None = None) -> float:
        """When a progress message that was refused should try again: its turn in line, at the method's pace."""
        with self._lock:
            now = self._clock()
            buckets = self._buckets_for(method, channel, now)
            free = max((b.until_free(now) for b in buckets), default=0.0)
            line = self._line(method, now)
            place = list(line).index(waiter) if waiter in line else len(line)
            spacing = max((1.0 / b.limit.per_second for b in buckets), default=0.0)
            return free + place * spacing

    def withdraw(self, method: str, waiter: object) -> None:
        """A progress message that no longer wants to send (its job finished) leaves the line."""
        with self._lock:
            line = self._waiting.get(method)
            if line is not None:
                line.pop(waiter, None)

    def pause(self, method: str, seconds: float) -> None:
        """Slack answered 429 for `method`: every caller waits `seconds` (the Retry-After)."""
        with self._lock:
            now = self._clock()
            self._buckets_for(method, None, now)  # the workspace bucket exists from now on
            for (name, _), bucket in self._buckets.items():
                if name == method:
                    bucket.pause(now, seconds)


_budgets: dict[tuple[str, str], SlackBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(api_url: str, token: str) -> SlackBudget:
    """The budget of one app in one workspace (the same object for every client made with this token)."""
    with _budgets_lock:
        budget = _budgets.get((api_url, token))
        if budget is None:
            budget = _budgets[(api_url, token)] = SlackBudget()
        return budget
