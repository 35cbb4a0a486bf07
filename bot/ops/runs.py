"""Recorded, exclusive runs: every scheduled or manual run is a `job_runs` row (start, end, outcome).

A run first claims its lock group ("rebuild", "ratelimit"), so a scheduled run, `/dcs rebuild` and
`dcs rebuild` (another process) never overlap. Runs a crash left "running" are marked interrupted at
start-up (when their process is gone).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.domain.clock import parse_time
from bot.domain.records import JobRun, RunOutcome
from bot.errors import DcsError
from bot.services import Services
from bot.store import Store, run_group

log = logging.getLogger(__name__)

MANUAL_JOB = "rebuild:manual"  # `/dcs rebuild` and `dcs rebuild`
STALE_FOREIGN_RUN = timedelta(hours=24)  # a "running" row of another host older than this is dead
OnBusy = Literal["skip", "raise", "defer"]


class JobBusy(DcsError):
    """Another run of the same kind is in progress."""

    exit_code = 75  # EX_TEMPFAIL


def claim_run(store: Store, job_id: str, detail: dict[str, Any] | None = None) -> int | None:
    """Start a run of `job_id` unless one of its group is running; the new run's id, or None."""
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), **(detail or {})})
    return store.claim_run(job_id, info)


def mark_interrupted_runs(store: Store) -> list[JobRun]:
    """Runs left "running" by a process that is gone; returns them (now "interrupted")."""
    host = socket.gethostname()
    now = datetime.now(UTC)
    dead = []
    for run in store.running_runs():
        try:
            info = json.loads(run.detail or "{}")
        except ValueError:
            info = {}
        if info.get("host") == host:
            gone = info.get("pid") == os.getpid() or not _alive(int(info.get("pid") or 0))
        else:
            started = parse_time(run.started_at)
            gone = started is None or now - started > STALE_FOREIGN_RUN
        if gone:
            dead.append(run)
    for run in dead:
        store.finish_run(run.id, "interrupted", run.detail)
    return dead


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_job(
    services: Services,
    job_id: str,
    fn: Callable[[], tuple[RunOutcome, str]],
    *,
    detail: dict[str, Any] | None = None,
    busy: OnBusy = "skip",
) -> tuple[RunOutcome, str] | None:
    """Run `fn` as one recorded run of `job_id`. `fn` returns (outcome, detail).

    When a run of the same group is in progress: `busy="skip"` records a skipped run and returns None,
    `busy="raise"` raises JobBusy (manual triggers tell the person), `busy="defer"` returns None and records
    nothing (the caller keeps the work queued for the next attempt).
    """
    store = services.store
    run_id = claim_run(store, job_id, detail)
    if run_id is None:
        current = store.running_run(job_id)
        what, since, which = (current.job_id, current.started_at, current.id) if current else ("?", "?", "?")
        if busy == "defer":
            log.debug("%s deferred: run #%s still in progress", job_id, which)
            return None
        if busy == "raise":
            raise JobBusy(
                f"A {run_group(job_id)} run is already in progress ({what}, started {since}); "
                "try again when it has finished."
            )
        store.record_skip(job_id, f"run #{which} ({what}) was still running")
        log.info("%s skipped: run #%s still in progress", job_id, which)
        return None
    log.info("%s started (run #%s)", job_id, run_id)
    try:
        outcome, text = fn()
    except DcsError as exc:
        store.finish_run(run_id, "failed", services.redactor(exc.message))
        log.warning("%s failed: %s", job_id, type(exc).__name__)
        raise
    except BaseException:
        store.finish_run(run_id, "error", "unexpected error; see the bot's log")
        log.exception("%s crashed (run #%s)", job_id, run_id)
        raise
    store.finish_run(run_id, outcome, text)
    log.info("%s finished (run #%s): %s", job_id, run_id, outcome)
    return outcome, text
