"""Schedules inside the bot process (APScheduler 3.x), derived from the catalog.

- `rebuild:cron:<expr>`: one job per distinct cron (`schedule`, crontab(5), UTC) for all images that share it;
- `rebuild:lts`: every DCS_BASE_CHECK_MINUTES, every image on an `-LTS` base (also those with a cron of
  their own: Databricks patches those tags at any time, a weekly cron alone would miss a week of fixes);
- `ratelimit:watch`: every DCS_RATELIMIT_MINUTES, the Docker Hub pull budget;
- `rebuild:drain`: every DRAIN_SECONDS, runs what is still queued (a COUNT on the queue when there is nothing);
- `scheduler:sync`: every 10 s, re-reads the catalog when it changed (another process, e.g. the CLI);
- `store:prune`: at start and then daily, retention by age (bot/ops/retention.py, DCS_KEEP_*_DAYS).

A schedule that fires never checks images itself: it puts them in the due-queue (bot/store/schedule.py)
and drains it. Draining is a recorded, exclusive run (`rebuild:queue`, bot/ops/runs.py) that checks every
queued image with one manifest HEAD per distinct base; when another rebuild holds the lock (a long run,
`/dcs rebuild`, `dcs rebuild` in another process) the images simply stay queued and the next drain takes
them, so no image is ever dropped, also across restarts. This module only decides WHEN; the work is bot/ops.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from bot.config import Config
from bot.domain.catalog import ImageSpec
from bot.domain.clock import utcnow
from bot.domain.cron import CronSchedule, next_fire, parse_cron
from bot.ops.rebuild import rebuild_run
from bot.ops.retention import PRUNE_JOB, prune_job
from bot.ops.runs import mark_interrupted_runs, run_job
from bot.services import Services
from bot.store import JobRun, RunOutcome, run_group
from bot.workers import Workers
from jobs.ratelimit import ratelimit_job

log = logging.getLogger(__name__)

LTS_JOB = "rebuild:lts"
CRON_JOB_PREFIX = "rebuild:cron:"
QUEUE_JOB = "rebuild:queue"  # the recorded run that checks the queued images
DRAIN_JOB = "rebuild:drain"
RATELIMIT_JOB = "ratelimit:watch"
SYNC_JOB = "scheduler:sync"
RESUME_JOB = "rebuild:resume"
MISFIRE_GRACE_SECONDS = 15 * 60  # a run missed by less than this (busy or restarting bot) still happens
SYNC_SECONDS = 10  # a COUNT and a MAX on the images table: cheap enough to notice CLI edits quickly
DRAIN_SECONDS = 30  # how soon images a busy lock kept waiting are checked after it is free
RESUME_DELAY_SECONDS = 60
PRUNE_HOURS = 24
PRUNE_DELAY_SECONDS = 30  # the first prune waits until start-up is over
# The catalog fingerprint each scheduler last synced to (the periodic sync compares with it).
_fingerprints: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------- what to schedule (pure)


@dataclass(frozen=True)
class Schedule:
    job_id: str
    cron: str | None = None
    minutes: int | None = None

    def describe(self) -> str:
        return f"cron {self.cron} UTC" if self.cron else f"every {self.minutes} min"


def lts_images(specs: Iterable[ImageSpec]) -> list[str]:
    """Images the default interval covers: every image on an -LTS base, with or without a cron."""
    return [s.name for s in specs if s.base_info.lts]


def cron_images(specs: Iterable[ImageSpec], cron: str) -> list[str]:
    return [s.name for s in specs if s.schedule == cron]


def uses_docker_hub(specs: Iterable[ImageSpec]) -> bool:
    return any(s.base_ref.on_docker_hub or s.repository_ref.on_docker_hub for s in specs)


def desired_schedules(specs: list[ImageSpec], config: Config) -> list[Schedule]:
    crons = sorted({s.schedule for s in specs if s.schedule})
    wanted = [Schedule(CRON_JOB_PREFIX + cron, cron=cron) for cron in crons]
    if lts_images(specs):
        wanted.append(Schedule(LTS_JOB, minutes=config.base_check_minutes))
    if config.dockerhub_username or uses_docker_hub(specs):
        wanted.append(Schedule(RATELIMIT_JOB, minutes=config.ratelimit_minutes))
    return wanted


class CrontabTrigger(BaseTrigger):
    """An APScheduler trigger that fires exactly when crontab(5) would (bot/domain/cron.py), in UTC."""

    __slots__ = ("schedule",)

    def __init__(self, expr: str) -> None:
        self.schedule: CronSchedule = parse_cron(expr)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None:
            return next_fire(self.schedule, now)
        # never the previous fire time again; runs missed since then are the scheduler's to coalesce
        return next_fire(self.schedule, previous_fire_time + timedelta(microseconds=1))

    def __str__(self) -> str:
        return f"crontab[{self.schedule.text}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.schedule.text!r}, timezone='UTC')>"


# ---------------------------------------------------------------- the jobs


def queue_and_drain(services: Services, job_id: str, names: list[str]) -> None:
    """A schedule fired: its images are due; queue them, then check whatever is queued."""
    if names:
        services.store.queue_images(names, job_id)
        log.info("%s: %d image(s) due", job_id, len(names))
    drain_queue(services)


def drain_queue(services: Services) -> int:
    """Check every queued image in recorded, exclusive runs until the queue is empty or the lock is busy.

    Returns how many images were checked. An image removed from the catalog meanwhile leaves the queue.
    """
    store = services.store
    checked = 0
    while True:
        queued = store.queued_images()
        if not queued:
            return checked
        started = utcnow()
        known = set(store.image_names())
        gone = [n for n in queued if n not in known]
        if gone:
            store.dequeue_images(gone, started)
        names = [n for n in queued if n in known]
        if not names:
            continue
        try:
            summary = rebuild_run(services, QUEUE_JOB, names, busy="defer")
        except Exception:
            # Recorded as failed/error in job_runs already; a retry every DRAIN_SECONDS would only repeat it.
            store.dequeue_images(names, started)
            log.exception("%s: the run over %d queued image(s) failed", QUEUE_JOB, len(names))
            return checked
        if summary is None:  # another rebuild holds the lock: the images stay queued for the next drain
            log.info("%s: %d image(s) wait for the running rebuild", QUEUE_JOB, len(names))
            return checked
        store.dequeue_images(names, started)
        checked += len(names)


def _scheduled_cron(services: Services, cron: str) -> None:
    queue_and_drain(services, CRON_JOB_PREFIX + cron, cron_images(services.store.list_images(), cron))


def _scheduled_lts(services: Services) -> None:
    queue_and_drain(services, LTS_JOB, lts_images(services.store.list_images()))


def _drain_if_queued(services: Services) -> None:
    if services.store.queue_size():
        drain_queue(services)


def _resume(services: Services, names: list[str] | None) -> None:
    known = {s.name for s in services.store.list_images()}
    keep = [n for n in names if n in known] if names is not None else None
    rebuild_run(services, RESUME_JOB, keep)


def _watch(services: Services) -> None:
    def work() -> tuple[RunOutcome, str]:
        outcome = ratelimit_job(services)
        if outcome.budget is None:
            return "failed", outcome.error or "no budget"
        detail = outcome.budget.describe() + (f"; {outcome.posted} posted" if outcome.posted else "")
        return ("failed" if outcome.error else "succeeded"), detail

    run_job(services, RATELIMIT_JOB, work)


# ---------------------------------------------------------------- APScheduler wiring


def create_scheduler(workers: int = 3):
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )


def _trigger(schedule: Schedule):
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron:
        return CrontabTrigger(schedule.cron)
    return IntervalTrigger(minutes=schedule.minutes or 60, timezone=UTC)


def sync_schedules(scheduler: Any, services: Services) -> dict[str, list[str]]:
    """Make the scheduler's rebuild/watch jobs match the catalog now; returns what changed.

    A job whose trigger did not change keeps its next run time (re-adding would restart an interval).
    """
    specs = services.store.list_images()
    wanted = {s.job_id: s for s in desired_schedules(specs, services.config)}
    changes: dict[str, list[str]] = {"added": [], "updated": [], "removed": []}
    managed = (LTS_JOB, RATELIMIT_JOB)
    for job in scheduler.get_jobs():
        if (job.id.startswith(CRON_JOB_PREFIX) or job.id in managed) and job.id not in wanted:
            scheduler.remove_job(job.id)
            changes["removed"].append(job.id)
    for job_id, schedule in wanted.items():
        trigger = _trigger(schedule)
        existing = scheduler.get_job(job_id)
        if existing is not None and str(existing.trigger) == str(trigger):
            continue
        func: Callable[..., None]
        args: list[Any]
        if schedule.cron:
            func, args = _scheduled_cron, [services, schedule.cron]
        elif job_id == LTS_JOB:
            func, args = _scheduled_lts, [services]
        else:
            func, args = _watch, [services]
        scheduler.add_job(
            func,
            trigger,
            args=args,
            id=job_id,
            name=f"{job_id} ({schedule.describe()})",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
        changes["updated" if existing is not None else "added"].append(job_id)
    _fingerprints[scheduler] = services.store.catalog_fingerprint()
    if any(changes.values()):
        log.info("schedules synced: %s", {k: v for k, v in changes.items() if v})
    return changes


def follow_catalog(scheduler: Any, services: Services) -> None:
    """Make `scheduler` follow this process's catalog changes at once (`services.catalog_changed()`).

    The sync runs in a short thread of its own, so the operation that changed the catalog (a Slack
    command, before its ack) never waits for it.
    """
    services.scheduler = scheduler

    def changed() -> None:
        threading.Thread(target=_sync_quietly, args=(scheduler, services), name="schedule-sync", daemon=True).start()

    services.catalog_listeners.append(changed)


def _sync_quietly(scheduler: Any, services: Services) -> None:
    try:
        sync_schedules(scheduler, services)
    except Exception:
        log.exception("schedules could not follow a catalog change; the periodic sync tries again")


def _sync_if_changed(services: Services, scheduler: Any) -> None:
    if services.store.catalog_fingerprint() != _fingerprints.get(scheduler):
        sync_schedules(scheduler, services)


def start_scheduler(services: Services, *, start: bool = True) -> Any:
    """Recover interrupted runs, register every schedule, start. Returns the scheduler."""
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = create_scheduler()
    interrupted = mark_interrupted_runs(services.store)
    # an interrupted queue run left its images in the queue: the first drain checks them, no resume needed
    rebuilds = [r for r in interrupted if run_group(r.job_id) == "rebuild" and r.job_id != QUEUE_JOB]
    if rebuilds:
        names: list[str] | None = _resume_names(rebuilds)
        log.warning(
            "rebuild runs %s were interrupted; running them again in %s s",
            [r.id for r in rebuilds],
            RESUME_DELAY_SECONDS,
        )
        scheduler.add_job(
            _resume,
            DateTrigger(datetime.now(UTC) + timedelta(seconds=RESUME_DELAY_SECONDS)),
            args=[services, names],
            id=RESUME_JOB,
            replace_existing=True,
        )
    first_prune = datetime.now(UTC) + timedelta(seconds=PRUNE_DELAY_SECONDS)
    for job_id, func, args, seconds, first in (
        (PRUNE_JOB, prune_job, [services], PRUNE_HOURS * 3600, first_prune),
        (DRAIN_JOB, _drain_if_queued, [services], DRAIN_SECONDS, None),
        (SYNC_JOB, _sync_if_changed, [services, scheduler], SYNC_SECONDS, None),
    ):
        extra = {"next_run_time": first} if first else {}
        scheduler.add_job(
            func,
            IntervalTrigger(seconds=seconds, timezone=UTC),
            args=args,
            id=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            **extra,
        )
    follow_catalog(scheduler, services)
    sync_schedules(scheduler, services)
    if start:
        scheduler.start()
    return scheduler


def _resume_names(runs: list[JobRun]) -> list[str] | None:
    """The images the interrupted runs covered; None when one of them covered the whole catalog."""
    names: list[str] = []
    for run in runs:
        run_names = json.loads(run.detail or "{}").get("names")
        if run_names is None:
            return None
        names.extend(n for n in run_names if n not in names)
    return names


def starter(services: Services, workers: Workers, args: Any) -> Callable[[], None] | None:
    """bot.__main__ BACKGROUND_STARTERS hook: the scheduler, unless `dcs-bot --no-scheduler`."""
    if getattr(args, "no_scheduler", False):
        log.info("scheduler off (--no-scheduler)")
        return None
    scheduler = start_scheduler(services)

    def stop() -> None:
        scheduler.shutdown(wait=False)

    return stop
