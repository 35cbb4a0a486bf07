"""Rollout tables: a rollout and its items, with atomic item transitions (one write per item, whoever clicks)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.domain.clock import utcnow
from bot.domain.rollout_records import ItemStatus, Rollout, RolloutItem, RolloutStatus
from bot.errors import NotFound
from bot.store.base import StoreBase

_JSON_ITEM_FIELDS = ("request", "previous", "restore")


class RolloutTables(StoreBase):
    def create_rollout(self, rollout: dict[str, Any], items: Sequence[dict[str, Any]]) -> Rollout:
        """The rollout and all its items in one transaction."""
        now = utcnow()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO rollouts (image, kind, target_url, target_digest, build_id, workspace, status, requester,"
                " parent_id, protected, force, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rollout["image"],
                    rollout["kind"],
                    rollout["target_url"],
                    rollout["target_digest"],
                    rollout.get("build_id"),
                    rollout.get("workspace"),
                    rollout["status"],
                    rollout["requester"],
                    rollout.get("parent_id"),
                    int(bool(rollout.get("protected"))),
                    int(bool(rollout.get("force"))),
                    now,
                    now,
                ),
            )
            rollout_id = int(cur.lastrowid or 0)
            for position, item in enumerate(items):
                conn.execute(
                    "INSERT INTO rollout_items (rollout_id, position, workspace, kind, item_id, name, action, status,"
                    " locations, detail, request, restore, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        rollout_id,
                        position,
                        item["workspace"],
                        item["kind"],
                        item["item_id"],
                        item.get("name"),
                        item["action"],
                        item["status"],
                        json.dumps(list(item.get("locations") or [])),
                        item.get("detail"),
                        _dump(item.get("request")),
                        _dump(item.get("restore")),
                        now,
                    ),
                )
        return self.get_rollout(rollout_id)

    def get_rollout(self, rollout_id: int) -> Rollout:
        rows = self.query("SELECT * FROM rollouts WHERE id = ?", (rollout_id,))
        if not rows:
            raise NotFound(f"There is no rollout #{rollout_id}.")
        row = rows[0]
        items = tuple(
            _item(r)
            for r in self.query("SELECT * FROM rollout_items WHERE rollout_id = ? ORDER BY position", (rollout_id,))
        )
        return Rollout(**{**row, "protected": bool(row["protected"]), "force": bool(row["force"]), "items": items})

    def rollouts_of(self, image: str, limit: int = 10) -> list[Rollout]:
        ids = [
            r["id"]
            for r in self.query("SELECT id FROM rollouts WHERE image = ? ORDER BY id DESC LIMIT ?", (image, limit))
        ]
        return [self.get_rollout(i) for i in ids]

    def rollout_of_message(self, channel: str, ts: str) -> Rollout | None:
        rows = self.query("SELECT id FROM rollouts WHERE slack_channel = ? AND slack_ts = ?", (channel, ts))
        return self.get_rollout(rows[0]["id"]) if rows else None

    def rollback_of(self, rollout_id: int) -> Rollout | None:
        rows = self.query("SELECT id FROM rollouts WHERE parent_id = ? ORDER BY id LIMIT 1", (rollout_id,))
        return self.get_rollout(rows[0]["id"]) if rows else None

    def move_rollout(
        self, rollout_id: int, *, to: RolloutStatus, frm: tuple[RolloutStatus, ...], approved_by: str | None = None
    ) -> bool:
        """Atomically move the rollout from one of `frm` to `to`; False when someone else moved it first."""
        marks = ", ".join("?" for _ in frm)
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE rollouts SET status = ?, approved_by = COALESCE(?, approved_by), updated_at = ? "  # noqa: S608 - placeholders only
                f"WHERE id = ? AND status IN ({marks})",
                (to, approved_by, utcnow(), rollout_id, *frm),
            )
            return cur.rowcount == 1

    def attach_rollout_message(self, rollout_id: int, channel: str, ts: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE rollouts SET slack_channel = ?, slack_ts = ? WHERE id = ?", (channel, ts, rollout_id))

    def claim_item(self, item_id: int, frm: tuple[ItemStatus, ...] = ("pending",)) -> bool:
        """pending → sending for exactly one caller: the one that then sends the item's one write."""
        marks = ", ".join("?" for _ in frm)
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE rollout_items SET status = 'sending', attempts = attempts + 1, updated_at = ? "  # noqa: S608 - placeholders only
                f"WHERE id = ? AND status IN ({marks})",
                (utcnow(), item_id, *frm),
            )
            return cur.rowcount == 1

    def finish_item(self, item_id: int, status: ItemStatus, **values: Any) -> None:
        fields: dict[str, Any] = {"status": status, "updated_at": utcnow()}
        for key, value in values.items():
            fields[key] = _dump(value) if key in _JSON_ITEM_FIELDS else value
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as conn:
            conn.execute(f"UPDATE rollout_items SET {sets} WHERE id = ?", (*fields.values(), item_id))  # noqa: S608 - fixed column names

    def release_stuck_items(self, rollout_id: int, older_than: str, reason: str) -> int:
        """Items left `sending` by a process that stopped (not touched since `older_than`) → failed with `reason`,
        and their rollout running → partial; the number of items released (0: the rollout is not stuck)."""
        with self.transaction() as conn:
            busy = conn.execute(
                "SELECT COUNT(*) FROM rollout_items WHERE rollout_id = ? AND status = 'sending' AND updated_at >= ?",
                (rollout_id, older_than),
            ).fetchone()[0]
            running = conn.execute(
                "SELECT COUNT(*) FROM rollouts WHERE id = ? AND status = 'running' AND updated_at < ?",
                (rollout_id, older_than),
            ).fetchone()[0]
            if busy or not running:
                return 0
            cur = conn.execute(
                "UPDATE rollout_items SET status = 'failed', error = ?, updated_at = ? "
                "WHERE rollout_id = ? AND status IN ('sending', 'pending')",
                (reason, utcnow(), rollout_id),
            )
            conn.execute("UPDATE rollouts SET status = 'partial', updated_at = ? WHERE id = ?", (utcnow(), rollout_id))
            return cur.rowcount

    def retry_failed_items(self, rollout_id: int) -> int:
        """failed → pending; the number of items that will be tried again."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE rollout_items SET status = 'pending', updated_at = ? "
                "WHERE rollout_id = ? AND status = 'failed'",
                (utcnow(), rollout_id),
            )
            return cur.rowcount


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _item(row: dict[str, Any]) -> RolloutItem:
    data = dict(row)
    for key in _JSON_ITEM_FIELDS:
        data[key] = json.loads(data[key]) if data.get(key) else None
    data["locations"] = tuple(json.loads(data.get("locations") or "[]"))
    return RolloutItem(**data)
