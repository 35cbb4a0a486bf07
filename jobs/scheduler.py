"""Schedules inside the bot process (APScheduler 3.x), derived from the catalog.

- `rebuild:image:<name>`: an image's own cron (`schedule`, UTC);
- `rebuild:lts`: every DCS_BASE_CHECK_MINUTES, the images on `-LTS` bases without a cron of their own;
- `ratelimit:watch`: every DCS_RATELIMIT_MINUTES, the Docker Hub pull budget;
- `scheduler:sync`: every 10 s, re-reads the catalog when it changed (another process, e.g. the CLI).

Every run is a row in `job_runs` (start, end, outcome). A run first claims its lock group ("rebuild",
"ratelimit") with one atomic INSERT … WHERE NOT EXISTS, so a scheduled run, `/dcs rebuild` and
`dcs rebuild` (another process) never overlap. Runs a crash left "running" are marked interrupted at
start-up, and a rebuild cut short is run again a minute later.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.catalog import ImageSpec
from bot.config import Config
from bot.cron import cron_trigger
from bot.errors import DcsError
from bot.services import Services
from bot.store import Store, parse_time, utcnow

log = logging.getLogger(__name__)

LTS_JOB = "rebuild:lts"
IMAGE_JOB_PREFIX = "rebuild:image:"
RATELIMIT_JOB = "ratelimit:watch"
SYNC_JOB = "scheduler:sync"
RESUME_JOB = "rebuild:resume"
MANUAL_JOB = "rebuild:manual"
MISFIRE_GRACE_SECONDS = 15 * 60  # a run missed by less than this (busy or restarting bot) still happens
SYNC_SECONDS = 10  # a COUNT and a MAX on the images table: cheap enough to notice CLI edits quickly
RESUME_DELAY_SECONDS = 60
STALE_FOREIGN_RUN = timedelta(hours=24)  # a "running" row of another host older than this is dead


class JobBusy(DcsError):
    """Another run of the same kind is in progress."""

    exit_code = 75  # EX_TEMPFAIL


# ---------------------------------------------------------------- what to schedule (pure)


@dataclass(frozen=True)
class Schedule:
    job_id: str
    cron: str | None = None
    minutes: int | None = None
    names: tuple[str, ...] | None = None  # the images of a per-image job

    def describe(self) -> str:
        return f"cron {self.cron} UTC" if self.cron else f"every {self.minutes} min"


def lts_images(specs: Iterable[ImageSpec]) -> list[str]:
    """Images the default interval covers: on an -LTS base, without a cron of their own."""
    return [s.name for s in specs if not s.schedule and s.base_info.lts]


def uses_docker_hub(specs: Iterable[ImageSpec]) -> bool:
    return any(s.base_ref.on_docker_hub or s.repository_ref.on_docker_hub for s in specs)


def desired_schedules(specs: list[ImageSpec], config: Config) -> list[Schedule]:
    wanted = [Schedule(IMAGE_JOB_PREFIX + s.name, cron=s.schedule, names=(s.name,)) for s in specs if s.schedule]
    if lts_images(specs):
        wanted.append(Schedule(LTS_JOB, minutes=config.base_check_minutes))
    if config.dockerhub_username or uses_docker_hub(specs):
        wanted.append(Schedule(RATELIMIT_JOB, minutes=config.ratelimit_minutes))
    return wanted


# ---------------------------------------------------------------- job runs and the lock


def _group(job_id: str) -> str:
    return job_id.split(":", 1)[0]


def claim_run(store: Store, job_id: str, detail: dict[str, Any] | None = None) -> int | None:
    """Start a run of `job_id` unless one of its group is running; the new run's id, or None."""
    group = _group(job_id)
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), **(detail or {})})
    with store.transaction() as conn:
        # One statement: atomic across threads and processes sharing the database.
        cur = conn.execute(
            "INSERT INTO job_runs (job_id, started_at, outcome, detail) SELECT ?, ?, 'running', ?"
            " WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE outcome = 'running'"
            " AND (job_id = ? OR job_id LIKE ?))",
            (job_id, utcnow(), info, group, f"{group}:%"),
        )
        return cur.lastrowid if cur.rowcount == 1 else None


def running_run(store: Store, job_id: str) -> dict[str, Any] | None:
    group = _group(job_id)
    rows = store.query(
        "SELECT * FROM job_runs WHERE outcome = 'running' AND (job_id = ? OR job_id LIKE ?) ORDER BY id LIMIT 1",
        (group, f"{group}:%"),
    )
    return rows[0] if rows else None


