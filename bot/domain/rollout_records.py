"""The rows of a rollout (or rollback) and of each workspace item it changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RolloutStatus = Literal["proposed", "awaiting_approval", "ready", "running", "done", "partial", "failed", "cancelled"]
ItemStatus = Literal["pending", "sending", "done", "unchanged", "failed", "manual", "refused"]
OPEN_ITEM_STATES = ("pending", "sending")


@dataclass(frozen=True)
class RolloutItem:
    id: int
    rollout_id: int
    position: int
    workspace: str
    kind: str
    item_id: str
    name: str | None
    action: str
    status: ItemStatus
    locations: tuple[str, ...] = ()
    detail: str | None = None  # the note: restarts, the way forward, who manages it
    request: dict[str, Any] | None = None  # the body sent (or to send)
    previous: dict[str, Any] | None = None  # the item as read right before the write
    restore: dict[str, Any] | None = None  # the body that puts it back
    error: str | None = None
    attempts: int = 0
    updated_at: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name or self.item_id}" + (f" ({self.workspace})" if self.workspace else "")


@dataclass(frozen=True)
class Rollout:
    id: int
    image: str
    kind: str  # rollout or rollback
    target_url: str
    target_digest: str
    status: RolloutStatus
    requester: str
    build_id: int | None = None
    workspace: str | None = None
    approved_by: str | None = None
    parent_id: int | None = None
    protected: bool = False
    force: bool = False
    slack_channel: str | None = None
    slack_ts: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    items: tuple[RolloutItem, ...] = field(default=(), compare=False)

    def count(self, *statuses: str) -> int:
        return sum(1 for i in self.items if i.status in statuses)

    @property
    def writes(self) -> tuple[RolloutItem, ...]:
        """Items the rollout edits itself (not the ones left to their source, pools, or already there)."""
        return tuple(i for i in self.items if i.action not in ("manual", "unchanged"))
