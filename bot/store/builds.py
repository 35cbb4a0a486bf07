"""The builds and pushes tables: one row per build from queued to its end, one row per pushed tag."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlite_utils.db import NotFoundError

from bot.domain.clock import parse_time, utcnow
from bot.domain.records import BUILD_STATES, Build, ProcessOwner, PushRecord
from bot.errors import BuildInProgress, NotFound
from bot.store.base import StoreBase
from bot.store.rows import build_from_row, encode_log_tail, push_from_row

_ACTIVE = "status IN ('queued', 'running')"


# Why a build ended that is no longer going (its process is gone, its heartbeat stopped); None: it is going.
DeathReason = Callable[[Build], str | None]
STOPPED_MESSAGE = "The bot stopped while this build was in progress."


class BuildTables(StoreBase):
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
        owner: ProcessOwner | None = None,
        death_reason: DeathReason | None = None,
    ) -> Build:
        """Insert a queued build owned by `owner`; refuses (BuildInProgress) while another build of the image
        is queued or running.

        An active build that is no longer going does not block: `death_reason` says why (its process is gone,
        its heartbeat stopped), or with `stale_after_seconds` its last sign of life is older than that. It is
        marked interrupted in the same transaction. The transaction takes the write lock first and the
        unique index `builds_one_active` backs it, so racing processes get exactly one active build per image.
        """
        now = utcnow()
        try:
            with self.write_transaction() as conn:
                for build in self._active_builds(conn, image):
                    reason = death_reason(build) if death_reason is not None else None
                    if reason is None and stale_after_seconds is not None and _silent_for(build) > stale_after_seconds:
                        reason = "It showed no sign of life for too long."
                    if reason is None:
                        raise _in_progress(build)
                    if self._interrupt(conn, build.id, f"Interrupted: {reason}", now):
                        self.audit(
                            actor=requester,
                            action="build",
                            target=f"{image}#{build.id}",
                            outcome="interrupted",
                            detail=reason,
                        )
                table = self.table("builds").insert(
                    {
                        "image": image,
                        "status": "queued",
                        "requester": requester,
                        "source": source,
                        "requested_at": now,
                        "push_requested": int(push),
                        "forced": int(forced),
                        "slack_channel": slack_channel,
                        **_owner_columns(owner),
                        "heartbeat_at": now if owner else None,  # heartbeats are what owners send
                    }
                )
                build_id = int(table.last_rowid or 0)
        except sqlite3.IntegrityError:
            # builds_one_active: a writer that did not take the write lock first got there (an older version)
            active = self.active_build(image)
            if active is None:
                raise
            raise _in_progress(active) from None
        return self.get_build(build_id)

    def _active_builds(self, conn: sqlite3.Connection, image: str) -> list[Build]:
        conn_rows = conn.execute(
            f"SELECT * FROM builds WHERE image = ? AND {_ACTIVE} ORDER BY id DESC",  # noqa: S608 - a constant
            (image,),
        )
        names = [d[0] for d in conn_rows.description]
        return [build_from_row(dict(zip(names, row, strict=True))) for row in conn_rows.fetchall()]

    def start_build(self, build_id: int, owner: ProcessOwner | None = None) -> Build | None:
        """queued → running, taken by `owner`; None when the build is no longer queued (ended meanwhile)."""
        now = utcnow()
        columns = {
            "status": "running",
            "started_at": now,
            "heartbeat_at": now,
            **(_owner_columns(owner) if owner else {}),
        }
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.write_transaction() as conn:
            cur = conn.execute(
                f"UPDATE builds SET {assignments} WHERE id = ? AND status = 'queued'",  # noqa: S608 - our column names
                (*columns.values(), build_id),
            )
            if cur.rowcount != 1:
                return None
        return self.get_build(build_id)

    def beat(self, build_ids: Iterable[int]) -> int:
        """The heartbeat of builds this process holds; returns how many are still active."""
        ids = list(build_ids)
        if not ids:
            return 0
        marks = ",".join("?" for _ in ids)
        with self.transaction() as conn:
            cur = conn.execute(
                f"UPDATE builds SET heartbeat_at = ? WHERE id IN ({marks}) AND {_ACTIVE}",  # noqa: S608 - placeholders only
                (utcnow(), *ids),
            )
            return cur.rowcount

    def interrupt_build(self, build_id: int, reason: str) -> bool:
        """End one active build as interrupted (Ctrl-C, SIGTERM). False when it had already ended."""
        with self.write_transaction() as conn:
            return self._interrupt(conn, build_id, reason, utcnow())

    @staticmethod
    def _interrupt(conn: sqlite3.Connection, build_id: int, reason: str, now: str) -> bool:
        cur = conn.execute(
            f"UPDATE builds SET status = 'interrupted', finished_at = ?, error = COALESCE(error, ?)"  # noqa: S608 - a constant
            f" WHERE id = ? AND {_ACTIVE}",
            (now, reason, build_id),
        )
        return cur.rowcount == 1

    def get_build(self, build_id: int) -> Build:
        rows = self.query("SELECT * FROM builds WHERE id = ?", (build_id,))
        if not rows:
            raise NotFound(f"No build #{build_id}.")
        return build_from_row(rows[0])

    def update_build(self, build_id: int, **changes: Any) -> Build:
        allowed = {f.name for f in fields(Build)} - {"id"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown build fields {unknown}")
        if "status" in changes and changes["status"] not in BUILD_STATES:
            raise ValueError(f"bad build status {changes['status']}")
        encoded = {k: json.dumps(list(v)) if k in ("tags", "doctor") else v for k, v in changes.items()}
        if "log_tail" in encoded:
            encoded["log_tail"] = encode_log_tail(encoded["log_tail"])
        if encoded:
            with self.transaction():
                try:
                    self.table("builds").update(build_id, encoded)
                except NotFoundError:
                    raise NotFound(f"No build #{build_id}.") from None
        return self.get_build(build_id)

    def builds(self, image: str | None = None, *, status: str | None = None, limit: int = 20) -> list[Build]:
        where, params = [], []
        if image:
            where.append("image = ?")
            params.append(image)
        if status:
            where.append("status = ?")
            params.append(status)
        with self._lock:
            rows = self.table("builds").rows_where(" AND ".join(where) or None, params, order_by="id DESC", limit=limit)
            return [build_from_row(r) for r in rows]

    def last_build(self, image: str, *, status: str | None = None) -> Build | None:
        found = self.builds(image, status=status, limit=1)
        return found[0] if found else None

    def active_build(self, image: str) -> Build | None:
        rows = self.query(f"SELECT * FROM builds WHERE image = ? AND {_ACTIVE} ORDER BY id DESC LIMIT 1", (image,))  # noqa: S608 - a constant
        return build_from_row(rows[0]) if rows else None

    def pushed_digests(self, images: list[str]) -> dict[int, str]:
        """Build id → pushed digest, for every pushed build of these images."""
        if not images:
            return {}
        marks = ",".join("?" for _ in images)
        rows = self.query(
            f"SELECT id, pushed_digest FROM builds WHERE image IN ({marks}) AND pushed_digest IS NOT NULL",  # noqa: S608 - placeholders only
            tuple(images),
        )
        return {r["id"]: r["pushed_digest"] for r in rows}

    def current_digests(self) -> dict[str, tuple[int, str]]:
        """Image → (build id, digest) of its newest succeeded, pushed build: what launches and rollouts pin."""
        rows = self.query(
            "SELECT b.image, b.id, b.pushed_digest FROM builds b JOIN "
            "(SELECT image, MAX(id) AS id FROM builds WHERE status = 'succeeded' AND pushed_digest IS NOT NULL "
            "GROUP BY image) newest ON b.id = newest.id"
        )
        return {r["image"]: (r["id"], r["pushed_digest"]) for r in rows}

    def discard_queued_build(self, build_id: int) -> bool:
        """Remove a build that never started (it turned out to be unnecessary). True if it was removed."""
        with self.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM builds WHERE id = ? AND status = 'queued'"
                " AND NOT EXISTS (SELECT 1 FROM pushes WHERE build_id = ?)",
                (build_id, build_id),
            )
            return cur.rowcount == 1

    def mark_interrupted(self, death_reason: DeathReason | None = None) -> list[int]:
        """At start-up: end the queued and running builds that can never finish.

        With `death_reason`, only the builds it gives a reason for (their process is gone or silent; a CLI
        build still running elsewhere is kept); without, every active build (a single-process deployment).
        """
        now = utcnow()
        ended = []
        with self.write_transaction() as conn:
            rows = conn.execute(f"SELECT * FROM builds WHERE {_ACTIVE} ORDER BY id")  # noqa: S608 - a constant
            names = [d[0] for d in rows.description]
            for build in [build_from_row(dict(zip(names, row, strict=True))) for row in rows.fetchall()]:
                reason = death_reason(build) if death_reason is not None else STOPPED_MESSAGE
                if reason is not None and self._interrupt(conn, build.id, reason, now):
                    ended.append(build.id)
        return ended

    # ------------------------------------------------------------ pushes
    def add_push(
        self, build_id: int, *, registry: str | None, repository: str, tag: str, digest: str | None, verified: bool
    ) -> PushRecord:
        with self.transaction():
            table = self.table("pushes").insert(
                {
                    "build_id": build_id,
                    "registry": registry,
                    "repository": repository,
                    "tag": tag,
                    "digest": digest,
                    "verified": int(verified),
                    "pushed_at": utcnow(),
                }
            )
            push_id = table.last_rowid
        return push_from_row(self.query("SELECT * FROM pushes WHERE id = ?", (push_id,))[0])

    def pushes(self, build_id: int) -> list[PushRecord]:
        rows = self.query("SELECT * FROM pushes WHERE build_id = ? ORDER BY id", (build_id,))
        return [push_from_row(r) for r in rows]


def _owner_columns(owner: ProcessOwner | None) -> dict[str, Any]:
    return {
        "owner_host": owner.host if owner else None,
        "owner_pid": owner.pid if owner else None,
        "owner_started": owner.started if owner else None,
    }


def _silent_for(build: Build) -> float:
    """Seconds since the build's last sign of life (its heartbeat, else when it was queued)."""
    seen = parse_time(build.heartbeat_at or build.requested_at)
    return float("inf") if seen is None else datetime.now(UTC).timestamp() - seen.timestamp()


def _in_progress(build: Build) -> BuildInProgress:
    return BuildInProgress(
        f"Build #{build.id} of {build.image} is already in progress"
        f"{f' (started by {build.requester})' if build.requester else ''}; wait for it to finish.",
        build_id=build.id,
    )
