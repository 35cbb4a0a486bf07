"""Switching Databricks Container Services on (`enableDcs`) with four eyes: one asks, another admin decides.

Rules: `GET workspace-conf?keys=enableDcs` first (already "true" → nothing to ask); a request lives 24 h;
only a DCS_ADMINS member other than the requester may approve or deny; the decision is an atomic
`pending → …` transition in SQLite, so double clicks and two admins at once produce exactly one
`PATCH /api/2.0/workspace-conf {"enableDcs": "true"}`. The PATCH needs a workspace admin: the bot reads
its own SCIM `Me` groups up front and says so in the request when it lacks `admins`. Every step is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.clients.databricks import DatabricksClient, Identity
from bot.domain.clock import stamp
from bot.domain.records import ApprovalRequest, ApprovalStatus
from bot.errors import DcsError
from bot.services import Services

log = logging.getLogger(__name__)

ENABLE_DCS = "enableDcs"
TTL = timedelta(hours=24)
DECIDED = ("approved", "denied", "expired", "failed")


def _now() -> datetime:
    return datetime.now(UTC)


def refusal(request: ApprovalRequest, actor: str, admins: Collection[str], now: datetime) -> str | None:
    """Why `actor` may not decide `request` now (None: they may). Pure; the order is what users see first."""
    if actor not in admins:
        return (
            "Only a bot admin (listed in DCS_ADMINS) can approve or deny switching on Container Services. "
            "Nothing was changed."
        )
    if actor == request.requester:
        return "You asked for this, so another admin has to decide (four eyes). Nothing was changed."
    if request.status == "approving":
        return "Another admin is approving this request right now. Nothing else was changed."
    if request.status != "pending":
        who = f" by <@{request.decided_by}>" if request.decided_by else ""
        return f"This request is already {request.status}{who}. Nothing was changed."
    if request.expired(now):
        return "This request expired (requests last 24 h). Ask again with `/dcs enable`."
    return None


@dataclass(frozen=True)
class EnableStart:
    """What `/dcs enable` found: already on, an open request, or a new one."""

    outcome: str  # already_enabled, pending_exists, created
    request: ApprovalRequest | None = None
    bot_identity: Identity | None = None
    bot_admin: bool | None = None  # None: the bot could not read its own identity
    identity_problem: str | None = None


@dataclass(frozen=True)
class Decision:
    request: ApprovalRequest
    changed: bool  # this click moved the request (the message must be updated)
    refusal: str | None = None
    error: DcsError | None = None  # the approval was taken but Databricks refused the PATCH


# ---------------------------------------------------------------- the service


class Approvals:
    def __init__(self, services: Services, *, ttl: timedelta = TTL, clock: Callable[[], datetime] = _now) -> None:
        self.services = services
        self.store = services.store
        self.ttl = ttl
        self.clock = clock

    @property
    def admins(self) -> Collection[str]:
        return self.services.config.admins

    def kind(self, workspace: str | None) -> str:
        """The approval kind: `enableDcs` with one unnamed workspace, `enableDcs@<name>` with DCS_WORKSPACES."""
        ws = self.services.config.workspace(workspace)
        return f"{ENABLE_DCS}@{ws.name}" if self.services.config.workspaces else ENABLE_DCS

    def client(self, request: ApprovalRequest | None = None, workspace: str | None = None) -> DatabricksClient:
        return self.services.workspace(request.workspace if request is not None else workspace)

    def _audit(
        self,
        actor: str | None,
        action: str,
        request_id: int | None,
        outcome: str,
        detail: str | None = None,
        kind: str = ENABLE_DCS,
    ) -> None:
        self.store.audit(
            actor=actor,
            action=action,
            target=f"{kind}#{request_id}" if request_id else kind,
            outcome=outcome,
            detail=self.services.redactor(detail) if detail else None,
        )

    def _transition(
        self,
        request_id: int,
        *,
        to: ApprovalStatus,
        frm: tuple[ApprovalStatus, ...],
        now: datetime,
        actor: str | None = None,
        note: str | None = None,
        unexpired: bool = False,
    ) -> bool:
        return self.store.transition_approval(
            request_id, to=to, frm=frm, at=stamp(now), actor=actor, note=note, unexpired=unexpired
        )

    def bot_identity(self, client: DatabricksClient | None = None) -> tuple[Identity | None, str | None]:
        try:
            return (client or self.services.databricks).me(), None
        except DcsError as exc:
            return None, exc.message

    def start(self, requester: str, workspace: str | None = None) -> EnableStart:
        """`/dcs enable [workspace]`: read the setting; open (or reuse) a request when it is off."""
        kind = self.kind(workspace)
        client = self.client(workspace=workspace)
        value = client.workspace_conf(ENABLE_DCS).get(ENABLE_DCS)
        if str(value).lower() == "true":
            self._audit(requester, "enable.request", None, "already_enabled", kind=kind)
            return EnableStart("already_enabled")
        self.expire_due()
        existing = self.store.open_approvals(kind)
        if existing:
            self._audit(requester, "enable.request", existing[0].id, "pending_exists", kind=kind)
            return EnableStart("pending_exists", existing[0])
        identity, problem = self.bot_identity(client)
        admin = identity.is_admin if identity else None
        note = None
        if identity is not None and admin is False:
            note = (
                f"The bot's Databricks identity ({identity.user_name}) is not a workspace admin, so approving "
                "cannot switch the setting on until it is added to the workspace's admins group."
            )
        elif admin is None:
            note = f"The bot could not read its own Databricks identity: {problem}"
        now = self.clock()
        request_id = self.store.insert_approval(
            kind=kind, requester=requester, expires_at=stamp(now + self.ttl), note=note, created_at=stamp(now)
        )
        self._audit(
            requester, "enable.request", request_id, "pending", f"value was {value!r}; bot admin: {admin}", kind=kind
        )
        return EnableStart("created", self.store.get_approval(request_id), identity, admin, problem)

    def attach_message(self, request_id: int, channel: str, ts: str) -> ApprovalRequest:
        return self.store.attach_approval_message(request_id, channel, ts)

    def decide(self, request_id: int, actor: str, *, approve: bool) -> Decision:
        action = "enable.approve" if approve else "enable.deny"
        now = self.clock()
        request = self.store.get_approval(request_id)
        kind = request.kind
        reason = refusal(request, actor, self.admins, now)
        if (
            reason
            and request.status == "pending"
            and request.expired(now)
            and actor in self.admins
            and actor != request.requester
        ):
            changed = self._transition(request_id, to="expired", frm=("pending",), now=now)
            self._audit(actor, action, request_id, "expired", kind=kind)
            return Decision(self.store.get_approval(request_id), changed, reason)
        if reason:
            self._audit(actor, action, request_id, "refused", reason, kind=kind)
            return Decision(request, False, reason)
        if not approve:
            if not self._transition(request_id, to="denied", frm=("pending",), now=now, actor=actor, unexpired=True):
                return self._lost(request_id, actor, action, now)
            self._audit(actor, action, request_id, "denied", kind=kind)
            return Decision(self.store.get_approval(request_id), True)
        identity, problem = self.bot_identity(self.client(request))
        if identity is not None and not identity.is_admin:
            reason = (
                f"The bot's Databricks identity ({identity.user_name}) is not a workspace admin, so it cannot "
                "switch Container Services on. Add it to the workspace's admins group, then approve again."
            )
            self._audit(actor, action, request_id, "refused", reason, kind=kind)
            return Decision(request, False, reason)
        if not self._transition(request_id, to="approving", frm=("pending",), now=now, actor=actor, unexpired=True):
            return self._lost(request_id, actor, action, now)
        try:
            self.client(request).set_workspace_conf({ENABLE_DCS: "true"})
        except DcsError as exc:
            self._transition(
                request_id,
                to="failed",
                frm=("approving",),
                now=self.clock(),
                note=self.services.redactor(exc.message),
            )
            self._audit(actor, action, request_id, "failed", exc.message, kind=kind)
            return Decision(self.store.get_approval(request_id), True, error=exc)
        self._transition(request_id, to="approved", frm=("approving",), now=self.clock())
        self._audit(actor, action, request_id, "approved", "PATCH workspace-conf enableDcs=true", kind=kind)
        return Decision(self.store.get_approval(request_id), True)

    def _lost(self, request_id: int, actor: str, action: str, now: datetime) -> Decision:
        """Someone else decided between our check and our update (double click, two admins)."""
        current = self.store.get_approval(request_id)
        reason = refusal(current, actor, self.admins, now) or "This request was already decided."
        self._audit(actor, action, request_id, "duplicate", f"already {current.status}", kind=current.kind)
        return Decision(current, False, reason)

    def expire_due(self) -> list[ApprovalRequest]:
        """Mark pending requests older than their expiry; returns them (their messages need updating)."""
        now = self.clock()
        expired = []
        for request_id in self.store.approvals_due(stamp(now)):
            if self._transition(request_id, to="expired", frm=("pending",), now=now):
                request = self.store.get_approval(request_id)
                self._audit(None, "enable.expire", request_id, "expired", kind=request.kind)
                expired.append(request)
        return expired


def approvals_for(services: Services) -> Approvals:
    """The process's approvals service (tests put one with a fixed clock in `services.approvals`)."""
    if services.approvals is None:
        services.approvals = Approvals(services)
    return services.approvals


@dataclass(frozen=True)
class WorkspaceStatus:
    """`dcs workspace`: the workspace's enableDcs setting and the bot's own identity there."""

    host: str
    value: str | None
    identity: Identity
    workspace: str = "default"

    @property
    def enabled(self) -> bool:
        return str(self.value).lower() == "true"


def workspace_status(services: Services, workspace: str | None = None) -> WorkspaceStatus:
    client = services.workspace(workspace)
    value = client.workspace_conf(ENABLE_DCS).get(ENABLE_DCS)
    return WorkspaceStatus(client.host, value, client.me(), client.name)
