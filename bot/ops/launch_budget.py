"""The pull budget a launch needs: checked before `clusters/create` (zero left holds the launch back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.domain.clusterspec import ImageSource, LaunchPlan
from bot.domain.ratelimit import PullBudget
from bot.errors import DcsError, PullLimitReached, RegistryError
from bot.services import Services

BudgetStatus = Literal["ok", "low", "blocked", "unknown", "not_applicable"]


@dataclass(frozen=True)
class BudgetCheck:
    """The pull budget against what a launch needs. `status`: ok, low, blocked, unknown or not_applicable."""

    status: BudgetStatus
    needed: int
    ceiling: int
    message: str = ""
    remaining: int | None = None
    limit: int | None = None

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"


def check_budget(services: Services, source: ImageSource, plan: LaunchPlan) -> BudgetCheck:
    """The Docker Hub pull budget of the account the cluster pulls with, against what the launch needs."""
    needed, ceiling = plan.pulls_at_start, plan.pulls_ceiling
    if not source.spec.repository_ref.on_docker_hub:
        return BudgetCheck("not_applicable", needed, ceiling, "The image is not on Docker Hub: no pull limit.")
    registry = source.registry
    if registry is None or not registry.username:
        return BudgetCheck(
            "unknown",
            needed,
            ceiling,
            (
                "The cluster pulls from Docker Hub anonymously: its pulls count against the cluster's own "
                f"IP address, which the bot cannot measure. This launch needs {needed} pull(s)."
            ),
        )
    try:
        credentials = services.credentials(registry, source.spec.repository_ref.domain)
    except DcsError as exc:
        credentials, reason = None, exc.message
    else:
        reason = f"the bot has no password for {registry.username} (password_env is not set)"
    if credentials is None:
        return BudgetCheck("unknown", needed, ceiling, f"The pull budget could not be read: {reason.rstrip('.')}.")
    try:
        budget: PullBudget = services.dockerhub.pull_budget(credentials)
    except PullLimitReached as exc:
        return BudgetCheck(
            "blocked",
            needed,
            ceiling,
            _blocked_text(needed, registry.username, exc.message),
            remaining=0,
            limit=getattr(exc, "limit", None),
        )
    except RegistryError as exc:
        return BudgetCheck("unknown", needed, ceiling, f"The pull budget could not be read: {exc.message}")
    if budget.unlimited:
        return BudgetCheck("ok", needed, ceiling, f"{registry.username} has no Docker Hub pull limit.")
    remaining, limit = budget.remaining, budget.limit
    if remaining is None:
        return BudgetCheck("unknown", needed, ceiling, "Docker Hub did not say how many pulls are left.", limit=limit)
    window = budget.window_label
    numbers = (
        f"{registry.username} has {remaining} of {limit} pulls left per {window}; this launch needs "
        f"{needed} at start" + (f" and up to {ceiling} when it scales up" if ceiling > needed else "")
    )
    if remaining <= 0:
        return BudgetCheck(
            "blocked", needed, ceiling, _blocked_text(needed, registry.username, numbers), remaining, limit
        )
    if remaining < ceiling:
        what = "not enough to start every node" if remaining < needed else "not enough to scale all the way up"
        return BudgetCheck(
            "low", needed, ceiling, f"{numbers}: {what}; nodes beyond that fail to pull.", remaining, limit
        )
    return BudgetCheck("ok", needed, ceiling, numbers + ".", remaining, limit)


def _blocked_text(needed: int, account: str, numbers: str) -> str:
    # `numbers` may be a whole sentence already (a 429's explanation): one full stop, never "registry.. Docker"
    return (
        f"{numbers.rstrip().rstrip('.')}. Docker Hub would refuse the cluster's pulls now, so the launch is on hold "
        f"(it needs {needed}). Wait for the window to reset, or launch anyway."
    )
