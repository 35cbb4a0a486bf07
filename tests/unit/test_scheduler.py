"""Schedules derived from the catalog, exclusive recorded runs, recovery of interrupted runs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, image_to_dict
from bot.ops.runs import MANUAL_JOB, JobBusy, claim_run, mark_interrupted_runs, run_job
from bot.services import Services
from bot.store import Store
from jobs.scheduler import (
    CRON_JOB_PREFIX,
    LTS_JOB,
    MISFIRE_GRACE_SECONDS,
    RATELIMIT_JOB,
    RESUME_JOB,
    create_scheduler,
    desired_schedules,
    lts_images,
    start_scheduler,
    sync_schedules,
)

LTS = "databricksruntime/standard:15.4-LTS"
PRIVATE = "myacr.azurecr.io/team/{name}"


def spec(name: str, base: str = LTS, **fields):
    return image_from_dict({"name": name, "base": base, "repository": PRIVATE.format(name=name), **fields})


@pytest.fixture
def services(tmp_db: str) -> Services:
    return build_services(
        load_config({"DCS_DB": tmp_db, "DCS_BASE_CHECK_MINUTES": "30", "DCS_RATELIMIT_MINUTES": "15"})
    )


@pytest.fixture
def scheduler(services: Services) -> Iterator[object]:
    sched = create_scheduler()
    sched.start(paused=True)  # next run times are computed, nothing runs
    yield sched
    sched.shutdown(wait=False)


def test_desired_schedules_follow_the_catalog(services: Services) -> None:
    specs = [
        spec("nightly", schedule="0 3 * * *"),
        spec("nightly-too", schedule="0 3 * * *"),
        spec("weekly-9x", base="databricksruntime/standard:9.x", schedule="0 4 * * 1"),
        spec("lts-a"),
        spec("lts-b"),
        spec("pinned-9x", base="databricksruntime/standard:9.x"),
    ]
    wanted = {s.job_id: s for s in desired_schedules(specs, services.config)}
    # one job per distinct cron, whatever the number of images on it
    assert set(wanted) == {CRON_JOB_PREFIX + "0 3 * * *", CRON_JOB_PREFIX + "0 4 * * 1", LTS_JOB, RATELIMIT_JOB}
    assert wanted[CRON_JOB_PREFIX + "0 3 * * *"].cron == "0 3 * * *"
    # images with a cron of their own are still in the LTS digest check when their base is an -LTS tag
    assert lts_images(specs) == ["nightly", "nightly-too", "lts-a", "lts-b"]
    assert wanted[LTS_JOB].minutes == 30
    assert wanted[RATELIMIT_JOB].minutes == 15  # the bases come from Docker Hub
    # A catalog entirely in a private registry, without Docker Hub credentials: no pull-budget watch.
    private = [spec("own", base="myacr.azurecr.io/base/python:1.0")]
    assert desired_schedules(private, services.config) == []


def test_sync_registers_updates_and_removes_jobs(services: Services, scheduler) -> None:
    services.store.add_image(spec("nightly", schedule="0 3 * * *"))
    services.store.add_image(spec("lts-a"))
    changes = sync_schedules(scheduler, services)
    nightly = CRON_JOB_PREFIX + "0 3 * * *"
    assert sorted(changes["added"]) == sorted([nightly, LTS_JOB, RATELIMIT_JOB])
    job = scheduler.get_job(nightly)
    assert (job.next_run_time.hour, job.next_run_time.minute) == (3, 0)
    for j in scheduler.get_jobs():
        assert (j.max_instances, j.coalesce, j.misfire_grace_time) == (1, True, MISFIRE_GRACE_SECONDS)
    lts_next = scheduler.get_job(LTS_JOB).next_run_time

    # Nothing changed: nothing is re-added, so the interval is not restarted.
    assert sync_schedules(scheduler, services) == {"added": [], "updated": [], "removed": []}
    assert scheduler.get_job(LTS_JOB).next_run_time == lts_next

    # The cron changes, the LTS images go: the jobs follow at once.
    changed = image_from_dict(
        {**image_to_dict(services.store.get_image("nightly")), "base": "ubuntu:22.04", "schedule": "30 4 * * 1"}
    )
    services.store.add_image(changed, replace=True)
    services.store.remove_image("lts-a")
    changes = sync_schedules(scheduler, services)
    assert changes["added"] == [CRON_JOB_PREFIX + "30 4 * * 1"]
    assert sorted(changes["removed"]) == sorted([nightly, LTS_JOB])
    job = scheduler.get_job(CRON_JOB_PREFIX + "30 4 * * 1")
    assert (job.next_run_time.weekday(), job.next_run_time.hour, job.next_run_time.minute) == (0, 4, 30)


def test_runs_are_recorded_with_start_end_and_outcome(services: Services) -> None:
    assert run_job(services, LTS_JOB, lambda: ("succeeded", "2 rebuilt")) == ("succeeded", "2 rebuilt")
    with pytest.raises(RuntimeError):
        run_job(services, LTS_JOB, lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    runs = services.store.job_runs(LTS_JOB)
    assert [(r.outcome, r.detail) for r in runs] == [
        ("error", "unexpected error; see the bot's log"),
        ("succeeded", "2 rebuilt"),
    ]
    assert all(r.started_at and r.finished_at for r in runs)


def test_a_rebuild_never_runs_twice_at_once_also_across_manual_triggers(services: Services) -> None:
    inside = threading.Event()
    release = threading.Event()

    def slow() -> tuple[str, str]:
        inside.set()
        release.wait(10)
        return "succeeded", "done"

    worker = threading.Thread(target=run_job, args=(services, LTS_JOB, slow))
    worker.start()
    assert inside.wait(10)
    with pytest.raises(JobBusy, match="already in progress"):
        run_job(services, MANUAL_JOB, lambda: ("succeeded", "never"), busy="raise")
    assert run_job(services, "rebuild:image:x", lambda: ("succeeded", "never")) is None  # recorded as skipped
    # Another group is independent.
    assert run_job(services, RATELIMIT_JOB, lambda: ("succeeded", "ok")) == ("succeeded", "ok")
    release.set()
    worker.join(10)
    outcomes = {r.job_id: r.outcome for r in services.store.job_runs()}
    assert outcomes == {LTS_JOB: "succeeded", "rebuild:image:x": "skipped", RATELIMIT_JOB: "succeeded"}


def test_claims_are_atomic_across_connections(tmp_db: str) -> None:
    """Two processes share the database: each thread here has its own connection, like a process."""
    Store(tmp_db).close()
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        store = Store(tmp_db)
        barrier.wait()
        run_id = claim_run(store, LTS_JOB if len(winners) % 2 else MANUAL_JOB)
        if run_id is not None:
            winners.append(run_id)
        store.close()

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(winners) == 1


def test_interrupted_rebuild_is_marked_and_scheduled_again(services: Services) -> None:
    services.store.add_image(spec("lts-a"))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    import socket

    detail = json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "names": ["lts-a"]})
    with services.store.transaction() as conn:
        conn.execute(
            "INSERT INTO job_runs (job_id, started_at, outcome, detail) VALUES (?, ?, 'running', ?)",
            (LTS_JOB, "2026-01-01T00:00:00.000000Z", detail),
        )
    assert claim_run(services.store, MANUAL_JOB) is None  # the dead run still holds the lock

    sched = start_scheduler(services, start=False)
    assert [r.outcome for r in services.store.job_runs(LTS_JOB)] == ["interrupted"]
    resume = sched.get_job(RESUME_JOB)
    assert resume is not None and resume.args[1] == ["lts-a"]
    assert claim_run(services.store, MANUAL_JOB) is not None  # the lock is free again
    assert services.scheduler is sched


def test_live_run_of_this_host_is_not_marked_interrupted(services: Services) -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as alive:
        try:
            import socket

            detail = json.dumps({"pid": alive.pid, "host": socket.gethostname()})
            with services.store.transaction() as conn:
                conn.execute(
                    "INSERT INTO job_runs (job_id, started_at, outcome, detail) VALUES (?, ?, 'running', ?)",
                    (MANUAL_JOB, "2026-01-01T00:00:00.000000Z", detail),
                )
            assert mark_interrupted_runs(services.store) == []
        finally:
            alive.kill()
