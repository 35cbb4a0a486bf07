"""After a clusters/create whose outcome is unknown: find the launch's cluster by its tag, never create again.

The create is sent once (bot/clients/databricks.py). When no cluster id came back (no answer, a reset
connection, a timeout, any 5xx), the launch is `checking`: the bot lists every page of clusters/list for the
launch's `dcs_request` tag, a few times at once and then at every tracking step, in this process and, resumed
at start-up, after a restart.

- One cluster carries the tag: it is adopted and followed like any other.
- Several do: one is kept (bot/domain/orphans.py), the other live ones are terminated, and both the audit log
  and the launch message say so.
- None does, by a lookup that saw every page, made once the create had time to land: "nothing was created"
  (the launch fails, and may be launched again).
- The lookup itself failed (clusters/list answered 503, the workspace is unreachable): nothing is concluded;
  the launch stays `checking`, says why, and the bot keeps looking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.clients.databricks import DatabricksClient
from bot.domain.clock import parse_time
from bot.domain.clusterspec import TAG_REQUEST
from bot.domain.orphans import keep_one
from bot.domain.records import Launch
from bot.errors import WorkspaceError
from bot.services import Services

log = logging.getLogger(__name__)

NOT_CREATED = (
    "Databricks did not confirm the create, and a complete lookup found no cluster with this launch's tag: "
    "nothing was created. Launch again."
)


class CreateChecks:
    """Resolves launches in `checking`. `settle_seconds`: how long after the create was sent an empty lookup
    still proves nothing (Databricks may still be creating it); `attempts` lookups at once, `delay` apart."""

    def __init__(
        self, services: Services, *, settle_seconds: float, attempts: int, delay: float, sleep: Callable[[float], None]
    ) -> None:
        self.services = services
        self.store = services.store
        self.settle_seconds = settle_seconds
        self.attempts = attempts
        self.delay = delay
        self.sleep = sleep

    def unconfirmed(self, launch: Launch, why: str) -> Launch:
        """The create got no usable answer (or the bot stopped while it was in flight): look for the cluster."""
        why = self.services.redactor(why)
        launch = self.store.update_launch(
            launch.id,
            status="checking",
            state="CHECKING",
            state_message=(
                f"Databricks did not confirm the create ({why}). Looking for the cluster by this launch's tag; "
                "nothing is created again."
            ),
        )
        self._audit(launch, "launch.create", "unconfirmed", why)
        return self.check(launch, attempts=self.attempts)

    def check(self, launch: Launch, *, attempts: int = 1) -> Launch:
        """Up to `attempts` lookups, `delay`, 2×`delay`, … apart; stops as soon as one decides."""
        for attempt in range(attempts):
            if attempt:
                self.sleep(self.delay * attempt)
            launch = self._look(launch)
            if launch.status != "checking":
                break
        return launch

    # ------------------------------------------------------------ one lookup
    def _look(self, launch: Launch) -> Launch:
        tag = str(launch.request.get("request_tag") or "")
        try:
            found = self._client(launch).find_clusters_by_tag(TAG_REQUEST, tag) if tag else []
        except WorkspaceError as exc:
            problem = self.services.redactor(exc.message)
            log.warning("launch %s: could not look for its cluster: %s", launch.id, problem)
            return self._note(
                launch,
                lookup_error=problem,
                state_message=(
                    f"Could not look for the cluster yet: {problem} The bot keeps trying; nothing is created again."
                ),
            )
        if found:
            return self._adopt(launch, found)
        if not self._settled(launch):
            return self._note(
                launch,
                lookup_error=None,
                state_message="No cluster carries this launch's tag yet; Databricks may still be creating it. "
                "Looking again shortly.",
            )
        launch = self.store.update_launch(
            launch.id, status="failed", state="NOT_CREATED", state_message=NOT_CREATED, lookup_error=None
        )
        self._audit(launch, "launch.create", "not created", "no cluster carries the launch's tag (every page listed)")
        return launch

    def _client(self, launch: Launch) -> DatabricksClient:
        return self.services.workspace(launch.workspace)

    def _settled(self, launch: Launch) -> bool:
        sent = parse_time(launch.create_sent_at or launch.created_at)
        return sent is None or (datetime.now(UTC) - sent).total_seconds() >= self.settle_seconds

    def _note(self, launch: Launch, **changes: Any) -> Launch:
        """Write only what changed, so that an unchanged wait does not touch the row (or the Slack message)."""
        changes = {k: v for k, v in changes.items() if getattr(launch, k) != v}
        return self.store.update_launch(launch.id, **changes) if changes else launch

    def _adopt(self, launch: Launch, found: list[dict[str, Any]]) -> Launch:
        survivor = keep_one(found)
        keep_id = str(survivor.keep.get("cluster_id"))
        terminated, problems = [], []
        for duplicate in survivor.terminate:
            cluster_id = str(duplicate.get("cluster_id"))
            try:
                self._client(launch).terminate_cluster(cluster_id)
                terminated.append(cluster_id)
            except WorkspaceError as exc:
                problems.append(f"{cluster_id} ({self.services.redactor(exc.message)})")
        message = "Found the cluster by this launch's tag (Databricks had not confirmed the create)."
        if survivor.duplicates:
            extra = [str(c.get("cluster_id")) for c in survivor.stopped]
            message += (
                f" Databricks had made {survivor.duplicates + 1} clusters for this launch: kept {keep_id}"
                + (f", terminated {', '.join(terminated)}" if terminated else "")
                + (f" ({', '.join(extra)} had already stopped)" if extra else "")
                + "."
            )
            if problems:
                message += f" Could not terminate {'; '.join(problems)}: terminate it in the workspace."
            self._audit(
                launch,
                "launch.duplicates",
                "partly terminated" if problems else "terminated",
                f"kept {keep_id}; terminated {', '.join(terminated) or 'none'}"
                + (f"; failed {'; '.join(problems)}" if problems else "")
                + (f"; already stopped {', '.join(extra)}" if extra else ""),
            )
            log.warning("launch %s: %s", launch.id, message)
        self._audit(launch, "launch.create", "adopted", keep_id)
        return self.store.update_launch(
            launch.id,
            cluster_id=keep_id,
            status="pending",
            state=str(survivor.keep.get("state") or "PENDING"),
            state_message=message,
            lookup_error=None,
            duplicates_terminated=tuple(terminated),
        )

    def _audit(self, launch: Launch, action: str, outcome: str, detail: str) -> None:
        self.store.audit(
            actor=launch.requester, action=action, target=f"{launch.image}#{launch.id}", outcome=outcome, detail=detail
        )
