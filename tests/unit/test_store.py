"""The SQLite store: migrations, WAL, build lifecycle, crash recovery, claims, audit, no secrets at rest."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import load_config
from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.errors import AlreadyExists, InvalidInput, NotFound
from bot.store import MIGRATIONS, Store, parse_time, utcnow

DIGEST = "sha256:" + "e" * 64
PASSWORD = "Sup3r-Secret-Registry-Pa55"


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "dcs.db")


@pytest.fixture
def store(db_path: str) -> Iterator[Store]:
    opened = Store(db_path)
    yield opened
    opened.close()


def tables(store: Store) -> set[str]:
    return {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


# ---------------------------------------------------------------- plumbing


def test_migrations_create_every_table_and_wal_is_on(store: Store) -> None:
    assert store.schema_version == len(MIGRATIONS)
    assert {
        "registries",
        "images",
        "builds",
        "pushes",
        "audit",
        "claims",
        "launches",
        "approvals",
        "job_runs",
        "ratelimit_samples",
        "alert_state",
        "base_checks",
        "schema_migrations",
    } <= tables(store)
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    assert store.query("PRAGMA foreign_keys")[0]["foreign_keys"] == 1
    assert store.ping()


def test_migrations_are_idempotent_on_reopen(db_path: str) -> None:
    first = Store(db_path)
    first.add_image(image_from_dict({"name": "keep-me", "base": "ubuntu:22.04", "repository": "team/keep"}))
    applied = first.query("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    first.close()
    for _ in range(3):
        again = Store(db_path)
        assert again.query("SELECT version, applied_at FROM schema_migrations ORDER BY version") == applied
        assert [s.name for s in again.list_images()] == ["keep-me"]
        again.close()
    assert [r["version"] for r in applied] == list(range(1, len(MIGRATIONS) + 1))


def test_a_second_store_on_the_same_file_sees_the_same_data(store: Store, db_path: str) -> None:
    store.audit(actor="U1", action="image.add", target="x", outcome="ok")
    other = Store(db_path)
    try:
        assert [e.action for e in other.audit_events()] == ["image.add"]
    finally:
        other.close()


def test_transaction_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO audit (at, action, outcome) VALUES (?, 'x', 'ok')", (utcnow(),))
        raise RuntimeError("boom")
    assert store.audit_events() == []


def test_a_transaction_that_reads_first_is_not_refused_when_another_process_writes_meanwhile(
    store: Store, db_path: str
) -> None:
    """The bot checks, then writes (is the image there?); meanwhile `dcs image add` in another process commits.
    Neither may fail with "database is locked": the second writer waits for the first, then both are kept."""
    store.add_image(image_from_dict({"name": "alpha", "base": "ubuntu:22.04", "repository": "team/alpha"}))
    other = Store(db_path)
    has_read, failures = threading.Event(), []

    def cli() -> None:
        has_read.wait(5)
        try:
            other.add_image(image_from_dict({"name": "beta", "base": "ubuntu:22.04", "repository": "team/beta"}))
        except sqlite3.OperationalError as exc:
            failures.append(f"cli: {exc}")

    writer = threading.Thread(target=cli)
    writer.start()
    try:
        with store.transaction() as conn:
            assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
            has_read.set()
            writer.join(0.5)  # the other process commits now, unless it has to wait for this transaction
            conn.execute("INSERT INTO audit (at, action, outcome) VALUES (?, 'image.check', 'ok')", (utcnow(),))
    except sqlite3.OperationalError as exc:
        failures.append(f"bot: {exc}")
    writer.join(15)
    try:
        assert failures == []
        assert [e.action for e in store.audit_events()] == ["image.check"]
        assert other.image_names() == ["alpha", "beta"]
    finally:
        other.close()


def test_utcnow_round_trips_through_parse_time() -> None:
    now = utcnow()
    assert now.endswith("Z") and "T" in now
    parsed = parse_time(now)
    assert parsed is not None and parsed.tzinfo is not None
    assert parse_time(None) is None and parse_time("") is None


# ---------------------------------------------------------------- catalog


def test_images_add_get_list_remove(store: Store) -> None:
    spec = image_from_dict(
        {
            "name": "team-pandas",
            "base": "databricksruntime/standard:15.4-LTS",
            "repository": "myacr.azurecr.io/team/pandas",
            "pip": ["pandas==2.2.2"],
            "env": {"TZ": "UTC"},
            "schedule": "0 3 * * 1",
        }
    )
    store.add_image(spec)
    assert store.get_image("team-pandas") == spec
    with pytest.raises(AlreadyExists) as exists:
        store.add_image(spec)
    assert "Image 'team-pandas' already exists" in str(exists.value)
    changed = image_from_dict(
        {
            "name": "team-pandas",
            "base": "databricksruntime/standard:16.4-LTS",
            "repository": "myacr.azurecr.io/team/pandas",
        }
    )
    store.add_image(changed, replace=True)
    assert store.get_image("team-pandas") == changed
    store.add_image(image_from_dict({"name": "alpha", "base": "ubuntu:22.04", "repository": "team/alpha"}))
    assert [s.name for s in store.list_images()] == ["alpha", "team-pandas"]
    store.remove_image("alpha")
    with pytest.raises(NotFound) as missing:
        store.get_image("alpha")
    assert str(missing.value) == "No image named 'alpha'. Known images: team-pandas."
    with pytest.raises(NotFound):
        store.remove_image("alpha")


def test_get_image_on_an_empty_catalog_says_so(store: Store) -> None:
    with pytest.raises(NotFound) as missing:
        store.get_image("nothing")
    assert str(missing.value) == "No image named 'nothing'. The catalog is empty: add one first."
    assert missing.value.exit_code == 4


def test_registry_entries_never_contain_a_password(store: Store, db_path: str) -> None:
    entry = {
        "name": "acr",
        "host": "myacr.azurecr.io",
        "username": "sp-id",
        "password_env": "DCS_SECRET_ACR_PASSWORD",
        "cluster_password_secret": "{{secrets/dcs/acr}}",
    }
    with pytest.raises(InvalidInput):  # a password typed into the entry never gets as far as the store
        registry_from_dict(entry | {"password": PASSWORD})
    spec = registry_from_dict(entry)
    store.add_registry(spec)
    assert store.get_registry("acr") == spec
    stored = json.loads(store.query("SELECT spec FROM registries")[0]["spec"])
    assert stored == entry
    # the password is found at run time, by the name the entry holds
    assert load_config({"DCS_SECRET_ACR_PASSWORD": PASSWORD}).secret(stored["password_env"]) == PASSWORD
    store.close()
    # nothing on disk, in the database or its write-ahead log, holds the password
    for path in Path(db_path).parent.iterdir():
        assert PASSWORD.encode() not in path.read_bytes()


def test_a_registry_in_use_cannot_be_removed(store: Store) -> None:
    store.add_registry(registry_from_dict({"name": "acr", "host": "myacr.azurecr.io"}))
    store.add_image(
        image_from_dict(
            {"name": "app", "base": "ubuntu:22.04", "repository": "myacr.azurecr.io/t/app", "registry": "acr"}
        )
    )
    with pytest.raises(AlreadyExists) as used:
        store.remove_registry("acr")
    assert str(used.value) == "Registry 'acr' is used by app; change those images first."
    store.remove_image("app")
    store.remove_registry("acr")
    assert store.list_registries() == []
    with pytest.raises(NotFound) as missing:
        store.get_registry("acr")
    assert "Add it with `dcs registry add`" in str(missing.value)


# ---------------------------------------------------------------- builds


def test_build_lifecycle_queued_running_succeeded(store: Store) -> None:
    build = store.create_build("team-pandas", requester="U012AB3CD", source="cli", push=True)
    assert build.status == "queued"
    assert (build.requester, build.source, build.push_requested, build.forced) == ("U012AB3CD", "cli", True, False)
    assert build.requested_at and build.started_at is None and not build.finished
    assert store.active_build("team-pandas") == build

    running = store.update_build(
        build.id, status="running", started_at=utcnow(), base_digest=DIGEST, spec_hash="f" * 64
    )
    assert running.status == "running" and running.base_digest == DIGEST and not running.finished

    done = store.update_build(
        build.id,
        status="succeeded",
        finished_at=utcnow(),
        image_id="sha256:" + "1" * 64,
        tags=("latest", "latest-20260101-b1"),
        doctor=({"name": "bash", "status": "pass", "detail": "/bin/bash", "fix": ""},),
        pushed_digest=DIGEST,
    )
    assert done.status == "succeeded" and done.finished
    assert done.tags == ("latest", "latest-20260101-b1")
    assert done.doctor == ({"name": "bash", "status": "pass", "detail": "/bin/bash", "fix": ""},)
    assert done.duration_seconds is not None and done.duration_seconds >= 0
    assert store.active_build("team-pandas") is None
    assert store.last_build("team-pandas", status="succeeded") == done
    assert store.get_build(build.id) == done


def test_build_listing_newest_first_and_filters(store: Store) -> None:
    ids = []
    for image in ("a", "b", "a", "a"):
        if ids:  # one active build per image (builds_one_active): the earlier ones have finished
            store.update_build(ids[-1], status="succeeded")
        ids.append(store.create_build(image, requester=None, source="cli").id)
    store.update_build(ids[0], status="failed", error="boom")
    assert [b.id for b in store.builds("a")] == [ids[3], ids[2], ids[0]]
    assert [b.id for b in store.builds(status="failed")] == [ids[0]]
    assert [b.id for b in store.builds(limit=2)] == [ids[3], ids[2]]
    assert store.last_build("a").id == ids[3]
    assert store.last_build("c") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "done"}, "bad build status done"),
        ({"colour": "red"}, "unknown build fields {'colour'}"),
        ({"id": 5}, "unknown build fields {'id'}"),
    ],
)
def test_update_build_refuses_unknown_fields_and_states(store: Store, changes: dict, message: str) -> None:
    build = store.create_build("a", requester=None, source="cli")
    with pytest.raises(ValueError, match=message):
        store.update_build(build.id, **changes)
    assert store.get_build(build.id).status == "queued"


def test_get_build_unknown(store: Store) -> None:
    with pytest.raises(NotFound, match=r"No build #999\."):
        store.get_build(999)


def test_mark_interrupted_ends_running_and_queued_builds(db_path: str) -> None:
    before = Store(db_path)
    queued = before.create_build("a", requester=None, source="slack").id
    running = before.update_build(
        before.create_build("b", requester=None, source="cli").id, status="running", started_at=utcnow()
    ).id
    failed_with_reason = before.update_build(
        before.create_build("c", requester=None, source="cli").id, status="running", error="kept"
    ).id
    finished = before.update_build(
        before.create_build("d", requester=None, source="cli").id,
        status="succeeded",
        finished_at="2026-01-01T00:00:00.000000Z",
    ).id
    before.close()  # the process "crashes"

    after = Store(db_path)
    try:
        assert sorted(after.mark_interrupted()) == sorted([queued, running, failed_with_reason])
        for build_id in (queued, running):
            build = after.get_build(build_id)
            assert build.status == "interrupted"
            assert build.finished_at is not None
            assert build.error == "The bot stopped while this build was in progress."
        assert after.get_build(failed_with_reason).error == "kept"
        assert after.get_build(finished).status == "succeeded"
        assert after.get_build(finished).finished_at == "2026-01-01T00:00:00.000000Z"
        assert after.mark_interrupted() == []
    finally:
        after.close()


def test_pushes_are_recorded_per_build(store: Store) -> None:
    build = store.create_build("a", requester=None, source="cli")
    first = store.add_push(
        build.id, registry="acr", repository="myacr.azurecr.io/t/a", tag="latest", digest=DIGEST, verified=True
    )
    store.add_push(
        build.id, registry="acr", repository="myacr.azurecr.io/t/a", tag="latest-b1", digest=DIGEST, verified=False
    )
    pushes = store.pushes(build.id)
    assert pushes[0] == first
    assert [(p.tag, p.verified, p.digest) for p in pushes] == [("latest", True, DIGEST), ("latest-b1", False, DIGEST)]
    assert store.pushes(build.id + 1) == []
    with pytest.raises(sqlite3.IntegrityError):
        store.add_push(12345, registry=None, repository="x", tag="y", digest=None, verified=False)


# ---------------------------------------------------------------- audit and claims


def test_audit_rows(store: Store) -> None:
    store.audit(actor="U1", action="image.add", target="team-pandas", outcome="ok")
    store.audit(actor="U2", action="build", target="team-pandas", outcome="failed", detail="step 3 of 6")
    store.audit(actor=None, action="build", target="other", outcome="ok")
    events = store.audit_events()
    assert [(e.actor, e.action, e.target, e.outcome, e.detail) for e in events] == [
        (None, "build", "other", "ok", None),
        ("U2", "build", "team-pandas", "failed", "step 3 of 6"),
        ("U1", "image.add", "team-pandas", "ok", None),
    ]
    assert [e.target for e in store.audit_events(action="build")] == ["other", "team-pandas"]
    assert len(store.audit_events(limit=1)) == 1
    assert all(parse_time(e.at) for e in events)


def test_claim_first_wins_and_keeps_its_ref(store: Store) -> None:
    assert store.claim("slack:retry:Ev123", "event") is True
    assert store.claim("slack:retry:Ev123", "event") is False
    assert store.claim("slack:retry:Ev123", "other-kind", "ignored") is False
    assert store.claim_ref("slack:retry:Ev123") is None
    store.set_claim_ref("slack:retry:Ev123", "build:7")
    assert store.claim_ref("slack:retry:Ev123") == "build:7"
    assert store.claim_ref("never-claimed") is None
    assert store.claim("slack:retry:Ev124", "event", "build:8") is True
    assert store.claim_ref("slack:retry:Ev124") == "build:8"


def test_claim_from_many_threads_at_once_has_exactly_one_winner(store: Store) -> None:
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    results: list[bool] = []
    lock = threading.Lock()

    def click(n: int) -> None:
        barrier.wait()
        won = store.claim("action:approve:42", "click", f"thread-{n}")
        with lock:
            results.append(won)

    workers = [threading.Thread(target=click, args=(n,)) for n in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(results) == [False] * (threads_count - 1) + [True]
    winner = store.claim_ref("action:approve:42")
    assert winner is not None and winner.startswith("thread-")


def test_claim_across_separate_connections_has_exactly_one_winner(db_path: str) -> None:
    Store(db_path).close()  # migrate once
    stores = [Store(db_path) for _ in range(6)]
    barrier = threading.Barrier(len(stores))
    results: list[bool] = []
    lock = threading.Lock()

    def click(s: Store) -> None:
        barrier.wait()
        won = s.claim("slack:event:Ev999", "event")
        with lock:
            results.append(won)

    workers = [threading.Thread(target=click, args=(s,)) for s in stores]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    for s in stores:
        s.close()
    assert sorted(results) == [False] * (len(stores) - 1) + [True]
