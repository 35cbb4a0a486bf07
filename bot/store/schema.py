"""The schema: numbered migrations, applied once each, in order, at start-up.

Append new migrations at the end; never edit a shipped one (a database that already ran it would never
see the change).
"""

from __future__ import annotations

import sqlite3

from bot.domain.clock import utcnow

MIGRATIONS: list[str] = [
    # 1: catalog, builds, pushes, audit
    """
    CREATE TABLE registries (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at TEXT, updated_at TEXT);
    CREATE TABLE images (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created_at TEXT, updated_at TEXT);
    CREATE TABLE builds (
        id INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL, status TEXT NOT NULL,
        requester TEXT, source TEXT, requested_at TEXT, started_at TEXT, finished_at TEXT,
        spec_hash TEXT, base_ref TEXT, base_digest TEXT, image_id TEXT, tags TEXT,
        pushed_digest TEXT, push_requested INTEGER DEFAULT 0, forced INTEGER DEFAULT 0,
        doctor TEXT, error TEXT, failed_step TEXT, log_tail TEXT,
        slack_channel TEXT, slack_ts TEXT
    );
    CREATE INDEX builds_image ON builds(image, id);
    CREATE INDEX builds_status ON builds(status);
    CREATE TABLE pushes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, build_id INTEGER NOT NULL REFERENCES builds(id),
        registry TEXT, repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT, verified INTEGER DEFAULT 0,
        pushed_at TEXT
    );
    CREATE INDEX pushes_build ON pushes(build_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT, action TEXT NOT NULL,
        target TEXT, outcome TEXT NOT NULL, detail TEXT
    );
    """,
    # 2: idempotency claims, launches, approvals, scheduler runs, rate-limit samples, alert state, base checks
    """
    CREATE TABLE claims (key TEXT PRIMARY KEY, kind TEXT, ref TEXT, created_at TEXT);
    CREATE TABLE launches (
        id INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL, build_id INTEGER, requester TEXT,
        cluster_id TEXT, cluster_name TEXT, image_url TEXT, request TEXT, status TEXT NOT NULL,
        state TEXT, state_message TEXT, termination_code TEXT, pulls_needed INTEGER,
        slack_channel TEXT, slack_ts TEXT, created_at TEXT, updated_at TEXT
    );
    CREATE INDEX launches_status ON launches(status);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, requester TEXT NOT NULL,
        status TEXT NOT NULL, decided_by TEXT, decided_at TEXT, expires_at TEXT,
        slack_channel TEXT, slack_ts TEXT, note TEXT, created_at TEXT
    );
    CREATE TABLE job_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, started_at TEXT NOT NULL,
        finished_at TEXT, outcome TEXT NOT NULL, detail TEXT
    );
    CREATE INDEX job_runs_job ON job_runs(job_id, id);
    CREATE TABLE ratelimit_samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, account TEXT, "limit" INTEGER,
        remaining INTEGER, window_seconds INTEGER, source TEXT
    );
    CREATE TABLE alert_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, changed_at TEXT, detail TEXT);
    CREATE TABLE base_checks (base_ref TEXT PRIMARY KEY, digest TEXT, checked_at TEXT, error TEXT);
    """,
    # 3: an index for every query path the store has (tests/unit/test_store_indexes.py checks the plans)
    """
    CREATE INDEX builds_image_status ON builds(image, status, id);
    CREATE INDEX images_updated ON images(updated_at);
    CREATE INDEX launches_image ON launches(image, cluster_id);
    CREATE INDEX launches_created ON launches(created_at);
    CREATE INDEX approvals_kind_status ON approvals(kind, status, id);
    CREATE INDEX approvals_status_expiry ON approvals(status, expires_at);
    CREATE INDEX job_runs_outcome ON job_runs(outcome, job_id);
    CREATE INDEX ratelimit_samples_at ON ratelimit_samples(at);
    CREATE INDEX audit_action ON audit(action, id);
    """,
    # 4: build owners and heartbeats; at most one active build per image, enforced by the database for every
    # process that writes to it (older duplicates are ended first, or the index could not be created); the
    # outcome checks of cluster creates
    """
    ALTER TABLE builds ADD COLUMN owner_host TEXT;
    ALTER TABLE builds ADD COLUMN owner_pid INTEGER;
    ALTER TABLE builds ADD COLUMN owner_started TEXT;
    ALTER TABLE builds ADD COLUMN heartbeat_at TEXT;
    UPDATE builds SET status = 'interrupted', finished_at = COALESCE(finished_at, started_at, requested_at),
        error = COALESCE(error, 'Ended when the database was upgraded: a later build of the image was active.')
        WHERE status IN ('queued', 'running')
        AND id NOT IN (SELECT MAX(id) FROM builds WHERE status IN ('queued', 'running') GROUP BY image);
    CREATE UNIQUE INDEX builds_one_active ON builds(image) WHERE status IN ('queued', 'running');
    ALTER TABLE launches ADD COLUMN create_sent_at TEXT;
    ALTER TABLE launches ADD COLUMN lookup_error TEXT;
    ALTER TABLE launches ADD COLUMN duplicates_terminated TEXT;
    """,
    # 5: the package inventory of each successful build (bot/domain/inventory.py), JSON, one row per build
    """
    CREATE TABLE build_inventories (
        build_id INTEGER PRIMARY KEY REFERENCES builds(id) ON DELETE CASCADE, inventory TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    """,
    # 6: catalog-wide settings (the catalog file's top-level [build] table), JSON by name
    """
    CREATE TABLE catalog_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
    """,
    # 7: the rebuild due-queue (an image a schedule made due waits here until a run has checked it, so a run
    # that meets the rebuild lock never drops it) and the last check of every image
    """
    CREATE TABLE rebuild_queue (name TEXT PRIMARY KEY, queued_at TEXT NOT NULL, job_id TEXT);
    CREATE INDEX rebuild_queue_order ON rebuild_queue(queued_at, name);
    CREATE TABLE image_checks (
        name TEXT PRIMARY KEY, checked_at TEXT NOT NULL, status TEXT NOT NULL, note TEXT, source TEXT
    );
    """,
    # 8: the release gate: one candidate per pushed build (its policy's progress), the moving tag's history
    # (promotions; a rollback marks the current one undone), and the votes on candidates waiting for approval
    """
    CREATE TABLE releases (
        build_id INTEGER PRIMARY KEY REFERENCES builds(id), image TEXT NOT NULL, digest TEXT NOT NULL,
        immutable_tag TEXT, policy TEXT NOT NULL, status TEXT NOT NULL, requester TEXT,
        approvals_needed INTEGER NOT NULL DEFAULT 0, expires_at TEXT, canary TEXT, reason TEXT,
        slack_channel TEXT, slack_ts TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE INDEX releases_image ON releases(image, build_id);
    CREATE INDEX releases_status_expiry ON releases(status, expires_at);
    CREATE TABLE promotions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL, build_id INTEGER NOT NULL, tag TEXT NOT NULL,
        digest TEXT NOT NULL, actor TEXT, how TEXT NOT NULL, at TEXT NOT NULL, undone_at TEXT
    );
    CREATE INDEX promotions_image ON promotions(image, undone_at, id);
    CREATE TABLE release_votes (
        build_id INTEGER NOT NULL, user TEXT NOT NULL, vote TEXT NOT NULL, at TEXT NOT NULL,
        PRIMARY KEY (build_id, user)
    );
    """,
    # 9: indexes for retention (bot/store/retention.py deletes by age)
    """
    CREATE INDEX job_runs_started ON job_runs(started_at);
    CREATE INDEX claims_created ON claims(created_at);
    CREATE INDEX audit_at ON audit(at);
    CREATE INDEX builds_finished ON builds(finished_at);
    """,
    # 10: fleet rollouts (bot/ops/rollout.py): one row per rollout or rollback, one per workspace item it changes,
    # with the exact request sent and the item's previous value (what a rollback restores). No secrets: docker
    # basic_auth passwords are secret references ({{secrets/...}}) only.
    """
    CREATE TABLE rollouts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL, kind TEXT NOT NULL, target_url TEXT NOT NULL,
        target_digest TEXT NOT NULL, build_id INTEGER, workspace TEXT, status TEXT NOT NULL, requester TEXT NOT NULL,
        approved_by TEXT, parent_id INTEGER, protected INTEGER NOT NULL DEFAULT 0, force INTEGER NOT NULL DEFAULT 0,
        slack_channel TEXT, slack_ts TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
    );
    CREATE INDEX rollouts_image ON rollouts(image, id);
    CREATE INDEX rollouts_parent ON rollouts(parent_id);
    CREATE TABLE rollout_items (
        id INTEGER PRIMARY KEY AUTOINCREMENT, rollout_id INTEGER NOT NULL REFERENCES rollouts(id),
        position INTEGER NOT NULL, workspace TEXT NOT NULL, kind TEXT NOT NULL, item_id TEXT NOT NULL,
        name TEXT, action TEXT NOT NULL, status TEXT NOT NULL, locations TEXT NOT NULL, detail TEXT,
        request TEXT, previous TEXT, restore TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        UNIQUE (rollout_id, workspace, kind, item_id)
    );
    CREATE INDEX rollout_items_status ON rollout_items(rollout_id, status, position);
    """,
    # 11: Slack forms the bot opened and the messages of builds and launches (interaction state from the store)
    """
    CREATE TABLE slack_forms (
        view_id TEXT PRIMARY KEY, kind TEXT NOT NULL, user TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL
    );
    CREATE INDEX slack_forms_created ON slack_forms(created_at);
    CREATE INDEX builds_message ON builds(slack_channel, slack_ts);
    CREATE INDEX launches_message ON launches(slack_channel, slack_ts);
    """,
    # 12: approval requests by their Slack message (Approve / Deny act on their own message's request)
    """
    CREATE INDEX approvals_message ON approvals(slack_channel, slack_ts);
    """,
    # 13: rollouts by their Slack message (Approve / Retry failed / Roll back act on their own message's rollout)
    """
    CREATE INDEX rollouts_message ON rollouts(slack_channel, slack_ts);
    """,
    # 14: the files a catalog names (requirements, init scripts, …), checked at import, by sha256
    """
    CREATE TABLE catalog_files (sha256 TEXT PRIMARY KEY, content BLOB NOT NULL, size INTEGER NOT NULL,
        added_at TEXT NOT NULL);
    """,
    # 15: revisions: counters that every write to what they cover moves (triggers, so writes by any process
    # count). 'catalog': images added, changed or removed; each row written is stamped with it, so a reader
    # re-reads only the rows stamped since. 'statuses': what a page of `/dcs images` shows besides the
    # definitions: builds (not their heartbeats or logs), image checks and release candidates.
    """
    CREATE TABLE revisions (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
    INSERT INTO revisions (name, n) VALUES ('catalog', 1), ('statuses', 1);
    ALTER TABLE images ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX images_revision ON images(revision);
    CREATE TRIGGER images_added AFTER INSERT ON images BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'catalog';
        UPDATE images SET revision = (SELECT n FROM revisions WHERE name = 'catalog') WHERE name = NEW.name;
    END;
    CREATE TRIGGER images_changed AFTER UPDATE OF name, spec, updated_at ON images BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'catalog';
        UPDATE images SET revision = (SELECT n FROM revisions WHERE name = 'catalog') WHERE name = NEW.name;
    END;
    CREATE TRIGGER images_removed AFTER DELETE ON images BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'catalog';
    END;
    CREATE TRIGGER builds_added AFTER INSERT ON builds BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER builds_changed
    AFTER UPDATE OF image, status, requester, requested_at, started_at, finished_at, pushed_digest ON builds BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER builds_removed AFTER DELETE ON builds BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER image_checks_added AFTER INSERT ON image_checks BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER image_checks_changed AFTER UPDATE ON image_checks BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER image_checks_removed AFTER DELETE ON image_checks BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER releases_added AFTER INSERT ON releases BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER releases_changed AFTER UPDATE ON releases BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    CREATE TRIGGER releases_removed AFTER DELETE ON releases BEGIN
        UPDATE revisions SET n = n + 1 WHERE name = 'statuses';
    END;
    """,
]


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this database has not run yet, each in its own transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    for version, sql in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        with conn:
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, utcnow()))


def _statements(sql: str) -> list[str]:
    """The statements of a migration, split at the semicolons that end one (not those inside a trigger)."""
    statements, current = [], ""
    for part in sql.split(";"):
        current += part + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \n;"):
        statements.append(current.strip())
    return statements
