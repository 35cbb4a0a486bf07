"""The launches table: one row per cluster launch, from the request to the cluster's final state."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from sqlite_utils.db import NotFoundError

from bot.domain.clock import utcnow
from bot.domain.records import Launch, LaunchDemandRow, LaunchStatus
from bot.errors import NotFound
from bot.store.base import StoreBase
from bot.store.rows import launch_from_row


class LaunchTables(StoreBase):
    def insert_launch(self, **values: Any) -> Launch:
        now = utcnow()
        row = {**values, "request": json.dumps(values.get("request") or {}), "created_at": now, "updated_at": now}
        with self.transaction():
            launch_id = int(self.table("launches").insert(row).last_rowid or 0)
        return self.get_launch(launch_id)

    def get_launch(self, launch_id: int) -> Launch:
        rows = self.query("SELECT * FROM launches WHERE id = ?", (launch_id,))
        if not rows:
            raise NotFound(f"No launch #{launch_id}.")
        return launch_from_row(rows[0])

    def launches(self, *, statuses: tuple[LaunchStatus, ...] = (), limit: int = 20) -> list[Launch]:
        """The newest launches first, optionally only those in `statuses`."""
        where = f"status IN ({', '.join('?' for _ in statuses)})" if statuses else None
        with self._lock:
            rows = self.table("launches").rows_where(where, list(statuses), order_by="id DESC", limit=limit)
            return [launch_from_row(r) for r in rows]

    def update_launch(self, launch_id: int, **changes: Any) -> Launch:
        allowed = {f.name for f in fields(Launch)} - {"id", "created_at"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown launch fields {unknown}")
        encoded = {
            k: json.dumps(list(v) if k == "duplicates_terminated" else v)
            if k in ("request", "duplicates_terminated")
            else v
            for k, v in changes.items()
        }
        encoded["updated_at"] = utcnow()
        with self.transaction():
            try:
                self.table("launches").update(launch_id, encoded)
            except NotFoundError:
                raise NotFound(f"No launch #{launch_id}.") from None
        return self.get_launch(launch_id)

    def launched_builds(self, images: list[str]) -> dict[str, int]:
        """Cluster id → the build it was launched with, for the bot's launches of these images."""
        if not images:
            return {}
        marks = ",".join("?" for _ in images)
        rows = self.query(
            f"SELECT cluster_id, build_id FROM launches WHERE image IN ({marks}) AND cluster_id IS NOT NULL",  # noqa: S608 - placeholders only
            tuple(images),
        )
        return {r["cluster_id"]: r["build_id"] for r in rows if r["build_id"] is not None}

    def launch_demand_rows(self, since: str, planned: tuple[LaunchStatus, ...]) -> list[LaunchDemandRow]:
        """Launches created since `since`, and launches in `planned` states that have no cluster yet."""
        marks = ",".join("?" for _ in planned)
        rows = self.query(
            "SELECT created_at, pulls_needed, image_url, cluster_id, status FROM launches"  # noqa: S608 - placeholders only
            f" WHERE created_at >= ? OR (cluster_id IS NULL AND status IN ({marks}))",
            (since, *planned),
        )
        return [LaunchDemandRow(**r) for r in rows]
