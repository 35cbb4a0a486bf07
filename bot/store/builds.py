"""The builds and pushes tables: one row per build from queued to its end, one row per pushed tag."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlite_utils.db import NotFoundError

from bot.domain.clock import parse_time, utcnow
from bot.domain.records import BUILD_STATES, Build, PushRecord
from bot.errors import BuildInProgress, NotFound
from bot.store.base import StoreBase
from bot.store.rows import build_from_row, push_from_row

_ACTIVE = "status IN ('queued', 'running')"


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
    ) -> Build:
        """Insert a queued build. With `stale_after_seconds`, refuse while a build of the same image that
        started less than that long ago is queued or running (check and insert in one transaction)."""
        with self.transaction() as conn:
            if stale_after_seconds is not None:
                cutoff = datetime.now(UTC).timestamp() - stale_after_seconds
                for row in conn.execute(
                    f"SELECT id, requester, requested_at FROM builds WHERE image = ? AND {_ACTIVE} ORDER BY id DESC",  # noqa: S608 - a constant
                    (image,),
                ):
                    started = parse_time(row[2])
                    if started and started.timestamp() > cutoff:
                        raise BuildInProgress(
                            f"Build #{row[0]} of {image} is already in progress"
                            f"{f' (started by {row[1]})' if row[1] else ''}; wait for it to finish.",
                            build_id=row[0],
                        )
            table = self.table("builds").insert(
                {
                    "image": image,
                    "status": "queued",
                    "requester": requester,
                    "source": source,
                    "requested_at": utcnow(),
                    "push_requested": int(push),
                    "forced": int(forced),
                    "slack_channel": slack_channel,
                }
            )
            build_id = int(table.last_rowid or 0)
        return self.get_build(build_id)

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
            ids = [r[0] for r in conn.execute(f"SELECT id FROM builds WHERE {_ACTIVE}")]  # noqa: S608 - a constant
            conn.execute(
                "UPDATE builds SET status = 'interrupted', finished_at = ?, error = COALESCE(error,"  # noqa: S608 - a constant
                f" 'The bot stopped while this build was in progress.') WHERE {_ACTIVE}",
                (utcnow(),),
            )
        return ids

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
