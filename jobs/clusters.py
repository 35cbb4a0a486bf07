"""Cluster tracking: follow launches until they run or stop.

Each poll is one short job in the bot's worker pool (never Bolt's listener threads); between polls a
timer waits out the backoff, so a ten-minute cluster start does not hold one of the few workers that
builds need. Every change goes to the notifier port (`services.notifier.launch_changed`: the Slack
notifier updates the launch message). At start-up, launches a previous process left `creating`, `checking`
or `pending` are followed again, so a restart never leaves a message stuck on PENDING, and a create whose
outcome is unknown is looked up until a lookup succeeds (bot/ops/launch_check.py). The composition
root puts the process's Tracker in `services.tracker`, where the launch operations find it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bot.domain.records import Launch
from bot.errors import DcsError
from bot.ops.launch import TrackState, launcher_for
from bot.services import Services
from bot.workers import Workers

log = logging.getLogger(__name__)

Submit = Callable[..., Any]  # Workers.submit(key, fn, *args)
RETRY_SECONDS = 0.5


def job_key(launch_id: int) -> str:
    return f"launch:{launch_id}"


class Tracker:
    """Follows launches: a poll in the pool, a timer for the wait, again until the launch is final."""

    def __init__(self, services: Services, submit: Submit) -> None:
        self.services = services
        self.submit = submit
        self._timers: dict[int, threading.Timer] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def follow(self, launch_id: int, state: TrackState | None = None) -> None:
        state = state or launcher_for(self.services).begin(keep_checking=True)
        try:
            ticket = self.submit(job_key(launch_id), self._poll, launch_id, state)
        except DcsError as exc:  # the pool is full or shutting down: the next start-up resumes it
            log.warning("launch %s: could not queue its next poll: %s", launch_id, exc.message)
            return
        if getattr(ticket, "duplicate", False):
            # The previous poll (which armed this timer) is still leaving the pool: try again shortly
            # rather than let the chain of polls end here.
            self._later(launch_id, state, RETRY_SECONDS)

    def _poll(self, launch_id: int, state: TrackState) -> Launch:
        launch, changed, delay = launcher_for(self.services).step(launch_id, state)
        if changed:
            self._report(launch)
        if delay is not None:
            self._later(launch_id, state, delay)
        else:
            log.info("launch %s: followed to the end: %s (%s)", launch_id, launch.status, launch.state)
        return launch

    def _report(self, launch: Launch) -> None:
        try:
            self.services.notifier.launch_changed(launch)
        except Exception:  # a Slack hiccup must not stop the tracking
            log.exception("launch %s: could not report state %s", launch.id, launch.state)

    def _later(self, launch_id: int, state: TrackState, delay: float) -> None:
        with self._lock:
            if self._stopped:
                return
            timer = threading.Timer(delay, self._fire, args=(launch_id, state))
            timer.daemon = True
            timer.name = f"launch-{launch_id}-wait"
            self._timers[launch_id] = timer
            timer.start()

    def _fire(self, launch_id: int, state: TrackState) -> None:
        with self._lock:
            self._timers.pop(launch_id, None)
            if self._stopped:
                return
        self.follow(launch_id, state)

    def waiting(self) -> list[int]:
        with self._lock:
            return sorted(self._timers)

    def stop(self) -> None:
        """Cancel the waits; launches still pending are resumed by the next start-up."""
        with self._lock:
            self._stopped = True
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()


def resume_pending_launches(services: Services, tracker: Tracker) -> list[int]:
    """Follow again every launch still creating/pending (called once at start-up)."""
    resumed = []
    for launch in launcher_for(services).pending():
        services.store.audit(
            actor=None,
            action="launch.resume",
            target=f"{launch.image}#{launch.id}",
            outcome="queued",
            detail=launch.cluster_id or "no cluster id yet",
        )
        tracker.follow(launch.id)
        resumed.append(launch.id)
    if resumed:
        log.info("resumed tracking of launches %s", resumed)
    return resumed


def resume_tracking(services: Services, workers: Workers, args: Any = None) -> Callable[[], None]:
    """bot.__main__ start-up hook: follow the launches a previous process left pending (no scheduler needed)."""
    tracker = tracker_for(services, workers)
    resume_pending_launches(services, tracker)
    return tracker.stop


def tracker_for(services: Services, workers: Workers) -> Tracker:
    """The process's tracker (created once, kept in `services.tracker`)."""
    if not isinstance(services.tracker, Tracker):
        services.tracker = Tracker(services, workers.submit)
    return services.tracker
