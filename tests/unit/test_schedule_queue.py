"""Every image a schedule makes due is checked: one job per distinct cron, one HEAD per distinct base, and a run
that meets the rebuild lock leaves its images queued for the next run instead of dropping them.

The bases come from a local Docker Hub (tests/fakes/dockerhub.py: token service + registry API over HTTP).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.ops.runs import MANUAL_JOB, claim_run
from bot.services import Services
from jobs.scheduler import (
    CRON_JOB_PREFIX,
    LTS_JOB,
    QUEUE_JOB,
    _drain_if_queued,
    _scheduled_cron,
    _scheduled_lts,
    create_scheduler,
    sync_schedules,
)
from tests.fakes.dockerhub import FakeDockerHub

WEEKLY = "0 3 * * 1"


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub() as fake:
        yield fake


@pytest.fixture
def services(tmp_db: str, hub: FakeDockerHub) -> Services:
    return build_services(
        load_config({"DCS_DB": tmp_db, "DOCKERHUB_AUTH_URL": hub.url, "DOCKERHUB_REGISTRY_URL": hub.url})
    )


def add_images(services: Services, count: int, schedule: str | None = WEEKLY, prefix: str = "team") -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for i, name in enumerate(names):
        base = ("databricksruntime/standard:15.4-LTS", "databricksruntime/python:15.4-LTS")[i % 2]
        fields = {"name": name, "base": base, "repository": f"myacr.azurecr.io/t/{name}", "schedule": schedule}
        services.store.add_image(image_from_dict({k: v for k, v in fields.items() if v}))
    return names


def manifest_heads(hub: FakeDockerHub) -> int:
    return hub.counts().get("HEAD", 0)


@pytest.mark.parametrize("count", [10, 200])
def test_every_image_on_one_cron_is_checked_with_one_head_per_base(services, hub, count: int) -> None:
    names = add_images(services, count)
    scheduler = create_scheduler()
    scheduler.start(paused=True)
    try:
        sync_schedules(scheduler, services)
        jobs = [j.id for j in scheduler.get_jobs() if j.id.startswith(CRON_JOB_PREFIX)]
        assert jobs == [CRON_JOB_PREFIX + WEEKLY]  # one job for all of them, not one per image
        job = scheduler.get_job(CRON_JOB_PREFIX + WEEKLY)
        job.func(*job.args)  # the cron fires
        checks = services.store.image_checks()
        assert sorted(checks) == names
        assert {c.status for c in checks.values()} == {"unchanged"}
        assert all(c.checked_at and c.source == "schedule" for c in checks.values())
        # two distinct bases, whatever the number of images; the very first request to Docker Hub also
        # learns where its token service is (one 401)
        assert manifest_heads(hub) == 3 and len(hub.token_requests()) == 2
        job.func(*job.args)  # next week: the same again, with the tokens still valid
    finally:
        scheduler.shutdown(wait=False)
    again = services.store.image_checks()
    assert sorted(again) == names and all(again[n].checked_at > checks[n].checked_at for n in names)
    assert manifest_heads(hub) == 3 + 2 and len(hub.token_requests()) == 2
    runs = services.store.job_runs()
    assert [(r.job_id, r.outcome, r.detail) for r in runs] == [(QUEUE_JOB, "succeeded", f"{count} unchanged")] * 2
    assert services.store.queue_size() == 0


def test_a_run_that_meets_the_lock_keeps_its_images_queued_and_checks_them_after(services, hub) -> None:
    names = add_images(services, 10)
    manual = claim_run(services.store, MANUAL_JOB)  # `dcs rebuild` in another process holds the lock
    assert manual is not None
    _scheduled_cron(services, WEEKLY)
    assert services.store.image_checks() == {}
    assert services.store.queued_images() == names  # waiting, not dropped
    assert [r.outcome for r in services.store.job_runs()] == ["running"]  # no "skipped" run recorded
    _drain_if_queued(services)  # the periodic drain while the lock is still held: still waiting
    assert services.store.queue_size() == 10
    services.store.finish_run(manual, "succeeded", "done")
    _drain_if_queued(services)
    assert sorted(services.store.image_checks()) == names
    assert services.store.queue_size() == 0
    assert manifest_heads(hub) == 3


def test_two_schedules_firing_while_busy_are_checked_in_one_run(services, hub) -> None:
    weekly = add_images(services, 5)
    lts = add_images(services, 5, schedule=None, prefix="lts")
    manual = claim_run(services.store, MANUAL_JOB)
    assert manual is not None
    _scheduled_cron(services, WEEKLY)
    _scheduled_lts(services)  # covers the cron images too: they are on -LTS bases
    assert sorted(services.store.queued_images()) == sorted(weekly + lts)
    services.store.finish_run(manual, "succeeded", "done")
    _drain_if_queued(services)
    assert sorted(services.store.image_checks()) == sorted(weekly + lts)
    assert [r.job_id for r in services.store.job_runs() if r.job_id == QUEUE_JOB] == [QUEUE_JOB]
    assert manifest_heads(hub) == 3


def test_an_image_removed_while_queued_leaves_the_queue(services, hub) -> None:
    names = add_images(services, 3)
    services.store.queue_images(names, LTS_JOB)
    services.store.remove_image(names[0])
    services.store.queue_images([names[1]], LTS_JOB)
    with services.store.transaction() as conn:  # as if removed by a process that ignores the queue
        conn.execute("INSERT INTO rebuild_queue (name, queued_at) VALUES ('gone', '2026-01-01T00:00:00Z')")
    _drain_if_queued(services)
    assert sorted(services.store.image_checks()) == names[1:]
    assert services.store.queue_size() == 0


def test_a_queue_run_cut_short_by_a_restart_leaves_its_images_queued_for_the_first_drain(services, hub) -> None:
    import json
    import os
    import socket

    from jobs.scheduler import DRAIN_JOB, RESUME_JOB, start_scheduler

    names = add_images(services, 4)
    services.store.queue_images(names, CRON_JOB_PREFIX + WEEKLY)
    dead = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "names": names})  # this process: "gone"
    with services.store.transaction() as conn:
        conn.execute(
            "INSERT INTO job_runs (job_id, started_at, outcome, detail) VALUES (?, ?, 'running', ?)",
            (QUEUE_JOB, "2026-01-01T00:00:00Z", dead),
        )
    scheduler = start_scheduler(services, start=False)
    assert [r.outcome for r in services.store.job_runs(QUEUE_JOB)] == ["interrupted"]
    assert scheduler.get_job(RESUME_JOB) is None and scheduler.get_job(DRAIN_JOB) is not None
    assert services.store.queued_images() == names
    _drain_if_queued(services)
    assert sorted(services.store.image_checks()) == names
