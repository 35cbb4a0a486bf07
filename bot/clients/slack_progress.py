"""One Slack message kept up to date while a long job runs, within Slack's `chat.update` budget.

`chat.update` is tier 3 (about 50 a minute per workspace), and a build reports progress many times a
second. `ProgressMessage.update()` only records the latest content and never blocks the caller (the
build's log reader); a timer sends it no sooner than `interval` seconds after the previous send, so a
message gets at most one update per interval and never shows stale progress for longer than that.
`finish()` always sends the final content (after the same spacing), retrying once on failure, because
the final state is the one a user must see. Slack failures are logged and never break the job.
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

log = logging.getLogger(__name__)

MIN_INTERVAL_SECONDS = 2.0


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
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None  # Slack's error code of the last failed send

    def update(self, text: str, blocks: list[dict[str, Any]]) -> None:
        """Record the latest progress; it reaches Slack within `interval` seconds."""
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
                content, self._pending = self._pending, None
                self._timer = None
                if content is None or self._finished:
                    return
            self._send(content)

    def _send(self, content: Content) -> bool:
        """One chat.update; the caller holds `_send_lock`."""
        with self._lock:
            self._last_sent = self._clock()
        try:
            call(self.client, "chat.update", channel=self.channel, ts=self.ts, text=content.text, blocks=content.blocks)
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