def finish_run(store: Store, run_id: int, outcome: str, detail: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute(
            "UPDATE job_runs SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
            (utcnow(), outcome, detail, run_id),
        )


def record_skip(store: Store, job_id: str, busy: dict[str, Any]) -> None:
    now = utcnow()
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO job_runs (job_id, started_at, finished_at, outcome, detail) VALUES (?, ?, ?, ?, ?)",
            (job_id, now, now, "skipped", f"run #{busy['id']} ({busy['job_id']}) was still running"),
        )


def job_runs(store: Store, job_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    if job_id:
        return store.query("SELECT * FROM job_runs WHERE job_id = ? ORDER BY id DESC LIMIT ?", (job_id, limit))
    return store.query("SELECT * FROM job_runs ORDER BY id DESC LIMIT ?", (limit,))


def mark_interrupted_runs(store: Store) -> list[dict[str, Any]]:
    """Runs left "running" by a process that is gone; returns them (now "interrupted")."""
    host = socket.gethostname()
    now = datetime.now(UTC)
    dead = []
    for row in store.query("SELECT * FROM job_runs WHERE outcome = 'running'"):
        try:
            info = json.loads(row["detail"] or "{}")
        except ValueError:
            info = {}
        if info.get("host") == host:
            gone = info.get("pid") == os.getpid() or not _alive(int(info.get("pid") or 0))
        else:
            started = parse_time(row["started_at"])
            gone = started is None or now - started > STALE_FOREIGN_RUN
        if gone:
            dead.append(row)
    for row in dead:
        finish_run(store, row["id"], "interrupted", row["detail"])
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
    fn: Callable[[], tuple[str, str]],
    *,
    detail: dict[str, Any] | None = None,
    busy: str = "skip",
) -> tuple[str, str] | None:
    """Run `fn` as one recorded run of `job_id`. `fn` returns (outcome, detail).

    When a run of the same group is in progress: `busy="skip"` records a skipped run and returns None,
    `busy="raise"` raises JobBusy (manual triggers tell the person).
    """
    store = services.store
    run_id = claim_run(store, job_id, detail)
    if run_id is None:
        current = running_run(store, job_id) or {"id": "?", "job_id": "?", "started_at": "?"}
        if busy == "raise":
            raise JobBusy(
                f"A {_group(job_id)} run is already in progress ({current['job_id']}, started "
                f"{current['started_at']}); try again when it has finished."
            )
        record_skip(store, job_id, current)
        log.info("%s skipped: run #%s still in progress", job_id, current["id"])
        return None
    log.info("%s started (run #%s)", job_id, run_id)
    try:
        outcome, text = fn()
    except DcsError as exc:
        finish_run(store, run_id, "failed", services.redactor(exc.message))
        log.warning("%s failed: %s", job_id, type(exc).__name__)
        raise
    except BaseException:
        finish_run(store, run_id, "error", "unexpected error; see the bot's log")
        log.exception("%s crashed (run #%s)", job_id, run_id)
        raise
    finish_run(store, run_id, outcome, text)
    log.info("%s finished (run #%s): %s", job_id, run_id, outcome)
    return outcome, text


# ---------------------------------------------------------------- the jobs


def rebuild_run(
    services: Services,
    job_id: str,
    names: list[str] | None,
    *,
    by_hand: bool = False,
    source: str = "schedule",
    requester: str | None = None,
    busy: str = "skip",
    **kwargs: Any,
) -> Any:
    """A recorded, exclusive rebuild run; returns the RebuildSummary (None when skipped)."""
    from jobs.rebuild import rebuild_job

    result: dict[str, Any] = {}

    def work() -> tuple[str, str]:
        summary = rebuild_job(services, names, by_hand=by_hand, source=source, requester=requester, **kwargs)
        result["summary"] = summary
        run = summary.run
        counts = {s: len(run.by_status(s)) for s in ("rebuilt", "failed", "skipped", "unchanged")}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no images"
        if summary.problems:
            text += "; " + "; ".join(summary.problems)
        return ("failed" if run.failed else "succeeded"), text

    run_job(services, job_id, work, detail={"names": names}, busy=busy)
    return result.get("summary")


def _scheduled_lts(services: Services) -> None:
    names = lts_images(services.store.list_images())
    if names:
        rebuild_run(services, LTS_JOB, names)


def _scheduled_image(services: Services, name: str) -> None:
    try:
        rebuild_run(services, IMAGE_JOB_PREFIX + name, [name])
    except DcsError as exc:  # e.g. removed from the catalog a moment ago; recorded in job_runs already
        log.warning("scheduled rebuild of %s: %s", name, exc.message)


def _resume(services: Services, names: list[str] | None) -> None:
    known = {s.name for s in services.store.list_images()}
    keep = [n for n in names if n in known] if names is not None else None
    rebuild_run(services, RESUME_JOB, keep)


