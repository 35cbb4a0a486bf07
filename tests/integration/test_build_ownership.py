"""One build per image across processes, and builds that end with their process: real processes, one SQLite file.

- many processes queue builds of many images at the same moment: exactly one active build per image;
- the bot's start-up sweep keeps a `dcs build` that still runs in another process and ends the ones whose
  process is gone or silent;
- `dcs build` stopped with Ctrl-C (SIGINT) or SIGTERM mid-build, against the real engine, marks its build
  interrupted before it exits, so the image can be built again at once.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.domain.clock import stamp, utcnow
from bot.domain.records import ProcessOwner
from bot.errors import BuildInProgress
from bot.ops.build import Builder
from bot.ops.liveness import process_start, sweep_interrupted_builds
from bot.services import Services
from tests.fakes.http import wait_until
from tests.support.cli import dcs_command
from tests.support.namespace import local

IMAGES = [f"race-{i:02d}" for i in range(12)]
PROCESSES = 8


def services_for(db: str, **env: str) -> Services:
    return build_services(load_config({"DCS_DB": db, "HOME": "/nonexistent", **env}))


def _race(db: str, start: Any, done: Any, results: Any) -> None:
    """One racing process: queue a build of every image (in its own order), report, stay alive until told."""
    services = services_for(db)
    builder = Builder(services)
    names = list(IMAGES)
    random.Random(os.getpid()).shuffle(names)
    start.wait(60)
    for name in names:
        try:
            results.put(("queued", name, builder.enqueue(name, requester=f"p{os.getpid()}", source="test").id))
        except BuildInProgress as exc:
            results.put(("busy", name, exc.build_id))
        except Exception as exc:  # e.g. "database is locked": must not happen
            results.put(("error", name, repr(exc)))
    results.put(("done", "", os.getpid()))
    done.wait(120)  # a build whose process exited may rightly be taken over by another: stay alive


def test_racing_processes_leave_exactly_one_active_build_per_image(tmp_db: str) -> None:
    setup = services_for(tmp_db)
    for name in IMAGES:
        setup.store.add_image(
            image_from_dict({"name": name, "base": "databricksruntime/standard:15.4-LTS", "repository": f"r.io/{name}"})
        )
    ctx = multiprocessing.get_context("spawn")
    start, done, results = ctx.Barrier(PROCESSES), ctx.Event(), ctx.Queue()
    racers = [ctx.Process(target=_race, args=(tmp_db, start, done, results)) for _ in range(PROCESSES)]
    for racer in racers:
        racer.start()
    try:
        answers, finished = [], 0
        while finished < PROCESSES:
            answer = results.get(timeout=120)
            finished += answer[0] == "done"
            answers.append(answer)
    finally:
        done.set()
        for racer in racers:
            racer.join(30)
    assert [a for a in answers if a[0] == "error"] == []
    queued = {name: build_id for kind, name, build_id in answers if kind == "queued"}
    assert Counter(name for kind, name, _ in answers if kind == "queued") == Counter(IMAGES)  # one winner each
    for kind, name, build_id in answers:
        if kind == "busy":
            assert build_id == queued[name]  # the loser was told which build holds the image
    rows = setup.store.query("SELECT image, status, owner_pid FROM builds")
    assert len(rows) == len(IMAGES)
    assert {r["image"] for r in rows if r["status"] in ("queued", "running")} == set(IMAGES)
    assert {r["owner_pid"] for r in rows} <= {p.pid for p in racers}


# ---------------------------------------------------------------- the start-up sweep and a process's liveness


def test_the_sweep_ends_builds_of_gone_or_silent_processes_only(tmp_db: str) -> None:
    services = services_for(tmp_db, DCS_BUILD_STALE_SECONDS="60")
    store = services.store
    sleeper = subprocess.Popen(["sleep", "60"])  # a live process on this host, like a `dcs build`
    try:
        here = socket.gethostname()
        alive = ProcessOwner(here, sleeper.pid, process_start(sleeper.pid))
        reused = ProcessOwner(here, sleeper.pid, "1")  # the same pid, another start time: not our process
        elsewhere = ProcessOwner("ci-runner-7", 12345, "1")
        long_ago = stamp(time_ago(600))
        rows = {
            "live process": (alive, None),
            "live process, silent for 10 min": (alive, long_ago),
            "pid reused": (reused, None),
            "other host, beating": (elsewhere, None),
            "other host, silent": (elsewhere, long_ago),
        }
        ids = {}
        for index, (case, (owner, heartbeat)) in enumerate(rows.items()):
            build = store.create_build(f"img-{index}", requester=None, source="cli", owner=owner)
            if heartbeat:
                store.update_build(build.id, heartbeat_at=heartbeat)
            ids[case] = build.id
        gone = subprocess.Popen(["true"])
        gone.wait()  # exited and reaped: its pid names no process
        ids["process gone"] = store.create_build(
            "img-gone", requester=None, source="cli", owner=ProcessOwner(here, gone.pid, None)
        ).id

        ended = sweep_interrupted_builds(services)
        expect = {"live process, silent for 10 min", "pid reused", "other host, silent", "process gone"}
        assert sorted(ended) == sorted(ids[c] for c in expect)
        for case, build_id in ids.items():
            build = store.get_build(build_id)
            assert (build.status == "interrupted") == (case in expect), case
        assert "stopped sending heartbeats" in (store.get_build(ids["other host, silent"]).error or "")
        assert "is gone" in (store.get_build(ids["process gone"]).error or "")
        assert "build" in [e.action for e in store.audit_events(10)]
    finally:
        sleeper.kill()
        sleeper.wait()


def time_ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


# ---------------------------------------------------------------- `dcs build` in its own process, real engine


def cli_env(db: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "SLACK_", "DATABRICKS_"))}
    return {**env, "DCS_DB": db, **extra}


@pytest.fixture
def slow_image(tmp_db: str, make_base: Any, registry: Any) -> str:
    """An image whose pip step sleeps 30 s (tests/support/rootfs.py), on a local base; unique so never cached."""
    base = make_base(local("databricksruntime/standard:15.4-LTS"))
    name = f"slow-{uuid.uuid4().hex[:8]}"
    services_for(tmp_db).store.add_image(
        image_from_dict(
            {
                "name": name,
                "base": base,  # by image id: an own base, which says where its Python is
                "python": "/databricks/python3/bin/python",
                "repository": f"{registry.host}/dcs-tests/{name}",
                "pip": [f"dcs-test-slow-{uuid.uuid4().hex[:8]}==1.0"],
            }
        )
    )
    return name


def start_cli_build(db: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*dcs_command(), "build", name],
            env=cli_env(db, DCS_BUILD_STALE_SECONDS="4"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for_pip_step(process: subprocess.Popen[bytes], log: Path) -> None:
    def probe() -> bool:
        assert process.poll() is None, log.read_text()
        return "installing Python packages" in log.read_text()  # the pip step, which sleeps 30 s

    wait_until(probe, 120, lambda: log.read_text(), interval=0.1)


@pytest.mark.parametrize(
    ("sig", "exit_code", "words"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_cli_build_stopped_mid_build_marks_itself_interrupted_at_once(
    tmp_db: str, tmp_path: Path, slow_image: str, sig: signal.Signals, exit_code: int, words: str
) -> None:
    services = services_for(tmp_db, DCS_BUILD_STALE_SECONDS="4")
    log = tmp_path / "dcs-build.log"
    cli = start_cli_build(tmp_db, slow_image, log)
    try:
        wait_for_pip_step(cli, log)
        running = services.store.active_build(slow_image)
        assert running is not None and running.status == "running" and running.owner_pid == cli.pid
        # The bot starting now (its sweep), or a second build, must leave a running CLI build alone, also once
        # it has run longer than the staleness limit: its heartbeat keeps it alive.
        time.sleep(5)
        assert sweep_interrupted_builds(services) == []
        beating = services.store.get_build(running.id)
        assert beating.status == "running" and (beating.heartbeat_at or "") > (running.heartbeat_at or "")
        with pytest.raises(BuildInProgress, match=f"#{running.id}"):
            Builder(services).enqueue(slow_image, requester="U2", source="slack")

        stopped_at = time.monotonic()
        cli.send_signal(sig)
        assert cli.wait(30) == exit_code, log.read_text()
        assert time.monotonic() - stopped_at < 15  # not after the 30 s pip step
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    ended = services.store.get_build(running.id)
    assert ended.status == "interrupted" and words in (ended.error or ""), ended
    assert ended.finished_at is not None
    # The image can be built again at once: no sweep, no waiting for a staleness limit.
    again = Builder(services).enqueue(slow_image, requester="U2", source="slack")
    assert again.id > running.id
    Builder(services).discard_queued(again.id)


def test_a_killed_cli_build_is_ended_by_the_next_sweep(tmp_db: str, tmp_path: Path, slow_image: str) -> None:
    services = services_for(tmp_db)
    log = tmp_path / "dcs-build.log"
    cli = start_cli_build(tmp_db, slow_image, log)
    try:
        wait_for_pip_step(cli, log)
        cli.kill()  # SIGKILL: no chance to record anything
        cli.wait(30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    build = services.store.active_build(slow_image)
    assert build is not None and build.status == "running"  # what a crash leaves behind
    assert sweep_interrupted_builds(services) == [build.id]
    ended = services.store.get_build(build.id)
    assert ended.status == "interrupted" and f"pid {cli.pid}" in (ended.error or "") and "is gone" in ended.error
    assert utcnow() >= (ended.finished_at or "")
