"""The bot's own bounded worker pool, separate from Bolt's listener executor.

Bolt runs listeners (and therefore acks) on a small thread pool; a build there would starve acks.
Long work (builds, pushes, launches) goes through `Workers.submit(key, fn, ...)`: at most `size` jobs
run at once, the rest wait in FIFO order and `position(key)` says where a job stands, so a user can be
told "queued, 2nd in line". A key identifies a job: submitting a key that is already queued or running
returns the existing ticket instead of starting twice.

A second, small lane (`quick`) runs short Slack I/O (posting the first message of a build, publishing
App Home) so that network waits, 429 back-offs included, never hold a listener thread either.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bot.errors import DcsError

log = logging.getLogger(__name__)


class QueueFull(DcsError):
    """Too many jobs are already waiting."""

    exit_code = 75  # EX_TEMPFAIL


@dataclass(frozen=True)
class Ticket:
    key: str
    position: int  # 0 = running now, n = n-th in line
    future: Future
    duplicate: bool = False  # the key was already queued or running: nothing new was started

    @property
    def queued(self) -> bool:
        return self.position > 0


@dataclass
class _Job:
    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Future


class Workers:
    def __init__(self, size: int, *, max_queued: int = 50, quick_threads: int = 4, name: str = "dcs-worker") -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.size = size
        self.max_queued = max_queued
        self._name = name
        self._cond = threading.Condition()
        self._queue: OrderedDict[str, _Job] = OrderedDict()
        self._running: dict[str, _Job] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._quick = ThreadPoolExecutor(max_workers=quick_threads, thread_name_prefix=f"{name}-quick")

    # ------------------------------------------------------------ long jobs
    def submit(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Ticket:
        """Queue `fn(*args, **kwargs)`. Never blocks; raises QueueFull when the line is too long."""
        with self._cond:
            if self._closed:
                raise QueueFull("The bot is shutting down and takes no new work. Try again in a minute.")
            existing = self._running.get(key) or self._queue.get(key)
            if existing is not None:
                return Ticket(key, self._position_locked(key) or 0, existing.future, duplicate=True)
            waiting = max(0, len(self._queue) - max(0, self.size - len(self._running)))
            if waiting >= self.max_queued:
                raise QueueFull(
                    f"{waiting} jobs are already waiting for the bot's {self.size} "
                    "worker(s). Try again when some have finished (`/dcs status` shows them)."
                )
            job = _Job(key, fn, args, kwargs, Future())
            self._queue[key] = job
            self._ensure_threads()
            position = self._position_locked(key) or 0
            self._cond.notify()
            return Ticket(key, position, job.future)

    def position(self, key: str) -> int | None:
        """0 while running, n while n-th in line, None when unknown or finished."""
        with self._cond:
            return self._position_locked(key)

    def snapshot(self) -> dict[str, int]:
        """Every known job key with its position (0 = running)."""
        with self._cond:
            out = {key: 0 for key in self._running}
            out.update({key: i for i, key in enumerate(self._queue, start=1)})
            return out

    def _position_locked(self, key: str) -> int | None:
        if key in self._running:
            return 0
        for index, queued in enumerate(self._queue, start=1):
            if queued == key:
                # Idle threads are about to pick the head of the line up: those jobs are not waiting.
                free = max(0, self.size - len(self._running))
                return 0 if index <= free else index - free
        return None

    def _ensure_threads(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        while len(self._threads) < self.size:
            thread = threading.Thread(target=self._loop, name=f"{self._name}-{len(self._threads) + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                key, job = self._queue.popitem(last=False)
                self._running[key] = job
            try:
                if job.future.set_running_or_notify_cancel():
                    self._run(job)
            finally:
                with self._cond:
                    self._running.pop(key, None)
                    self._cond.notify_all()

    @staticmethod
    def _run(job: _Job) -> None:
        try:
            job.future.set_result(job.fn(*job.args, **job.kwargs))
        except BaseException as exc:
            ref = uuid.uuid4().hex[:8]
            log.exception("background job %s failed (ref %s)", job.key, ref)
            exc.reference = ref  # type: ignore[attr-defined]
            job.future.set_exception(exc)

    # ------------------------------------------------------------ short Slack I/O
    def quick(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        def guarded() -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("quick task %s failed", getattr(fn, "__name__", fn))
                raise

        return self._quick.submit(guarded)

    # ------------------------------------------------------------ life cycle
    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._running

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout)

    def shutdown(self, *, wait: bool = True, timeout: float = 30.0) -> None:
        """Stop taking work; queued jobs are cancelled, running ones finish (up to `timeout`)."""
        with self._cond:
            self._closed = True
            for job in self._queue.values():
                job.future.cancel()
            self._queue.clear()
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join(timeout)
        self._quick.shutdown(wait=wait, cancel_futures=True)
