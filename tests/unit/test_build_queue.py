"""Two builds of one image must not race for the same tags; a build abandoned long ago does not block."""

from __future__ import annotations

import sqlite3

import pytest

from bot.domain.records import ProcessOwner
from bot.errors import BuildInProgress
from bot.store import MIGRATIONS, Store


def test_second_build_of_the_same_image_is_refused_with_the_running_one_named(tmp_db):
    store = Store(tmp_db)
    first = store.create_build("team-pandas", requester="U1", source="slack", stale_after_seconds=3600)
    with pytest.raises(BuildInProgress) as caught:
        store.create_build("team-pandas", requester="U2", source="slack", stale_after_seconds=3600)
    assert caught.value.build_id == first.id
    assert f"#{first.id}" in caught.value.message and "U1" in caught.value.message
    # Other images are not blocked.
    assert store.create_build("team-spark", requester="U2", source="slack", stale_after_seconds=3600).id


def test_finished_or_stale_builds_do_not_block(tmp_db):
    store = Store(tmp_db)
    done = store.create_build("team-pandas", requester="U1", source="cli", stale_after_seconds=3600)
    store.update_build(done.id, status="succeeded")
    store.create_build("team-pandas", requester="U1", source="cli", stale_after_seconds=3600)
    stale = store.create_build("team-old", requester="U1", source="cli")
    store.update_build(stale.id, requested_at="2020-01-01T00:00:00.000000Z", status="running")
    assert store.create_build("team-old", requester="U1", source="cli", stale_after_seconds=3600).id > stale.id


# ---------------------------------------------------------------- one active build per image, in the database

OWNER = ProcessOwner("bot-host", 4242, "99")


def test_the_database_itself_refuses_a_second_active_build_of_an_image(tmp_db):
    store = Store(tmp_db)
    store.create_build("team-pandas", requester="U1", source="cli")
    # A writer that skips create_build (an older version, a hand-written INSERT) hits the unique index.
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), store.transaction() as conn:
        conn.execute("INSERT INTO builds (image, status) VALUES ('team-pandas', 'running')")
    with store.transaction() as conn:  # finished builds are history, any number of them
        conn.execute("INSERT INTO builds (image, status) VALUES ('team-pandas', 'failed')")
        conn.execute("INSERT INTO builds (image, status) VALUES ('team-pandas', 'succeeded')")
    assert [b.status for b in store.builds("team-pandas")] == ["succeeded", "failed", "queued"]


def test_an_active_build_whose_process_is_gone_is_ended_and_the_new_one_queued(tmp_db):
    store = Store(tmp_db)
    old = store.create_build("team-pandas", requester="U1", source="cli", owner=OWNER)
    assert (old.owner, old.heartbeat_at is not None) == (OWNER, True)
    with pytest.raises(BuildInProgress):
        store.create_build("team-pandas", requester="U2", source="slack", death_reason=lambda b: None)
    new = store.create_build("team-pandas", requester="U2", source="slack", death_reason=lambda b: "It is gone.")
    ended = store.get_build(old.id)
    assert (ended.status, ended.error) == ("interrupted", "Interrupted: It is gone.")
    assert ended.finished_at is not None
    assert store.active_build("team-pandas") == new
    (event,) = store.audit_events(action="build")
    assert (event.target, event.outcome, event.detail) == (f"team-pandas#{old.id}", "interrupted", "It is gone.")


def test_a_build_ended_meanwhile_is_not_started(tmp_db):
    store = Store(tmp_db)
    build = store.create_build("team-pandas", requester="U1", source="cli")
    assert store.interrupt_build(build.id, "Stopped with Ctrl-C (SIGINT) while it was in progress.")
    assert not store.interrupt_build(build.id, "again")  # already ended: nothing changes
    assert store.start_build(build.id, OWNER) is None
    assert store.get_build(build.id).status == "interrupted"
    other = store.create_build("team-spark", requester="U1", source="cli")
    started = store.start_build(other.id, OWNER)
    assert started is not None and (started.status, started.owner) == ("running", OWNER)


def test_heartbeats_reach_active_builds_only(tmp_db):
    store = Store(tmp_db)
    running = store.create_build("a", requester=None, source="cli", owner=OWNER)
    done = store.create_build("b", requester=None, source="cli", owner=OWNER)
    store.update_build(done.id, status="succeeded", heartbeat_at="2020-01-01T00:00:00.000000Z")
    store.update_build(running.id, heartbeat_at="2020-01-01T00:00:00.000000Z")
    assert store.beat([running.id, done.id]) == 1
    assert store.get_build(running.id).heartbeat_at > "2026"
    assert store.get_build(done.id).heartbeat_at == "2020-01-01T00:00:00.000000Z"


def test_the_start_up_sweep_ends_only_the_builds_it_has_a_reason_for(tmp_db):
    store = Store(tmp_db)
    kept = store.create_build("a", requester=None, source="cli", owner=OWNER)
    gone = store.create_build("b", requester=None, source="cli", owner=ProcessOwner("bot-host", 1, "1"))
    assert store.mark_interrupted(lambda b: "Its process is gone." if b.owner_pid == 1 else None) == [gone.id]
    assert store.get_build(kept.id).status == "queued"
    assert (store.get_build(gone.id).status, store.get_build(gone.id).error) == ("interrupted", "Its process is gone.")


def test_the_upgrade_ends_older_duplicates_before_it_adds_the_index(tmp_db):
    conn = sqlite3.connect(tmp_db)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for version, sql in enumerate(MIGRATIONS[:3], start=1):
        for statement in (s for s in sql.split(";") if s.strip()):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, '2025-01-01T00:00:00.000000Z')", (version,))
    for status in ("running", "queued", "succeeded"):  # what an older version could leave behind
        conn.execute("INSERT INTO builds (image, status, requested_at) VALUES ('a', ?, '2025-01-01')", (status,))
    conn.commit()
    conn.close()
    store = Store(tmp_db)
    assert [(b.id, b.status) for b in store.builds("a")] == [(3, "succeeded"), (2, "queued"), (1, "interrupted")]
    assert "later build" in (store.get_build(1).error or "")
    with pytest.raises(BuildInProgress):
        store.create_build("a", requester=None, source="cli")
