"""The things the bot keeps track of (builds, pushes, launches, approvals, runs, samples): frozen dataclasses
with their status vocabularies as Literals. The store returns these; bot/store/rows.py converts its rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from bot.domain.clock import parse_time

BuildStatus = Literal["queued", "running", "succeeded", "failed", "interrupted"]
# creating: clusters/create in flight; blocked: waiting for "launch anyway"; checking: the create's outcome is
# unknown (no answer, a 5xx) and the bot looks for the cluster by the launch's tag until a lookup succeeds;
# pending: created, followed; running / failed: final; unknown: the bot stopped following (gone, or no answer
# for too long).
LaunchStatus = Literal["creating", "blocked", "checking", "pending", "running", "failed", "unknown"]
# pending, approving (PATCH in flight), approved, denied, expired, failed
ApprovalStatus = Literal["pending", "approving", "approved", "denied", "expired", "failed"]
RunOutcome = Literal["running", "succeeded", "failed", "error", "skipped", "interrupted"]
# A pushed build on its way to the moving tag: candidate (checks under way), canary (a canary cluster is running
# it), waiting (for approval), promoted (the moving tag moved to it once), and the ends where it did not:
# canary_failed, rejected, expired, superseded (a newer candidate of the image took its place).
ReleaseStatus = Literal[
    "candidate", "canary", "waiting", "promoted", "canary_failed", "rejected", "expired", "superseded"
]
OPEN_RELEASE_STATES: tuple[ReleaseStatus, ...] = ("candidate", "canary", "waiting")

BUILD_STATES: tuple[BuildStatus, ...] = get_args(BuildStatus)
FINISHED_BUILD_STATES: tuple[BuildStatus, ...] = ("succeeded", "failed", "interrupted")
ACTIVE_LAUNCH_STATES: tuple[LaunchStatus, ...] = ("creating", "checking", "pending")
FINAL_LAUNCH_STATES: tuple[LaunchStatus, ...] = ("running", "failed", "unknown")


@dataclass(frozen=True)
class ProcessOwner:
    """A process on a host: its pid and its start time (a pid reused by a later process has another one)."""

    host: str
    pid: int
    started: str | None  # opaque, comparable for equality only (Linux: /proc/<pid>/stat start ticks)

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class Build:
    id: int
    image: str
    status: BuildStatus
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
    # The process that owns the build (queued or running) and its last sign of life, so that another
    # process can tell a build that is still going from one whose process died.
    owner_host: str | None = None
    owner_pid: int | None = None
    owner_started: str | None = None
    heartbeat_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_BUILD_STATES

    @property
    def owner(self) -> ProcessOwner | None:
        if self.owner_host is None or self.owner_pid is None:
            return None
        return ProcessOwner(self.owner_host, self.owner_pid, self.owner_started)

    @property
    def duration_seconds(self) -> float | None:
        start, end = parse_time(self.started_at), parse_time(self.finished_at)
        return (end - start).total_seconds() if start and end else None


@dataclass(frozen=True)
class Release:
    """The release-gate state of one pushed build (bot/domain/release.py says what its policy needs)."""

    build_id: int
    image: str
    digest: str
    policy: str
    status: ReleaseStatus
    immutable_tag: str | None = None
    requester: str | None = None
    approvals_needed: int = 0
    expires_at: str | None = None
    canary: dict[str, Any] = field(default_factory=dict)  # the canary's record: cluster, state, result
    reason: str | None = None  # why it ended where it did (canary failed because…, rejected by…)
    slack_channel: str | None = None
    slack_ts: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def open(self) -> bool:
        return self.status in OPEN_RELEASE_STATES


@dataclass(frozen=True)
class Promotion:
    """One move of an image's moving tag to a build's digest (`undone_at`: rolled back since)."""

    id: int
    image: str
    build_id: int
    tag: str
    digest: str
    how: str  # doctor, canary, approval, manual, rollback
    at: str
    actor: str | None = None
    undone_at: str | None = None


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


@dataclass(frozen=True)
class Launch:
    id: int
    image: str
    status: LaunchStatus
    build_id: int | None = None
    requester: str | None = None
    cluster_id: str | None = None
    cluster_name: str | None = None
    image_url: str | None = None
    request: dict[str, Any] = field(default_factory=dict)  # shown body, request, warnings, budget: no secrets
    state: str | None = None
    state_message: str | None = None
    termination_code: str | None = None
    pulls_needed: int | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    create_sent_at: str | None = None  # when clusters/create was sent (a lookup before it settled proves nothing)
    lookup_error: str | None = None  # why the last lookup by tag failed (the launch stays `checking`)
    duplicates_terminated: tuple[str, ...] = ()  # clusters carrying this launch's tag that the bot terminated

    @property
    def finished(self) -> bool:
        return self.status in FINAL_LAUNCH_STATES

    @property
    def workspace(self) -> str | None:
        """The workspace (DCS_WORKSPACES name) the launch went to; None: the default (and older launches)."""
        value = self.request.get("workspace")
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class ApprovalRequest:
    id: int
    kind: str
    requester: str
    status: ApprovalStatus
    decided_by: str | None = None
    decided_at: str | None = None
    expires_at: str | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    note: str | None = None
    created_at: str | None = None

    @property
    def workspace(self) -> str | None:
        """The workspace an `enableDcs@<name>` request is for; None: the default (a plain `enableDcs`)."""
        _, sep, name = self.kind.partition("@")
        return name if sep and name else None

    def expired(self, now: datetime) -> bool:
        deadline = parse_time(self.expires_at)
        return deadline is not None and now >= deadline


@dataclass(frozen=True)
class JobRun:
    """One recorded run of a scheduled job (or of its manual trigger)."""

    id: int
    job_id: str
    started_at: str
    outcome: RunOutcome
    finished_at: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BaseCheckRecord:
    """The last manifest HEAD of a base: the digest last seen (kept when a later check fails) and the error."""

    base_ref: str
    digest: str | None
    checked_at: str | None
    error: str | None


@dataclass(frozen=True)
class PullSample:
    """One reading of the Docker Hub pull budget."""

    id: int
    at: str
    account: str | None
    limit: int | None
    remaining: int | None
    window_seconds: int | None
    source: str | None  # "unlimited" when the registry sent no rate-limit headers


@dataclass(frozen=True)
class ImageStatus:
    """One catalog image with its latest build and latest successful build (either may be None)."""

    name: str
    base: str
    repository: str
    schedule: str | None
    last: Build | None
    last_good: Build | None
    check: ImageCheck | None = None  # when a rebuild run last looked at it, and what it found
    candidate: Release | None = None  # a pushed build not promoted yet (bot/ops/release.py)


@dataclass(frozen=True)
class ImageCheck:
    """The last time a rebuild run (scheduled or by hand) looked at an image, and what it decided."""

    name: str
    checked_at: str
    status: str  # rebuilt, failed, unchanged or skipped
    note: str | None = None
    source: str | None = None  # schedule, slack, cli


@dataclass(frozen=True)
class LaunchDemandRow:
    created_at: str | None
    pulls_needed: int | None
    image_url: str | None
    cluster_id: str | None
    status: LaunchStatus


@dataclass(frozen=True)
class SlackForm:
    """A Slack view the bot opened, as the store remembers it (bot/store/forms.py)."""

    view_id: str
    kind: str  # "launch", …
    user: str  # the Slack user it was opened for
    state: dict[str, Any]
    created_at: str
