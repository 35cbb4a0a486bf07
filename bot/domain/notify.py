"""The notifier port: jobs and operations produce report objects, a notifier delivers them.

The core only knows this Protocol; the Slack implementation lives in handlers/notifier.py and is wired in
by the composition root (bot/compose.py). Without Slack (the CLI with no SLACK_BOT_TOKEN, tests) the
`NullNotifier` delivers nothing and says so. A method returns True when the report was delivered and raises
a DcsError when delivery failed (the caller decides whether to retry, keep state, or report the problem).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from bot.domain.ratelimit import BudgetReport
    from bot.domain.rebuild import ChannelReport
    from bot.store import ApprovalRequest, Launch, Release


@dataclass(frozen=True)
class BudgetAlert:
    """A crossing of the pull-budget warning line: a warning (with why) or the all-clear."""

    kind: Literal["warning", "all_clear"]
    report: BudgetReport
    reason: str
    channel: str


class Notifier(Protocol):
    def rebuild_report(self, report: ChannelReport) -> bool:
        """One rebuild run's summary for one channel (`report.channel`)."""
        ...

    def budget_alert(self, alert: BudgetAlert) -> bool:
        """A pull-budget warning or all-clear."""
        ...

    def launch_changed(self, launch: Launch) -> bool:
        """A launch moved on (state, message, final result): its message follows it."""
        ...

    def approval_changed(self, request: ApprovalRequest) -> bool:
        """An approval request was decided or expired: its message shows the outcome."""
        ...

    def release_changed(self, release: Release) -> bool:
        """A release candidate waits for approval (first call: the message with Approve/Reject is posted) or was
        decided, promoted or expired (its message follows)."""
        ...


class NullNotifier:
    """Delivers nothing (no Slack configured)."""

    def rebuild_report(self, report: ChannelReport) -> bool:
        return False

    def budget_alert(self, alert: BudgetAlert) -> bool:
        return False

    def launch_changed(self, launch: Launch) -> bool:
        return False

    def approval_changed(self, request: ApprovalRequest) -> bool:
        return False

    def release_changed(self, release: Release) -> bool:
        return False
