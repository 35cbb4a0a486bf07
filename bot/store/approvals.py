"""The approvals table: four-eyes requests and their atomic `pending → …` transitions."""

from __future__ import annotations

from typing import Any

from bot.domain.records import ApprovalRequest, ApprovalStatus
from bot.errors import NotFound
from bot.store.base import StoreBase


class ApprovalTables(StoreBase):
    def insert_approval(self, *, kind: str, requester: str, expires_at: str, note: str | None, created_at: str) -> int:
        with self.transaction():
            table = self.table("approvals").insert(
                {
                    "kind": kind,
                    "requester": requester,
                    "status": "pending",
                    "expires_at": expires_at,
                    "note": note,
                    "created_at": created_at,
                }
            )
            return int(table.last_rowid or 0)

    def get_approval(self, request_id: int) -> ApprovalRequest:
        rows = self.query("SELECT * FROM approvals WHERE id = ?", (request_id,))
        if not rows:
            raise NotFound(f"No approval request #{request_id}.")
        return ApprovalRequest(**rows[0])

    def open_approvals(self, kind: str) -> list[ApprovalRequest]:
        rows = self.query("SELECT * FROM approvals WHERE kind = ? AND status = 'pending' ORDER BY id", (kind,))
        return [ApprovalRequest(**r) for r in rows]

    def approvals_due(self, now: str) -> list[int]:
        """Pending requests whose expiry has passed."""
        rows = self.query("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?", (now,))
        return [r["id"] for r in rows]

    def transition_approval(
        self,
        request_id: int,
        *,
        to: ApprovalStatus,
        frm: tuple[ApprovalStatus, ...],
        at: str,
        actor: str | None = None,
        note: str | None = None,
        unexpired: bool = False,
    ) -> bool:
        """Atomically move the request from one of `frm` to `to`; False when someone else moved it first."""
        marks = ", ".join("?" for _ in frm)
        sql = (
            "UPDATE approvals SET status = ?, decided_by = COALESCE(?, decided_by), decided_at = ?, "  # noqa: S608 - placeholders only
            f"note = COALESCE(?, note) WHERE id = ? AND status IN ({marks})"
        )
        params: list[Any] = [to, actor, at, note, request_id, *frm]
        if unexpired:
            sql += " AND expires_at > ?"
            params.append(at)
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount == 1

    def attach_approval_message(self, request_id: int, channel: str, ts: str) -> ApprovalRequest:
        with self.transaction():
            self.table("approvals").update(request_id, {"slack_channel": channel, "slack_ts": ts})
        return self.get_approval(request_id)
