"""Cluster tracking as plain functions taking services: follow one launch, resume the pending ones.

They run in the bot's own worker pool (never Bolt's listener threads): `clusters/get` with backoff until
the cluster runs or stops. `notify(launch)` is called on every change; the Slack glue passes one that
updates the launch's message. At start-up, launches a previous process left `creating` or `pending`
are handed to the pool again, so a restart never leaves a message stuck on PENDING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.launcher import Launch, Launcher
from bot.services import Services

log = logging.getLogger(__name__)

Notify = Callable[[Launch], None]
Submit = Callable[..., Any]  # Workers.submit(key, fn, *args)


def launcher_for(services: Services) -> Launcher:
    """The process's launcher (tests put one with short polling intervals in `services.extras`)."""
    launcher = services.extras.get("launcher")
    if launcher is None:
        launcher = Launcher(services)
        services.extras["launcher"] = launcher
    return launcher


def job_key(launch_id: int) -> str:
    return f"launch:{launch_id}"


def track_launch(services: Services, launch_id: int, notify: Notify | None = None) -> Launch:
    """Follow one launch to RUNNING / TERMINATED / ERROR; a failing `notify` never stops the tracking."""
    def safe_notify(launch: Launch) -> None:
        if notify is None:
            return
        try:
            notify(launch)
        except Exception:
            log.exception("launch %s: could not report state %s", launch.id, launch.state)

    final = launcher_for(services).track(launch_id, safe_notify)
    log.info("launch %s finished tracking: %s (%s)", launch_id, final.status, final.state)
    return final


def resume_pending_launches(services: Services, submit: Submit,
                            notify_for: Callable[[Launch], Notify | None] = lambda _launch: None) -> list[int]:
    """Queue tracking for every launch still creating/pending (called once at start-up)."""
    resumed = []
    for launch in launcher_for(services).pending():
        services.store.audit(actor=None, action="launch.resume", target=f"{launch.image}#{launch.id}",
                             outcome="queued", detail=launch.cluster_id or "no cluster id yet")
        submit(job_key(launch.id), track_launch, services, launch.id, notify_for(launch))
        resumed.append(launch.id)
    if resumed:
        log.info("resumed tracking of launches %s", resumed)
    return resumed
