"""One Slack message kept up to date while a long job runs, within Slack's `chat.update` budget.

`chat.update` is tier 3 (about 50 a minute per app and workspace, for ALL messages together), and a build
reports progress many times a second. `ProgressMessage.update()` only records the latest content and never
blocks the caller (the build's log reader); a timer sends it no sooner than `interval` seconds after the
previous send, and only when the workspace budget (bot/clients/slack_budget.py) has a call free right now.
When many builds run, their progress therefore coalesces: a message that finds the budget spent keeps its
latest content, waits its turn in line and sends only the newest state. `finish()` always sends the final
content (after the same spacing, ahead of any progress waiting in the budget), retrying once on failure,
because the final state is the one a user must see. Slack failures are logged and never break the job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient

from bot.clients.slack import SlackError, call
from bot.clients.slack_budget import SlackBudget

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 2.0
MAX_RETRY_SECONDS = 30.0  # a message refused by the budget asks again at least this often
METHOD = "chat.update"


@dataclass(frozen=True)
class Content:
    text: str
    blocks: list[dict[str, Any]]


class ProgressMessage:
    def __init__(
        self,
        client: WebClient,
        channel: str,
        ts: str,
        *,
        interval: float = MIN_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        label: str = "",
    ) -> None:
        self.client = client
        self.channel = channel
        self.ts = ts
        self.interval = interval
        self.label = label  # for log lines: "build #12"
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # one chat.update in flight per message
        self._pending: Content | None = None
        self._timer: threading.Timer | None = None
        self._last_sent: float | None = None
        self._finished = False
        self.budget: SlackBudget | None = getattr(client, "budget", None)
        self.deferred = 0  # flushes the budget refused (their content went out later, coalesced)
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None  # Slack's error code of the last failed send

    def update(self, text: str, blocks: list[dict[str, Any]]) -> None:
        """Record the latest progress; it reaches Slack after `interval` seconds, or in its turn when the
        workspace budget is spent (then only the latest content goes)."""
        with self._lock:
            if self._finished:
                return
            self._pending = Content(text, blocks)
            if self._timer is None:
                self._timer = threading.Timer(self._delay_locked(), self._flush)
                self._timer.daemon = True
                self._timer.start()

    def finish(self, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Send the final content (always). Returns True when Slack accepted it."""
        with self._lock:
            self._finished = True
            self._pending = None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if self.budget is not None:
            self.budget.withdraw(METHOD, self)
        final = Content(text, blocks)
        for attempt in (1, 2):
            with self._send_lock:
                with self._lock:
                    delay = self._delay_locked()
                if delay > 0:
                    self._sleep(delay)
                if self._send(final):
                    return True
            if attempt == 1:
                log.info("%s: retrying the final message update", self.label or self.ts)
        return False

    # ------------------------------------------------------------ internals
    def _delay_locked(self) -> float:
        if self._last_sent is None:
            return 0.0
        return max(0.0, self._last_sent + self.interval - self._clock())

    def _flush(self) -> None:
        with self._send_lock:
            with self._lock:
                self._timer = None
                if self._pending is None or self._finished:
                    return
                budget = self.budget
                if budget is not None and not budget.try_acquire(METHOD, self.channel, waiter=self):
                    # The workspace budget is spent: keep the latest content and ask again in our turn.
                    self.deferred += 1
                    delay = min(MAX_RETRY_SECONDS, budget.retry_in(METHOD, self.channel, waiter=self))
                    self._timer = threading.Timer(max(delay, 0.05), self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                    return
                content, self._pending = self._pending, None
            self._send(content, prepaid=budget is not None)

    def _send(self, content: Content, *, prepaid: bool = False) -> bool:
        """One chat.update; the caller holds `_send_lock`."""
        with self._lock:
            self._last_sent = self._clock()
        try:
            call(
                self.client,
                METHOD,
                prepaid=prepaid,
                channel=self.channel,
                ts=self.ts,
                text=content.text,
                blocks=content.blocks,
            )
            self.sent += 1
            return True
        except SlackError as exc:
            self.failures += 1
            self.last_error = exc.code
            log.warning(
                "%s: could not update the Slack message %s/%s: %s",
                self.label or "progress",
                self.channel,
                self.ts,
                exc.code,
            )
            return False
        finally:
            with self._lock:
                # Space the next send from the end of this one: a 429 retry inside the call took time too.
                self._last_sent = self._clock()