def _watch(services: Services) -> None:
    from jobs.ratelimit import ratelimit_job

    def work() -> tuple[str, str]:
        outcome = ratelimit_job(services)
        if outcome.budget is None:
            return "failed", outcome.error or "no budget"
        detail = outcome.budget.describe() + (f"; {outcome.posted} posted" if outcome.posted else "")
        return ("failed" if outcome.error else "succeeded"), detail

    run_job(services, RATELIMIT_JOB, work)


# ---------------------------------------------------------------- APScheduler wiring


def create_scheduler(workers: int = 3):  # noqa: ANN201 - BackgroundScheduler (APScheduler imported lazily)
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    return BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=workers)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
    )


def _trigger(schedule: Schedule):  # noqa: ANN202
    from apscheduler.triggers.interval import IntervalTrigger

    if schedule.cron:
        return cron_trigger(schedule.cron)
    return IntervalTrigger(minutes=schedule.minutes or 60, timezone=UTC)


def catalog_fingerprint(store: Store) -> str:
    row = store.query("SELECT COUNT(*) AS n, MAX(updated_at) AS last FROM images")[0]
    return f"{row['n']}:{row['last']}"


def sync_schedules(scheduler: Any, services: Services) -> dict[str, list[str]]:
    """Make the scheduler's rebuild/watch jobs match the catalog now; returns what changed.

    A job whose trigger did not change keeps its next run time (re-adding would restart an interval).
    """
    specs = services.store.list_images()
    wanted = {s.job_id: s for s in desired_schedules(specs, services.config)}
    changes: dict[str, list[str]] = {"added": [], "updated": [], "removed": []}
    managed = (LTS_JOB, RATELIMIT_JOB)
    for job in scheduler.get_jobs():
        if (job.id.startswith(IMAGE_JOB_PREFIX) or job.id in managed) and job.id not in wanted:
            scheduler.remove_job(job.id)
            changes["removed"].append(job.id)
    for job_id, schedule in wanted.items():
        trigger = _trigger(schedule)
        existing = scheduler.get_job(job_id)
        if existing is not None and str(existing.trigger) == str(trigger):
            continue
        if schedule.names:
            func, args = _scheduled_image, [services, schedule.names[0]]
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
    services.extras["catalog_fingerprint"] = catalog_fingerprint(services.store)
    if any(changes.values()):
        log.info("schedules synced: %s", {k: v for k, v in changes.items() if v})
    return changes


def catalog_changed(services: Services) -> None:
    """Call after adding, changing or removing an image: the schedules follow at once (no-op without one)."""
    scheduler = services.extras.get("scheduler")
    if scheduler is not None:
        sync_schedules(scheduler, services)


def _sync_if_changed(services: Services, scheduler: Any) -> None:
    if catalog_fingerprint(services.store) != services.extras.get("catalog_fingerprint"):
        sync_schedules(scheduler, services)


def start_scheduler(services: Services, *, start: bool = True) -> Any:
    """Recover interrupted runs, register every schedule, start. Returns the scheduler."""
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler = create_scheduler()
    interrupted = mark_interrupted_runs(services.store)
    rebuilds = [r for r in interrupted if _group(r["job_id"]) == "rebuild"]
    if rebuilds:
        names: list[str] | None = []
        for row in rebuilds:
            run_names = json.loads(row["detail"] or "{}").get("names")
            if run_names is None:
                names = None
                break
            names.extend(n for n in run_names if n not in names)
        log.warning(
            "rebuild runs %s were interrupted; running them again in %s s",
            [r["id"] for r in rebuilds],
            RESUME_DELAY_SECONDS,
        )
        scheduler.add_job(
            _resume,
            DateTrigger(datetime.now(UTC) + timedelta(seconds=RESUME_DELAY_SECONDS)),
            args=[services, names],
            id=RESUME_JOB,
            replace_existing=True,
        )
    scheduler.add_job(
        _sync_if_changed,
        IntervalTrigger(seconds=SYNC_SECONDS, timezone=UTC),
        args=[services, scheduler],
        id=SYNC_JOB,
        replace_existing=True,
    )
    services.extras["scheduler"] = scheduler
    sync_schedules(scheduler, services)
    if start:
        scheduler.start()
    return scheduler


def starter(ctx: Any, args: Any) -> Callable[[], None] | None:
    """bot.__main__ BACKGROUND_STARTERS hook: the scheduler, unless `dcs-bot --no-scheduler`."""
    if getattr(args, "no_scheduler", False):
        log.info("scheduler off (--no-scheduler)")
        return None
    scheduler = start_scheduler(ctx.services)
    ctx.extras["scheduler"] = scheduler

    def stop() -> None:
        scheduler.shutdown(wait=False)

    return stop
