"""SQLite store (sqlite-utils): migrations at start-up, WAL mode, dataclasses out.

The database never holds a secret: registries keep the NAME of the variable with the password, logs
are redacted before they are stored. One connection is shared by the bot's threads behind a lock;
`claim()` gives atomic "first one wins" semantics for Slack retries and double clicks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from bot.catalog import ImageSpec, RegistrySpec, image_from_dict, image_to_dict, registry_from_dict, registry_to_dict
from bot.errors import AlreadyExists, BuildInProgress, NotFound

BUILD_STATES = ("queued", "running", "succeeded", "failed", "interrupted")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# Each migration runs once, in order; append new ones at the end, never edit a shipped one.
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
]


@dataclass(frozen=True)
class Build:
    id: int
    image: str
    status: str
    requester: str | None = None
    source: str | None = None
    requested_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    spec_hash: str | None = None
    base_ref: str | None = None
    base_digest: str | None = None
    image_id: str | None = None
    tags: tuple[str, ...] = ()
    pushed_digest: str | None = None
    push_requested: bool = False
    forced: bool = False
    doctor: tuple[dict[str, str], ...] = ()
    error: str | None = None
    failed_step: str | None = None
    log_tail: str | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "interrupted")

    @property
    def duration_seconds(self) -> float | None:
        start, end = parse_time(self.started_at), parse_time(self.finished_at)
        return (end - start).total_seconds() if start and end else None


@dataclass(frozen=True)
class PushRecord:
    id: int
    build_id: int
    registry: str | None
    repository: str
    tag: str
    digest: str | None
    verified: bool
    pushed_at: str | None


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: str
    actor: str | None
    action: str
    target: str | None
    outcome: str
    detail: str | None


def _build_from_row(row: dict[str, Any]) -> Build:
    data = dict(row)
    data["tags"] = tuple(json.loads(data["tags"] or "[]"))
    data["doctor"] = tuple(json.loads(data["doctor"] or "[]"))
    data["push_requested"] = bool(data["push_requested"])
    data["forced"] = bool(data["forced"])
    return Build(**data)


class Store:
    """All persistence. Thread-safe; one instance per process."""

    def __init__(self, path: str) -> None:
        self.path = path
        conn = sqlite3.connect(path, check_same_thread=False, timeout=10)
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        with self._lock:
            if path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()

    # ------------------------------------------------------------ plumbing
    def _migrate(self) -> None:
        conn = self.db.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with conn:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, utcnow()))

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self.db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self.db.conn:
            yield self.db.conn

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def ping(self) -> bool:
        with self._lock:
            return self.db.execute("SELECT 1").fetchone()[0] == 1

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()

    # ------------------------------------------------------------ catalog
    def add_image(self, spec: ImageSpec, *, replace: bool = False) -> None:
        now = utcnow()
        with self.transaction() as conn:
            exists = conn.execute("SELECT created_at FROM images WHERE name = ?", (spec.name,)).fetchone()
            if exists and not replace:
                raise AlreadyExists(f"Image {spec.name!r} already exists. Use `update` to change it.")
            conn.execute(
                "INSERT OR REPLACE INTO images (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (spec.name, json.dumps(image_to_dict(spec)), exists[0] if exists else now, now),
            )

    def get_image(self, name: str) -> ImageSpec:
        rows = self.query("SELECT spec FROM images WHERE name = ?", (name,))
        if not rows:
            known = [r["name"] for r in self.query("SELECT name FROM images ORDER BY name")]
            hint = f" Known images: {', '.join(known)}." if known else " The catalog is empty: add one first."
            raise NotFound(f"No image named {name!r}.{hint}")
        return image_from_dict(json.loads(rows[0]["spec"]))

    def list_images(self) -> list[ImageSpec]:
        return [image_from_dict(json.loads(r["spec"])) for r in self.query("SELECT spec FROM images ORDER BY name")]

    def remove_image(self, name: str) -> None:
        self.get_image(name)
        with self.transaction() as conn:
            conn.execute("DELETE FROM images WHERE name = ?", (name,))

    def add_registry(self, spec: RegistrySpec, *, replace: bool = False) -> None:
        now = utcnow()
        with self.transaction() as conn:
            exists = conn.execute("SELECT created_at FROM registries WHERE name = ?", (spec.name,)).fetchone()
            if exists and not replace:
                raise AlreadyExists(f"Registry {spec.name!r} already exists.")
            conn.execute(
                "INSERT OR REPLACE INTO registries (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (spec.name, json.dumps(registry_to_dict(spec)), exists[0] if exists else now, now),
            )

    def list_registries(self) -> list[RegistrySpec]:
        return [
            registry_from_dict(json.loads(r["spec"])) for r in self.query("SELECT spec FROM registries ORDER BY name")
        ]

    def get_registry(self, name: str) -> RegistrySpec:
        for reg in self.list_registries():
            if reg.name == name:
                return reg
        raise NotFound(f"No registry named {name!r}. Add it with `dcs registry add`.")

    def remove_registry(self, name: str) -> None:
        self.get_registry(name)
        users = [s.name for s in self.list_images() if s.registry == name]
        if users:
            raise AlreadyExists(f"Registry {name!r} is used by {', '.join(users)}; change those images first.")
        with self.transaction() as conn:
            conn.execute("DELETE FROM registries WHERE name = ?", (name,))

    # ------------------------------------------------------------ builds
    def create_build(
        self,
        image: str,
        *,
        requester: str | None,
        source: str,
        push: bool = False,
        forced: bool = False,
        slack_channel: str | None = None,
        stale_after_seconds: int | None = None,
    ) -> Build:
        """Insert a queued build. With `stale_after_seconds`, refuse while a build of the same image that
        started less than that long ago is queued or running (check and insert in one transaction)."""
        with self.transaction() as conn:
            if stale_after_seconds is not None:
                cutoff = datetime.now(UTC).timestamp() - stale_after_seconds
                for row in conn.execute(
                    "SELECT id, requester, requested_at FROM builds WHERE image = ? AND"
                    " status IN ('queued', 'running') ORDER BY id DESC",
                    (image,),
                ):
                    started = parse_time(row[2])
                    if started and started.timestamp() > cutoff:
                        raise BuildInProgress(
                            f"Build #{row[0]} of {image} is already in progress"
                            f"{f' (started by {row[1]})' if row[1] else ''}; wait for it to "
                            "finish.",
                            build_id=row[0],
                        )
            cur = conn.execute(
                "INSERT INTO builds (image, status, requester, source, requested_at, push_requested, forced,"
                " slack_channel) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (image, requester, source, utcnow(), int(push), int(forced), slack_channel),
            )
            build_id = cur.lastrowid
        return self.get_build(build_id)

    def get_build(self, build_id: int) -> Build:
        rows = self.query("SELECT * FROM builds WHERE id = ?", (build_id,))
        if not rows:
            raise NotFound(f"No build #{build_id}.")
        return _build_from_row(rows[0])

    def update_build(self, build_id: int, **changes: Any) -> Build:
        allowed = {f.name for f in fields(Build)} - {"id"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown build fields {unknown}")
        if "status" in changes and changes["status"] not in BUILD_STATES:
            raise ValueError(f"bad build status {changes['status']}")
        encoded = {k: json.dumps(list(v)) if k in ("tags", "doctor") else v for k, v in changes.items()}
        if encoded:
            assignments = ", ".join(f"{k} = ?" for k in encoded)
            with self.transaction() as conn:
                conn.execute(
                    f"UPDATE builds SET {assignments} WHERE id = ?",  # noqa: S608 - keys checked above
                    (*encoded.values(), build_id),
                )
        return self.get_build(build_id)

    def builds(self, image: str | None = None, *, status: str | None = None, limit: int = 20) -> list[Build]:
        where, params = [], []
        if image:
            where.append("image = ?")
            params.append(image)
        if status:
            where.append("status = ?")
            params.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.query(
            f"SELECT * FROM builds {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [_build_from_row(r) for r in rows]

    def last_build(self, image: str, *, status: str | None = None) -> Build | None:
        found = self.builds(image, status=status, limit=1)
        return found[0] if found else None

    def active_build(self, image: str) -> Build | None:
        rows = self.query(
            "SELECT * FROM builds WHERE image = ? AND status IN ('queued', 'running') ORDER BY id DESC LIMIT 1",
            (image,),
        )
        return _build_from_row(rows[0]) if rows else None

    def discard_queued_build(self, build_id: int) -> bool:
        """Remove a build that never started (it turned out to be unnecessary). True if it was removed."""
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM builds WHERE id = ? AND status = 'queued'"
                " AND NOT EXISTS (SELECT 1 FROM pushes WHERE build_id = ?)",
                (build_id, build_id),
            )
            return cur.rowcount == 1

    def mark_interrupted(self) -> list[int]:
        """At start-up: builds a crash left queued or running can never finish."""
        with self.transaction() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM builds WHERE status IN ('queued', 'running')")]
            conn.execute(
                "UPDATE builds SET status = 'interrupted', finished_at = ?, error = COALESCE(error,"
                " 'The bot stopped while this build was in progress.') WHERE status IN ('queued', 'running')",
                (utcnow(),),
            )
        return ids

    # ------------------------------------------------------------ pushes
    def add_push(
        self, build_id: int, *, registry: str | None, repository: str, tag: str, digest: str | None, verified: bool
    ) -> PushRecord:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO pushes (build_id, registry, repository, tag, digest, verified, pushed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (build_id, registry, repository, tag, digest, int(verified), utcnow()),
            )
            push_id = cur.lastrowid
        row = self.query("SELECT * FROM pushes WHERE id = ?", (push_id,))[0]
        return PushRecord(**{**row, "verified": bool(row["verified"])})

    def pushes(self, build_id: int) -> list[PushRecord]:
        rows = self.query("SELECT * FROM pushes WHERE build_id = ? ORDER BY id", (build_id,))
        return [PushRecord(**{**r, "verified": bool(r["verified"])}) for r in rows]

    # ------------------------------------------------------------ audit and claims
    def audit(
        self, *, actor: str | None, action: str, target: str | None, outcome: str, detail: str | None = None
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (utcnow(), actor, action, target, outcome, detail),
            )

    def audit_events(self, limit: int = 50, action: str | None = None) -> list[AuditEvent]:
        if action:
            rows = self.query("SELECT * FROM audit WHERE action = ? ORDER BY id DESC LIMIT ?", (action, limit))
        else:
            rows = self.query("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [AuditEvent(**r) for r in rows]

    def claim(self, key: str, kind: str, ref: str | None = None) -> bool:
        """True for the first caller with this key, False for every later one (retries, double clicks)."""
        try:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO claims (key, kind, ref, created_at) VALUES (?, ?, ?, ?)", (key, kind, ref, utcnow())
                )
            return True
        except sqlite3.IntegrityError:
            return False

    def claim_ref(self, key: str) -> str | None:
        rows = self.query("SELECT ref FROM claims WHERE key = ?", (key,))
        return rows[0]["ref"] if rows else None

    def set_claim_ref(self, key: str, ref: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE claims SET ref = ? WHERE key = ?", (ref, key))

    def with_lock(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            return fn()


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
