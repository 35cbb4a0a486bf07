"""Slack forms and messages the bot made, and what each is for — so an interaction is answered from the store.

Forms: who opened which view, for what (image, build, channel, dedicated user). Messages: which build or launch
a message the bot posted belongs to, and which approval request (a button on it acts on that one, whatever its
`value` says).

A view submission is answered from this row, keyed by the view's id, never from what the client sends back
(`private_metadata`): the state that decides who is affected is the bot's own. A row lives until its form is
submitted or for FORM_TTL_SECONDS (a Slack view lives at most a few hours); older rows go whenever a form is saved.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.clock import stamp
from bot.domain.records import ApprovalRequest, Build, Launch, SlackForm
from bot.store.base import StoreBase
from bot.store.rows import build_from_row, launch_from_row

FORM_TTL_SECONDS = 24 * 3600


class FormTables(StoreBase):
    def save_form(self, view_id: str, *, kind: str, user: str, state: dict[str, Any]) -> None:
        """Remember (or update) what a form was opened for; forms older than FORM_TTL_SECONDS are dropped."""
        moment = datetime.now(UTC)
        now, cutoff = stamp(moment), stamp(moment - timedelta(seconds=FORM_TTL_SECONDS))
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO slack_forms (view_id, kind, user, state, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(view_id) DO UPDATE SET state = excluded.state",
                (view_id, kind, user, json.dumps(state), now),
            )
            conn.execute("DELETE FROM slack_forms WHERE created_at < ?", (cutoff,))

    def form(self, view_id: str, kind: str) -> SlackForm | None:
        rows = self.query("SELECT * FROM slack_forms WHERE view_id = ? AND kind = ?", (view_id, kind))
        if not rows:
            return None
        row = rows[0]
        return SlackForm(row["view_id"], row["kind"], row["user"], json.loads(row["state"]), row["created_at"])

    def drop_form(self, view_id: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM slack_forms WHERE view_id = ?", (view_id,))

    # ------------------------------------------------------------ messages
    def build_of_message(self, channel: str, ts: str) -> Build | None:
        """The build whose Slack message this is (its result message carries the Launch/Log buttons)."""
        rows = self.query("SELECT * FROM builds WHERE slack_channel = ? AND slack_ts = ?", (channel, ts))
        return build_from_row(rows[0]) if rows else None

    def launch_of_message(self, channel: str, ts: str) -> Launch | None:
        """The launch whose Slack message this is (it carries the "Launch anyway" button)."""
        rows = self.query("SELECT * FROM launches WHERE slack_channel = ? AND slack_ts = ?", (channel, ts))
        return launch_from_row(rows[0]) if rows else None

    def approval_of_message(self, channel: str, ts: str) -> ApprovalRequest | None:
        """The approval request whose Slack message this is (it carries Approve / Deny)."""
        rows = self.query("SELECT * FROM approvals WHERE slack_channel = ? AND slack_ts = ?", (channel, ts))
        return ApprovalRequest(**rows[0]) if rows else None
