"""Acks that leave the moment a listener calls `ack()`, not at Bolt's next 10 ms poll.

Bolt (with `process_before_response=False`, the right mode for a long-running bot) runs each listener in its
listener executor and has the request thread wait for the ack by polling: `while ack.response is None:
time.sleep(0.01)`. Every ack therefore waits at least one 10 ms sleep — the listener has rarely run by the
first check — and under load, when the listener thread is scheduled a little late, two or three of them. On a
busy 2-core machine that quantum, not the listener's own work, was most of a `/dcs` ack's time.

Two public extension points remove the wait without changing what listeners see:

* `PromptAck` (the app's first middleware) gives the request an `Ack` that also sets an event, and
  leaves that event for the request thread (each request replaces the one before; the listener's start takes it);
* `PromptAckExecutor` (the app's `listener_executor`) starts the listener as before and then, when called from
  a request thread that has such an event, waits on it — up to Slack's 3 s deadline — before returning to Bolt.
  The event is set by `ack()` or when the listener returns (or raises), whichever comes first.

When Bolt then checks `ack.response`, it is already there, so it returns the response without sleeping. The
listener keeps running in the executor after its ack (a `views.open` or `respond()` after `ack()` behaves as
before). Lazy listeners and anything submitted outside a request are started without waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

ACK_DEADLINE = 3.0  # seconds: Slack's, and Bolt's default `ack_timeout`

_pending = threading.local()  # the request thread's event, between the middleware and the listener's start


class _SignallingAck(Ack):
    def __init__(self, done: threading.Event) -> None:
        super().__init__()
        self._done = done

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._done.set()


class PromptAck(Middleware):
    """Bolt middleware: register it first with `app.use(PromptAck())` (a class, so Bolt calls `process` directly
    instead of working out a function's arguments on every request)."""

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # Bolt calls process(req=, resp=, next=)
    ) -> BoltResponse | None:
        done = threading.Event()
        req.context["ack"] = _SignallingAck(done)
        _pending.event = done  # Bolt starts the listener after the last middleware, in this thread
        return next()


class PromptAckExecutor(ThreadPoolExecutor):
    """Bolt's listener executor: returns from `submit` once the listener has acked (see the module docstring)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        done: threading.Event | None = getattr(_pending, "event", None)
        _pending.event = None  # one listener per request: lazy functions submitted after it do not wait
        if done is None:
            return super().submit(fn, *args, **kwargs)

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                done.set()  # a listener that returns (or raises) without acking: Bolt decides what to answer

        future = super().submit(run)
        done.wait(ACK_DEADLINE)
        return future
