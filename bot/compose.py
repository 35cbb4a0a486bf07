"""The composition root: the one place that puts the core, the Slack delivery and the jobs together.

`build_services(config)` is what `dcs-bot`, the `dcs` CLI and the tests use: the store and the clients
(bot/services.py) plus, when a Slack token is configured, the Slack notifier that delivers the jobs'
reports. `attach_bot(services, workers)` adds what only a running bot has: the launch tracker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.config import Config
from bot.services import Services

if TYPE_CHECKING:  # annotations only: a CLI command that reports nothing need not import them
    from bot.domain.notify import BudgetAlert
    from bot.domain.rebuild import ChannelReport
    from bot.domain.records import ApprovalRequest, Launch, Release
    from bot.workers import Workers


def build_services(config: Config) -> Services:
    services = Services.from_config(config)
    if config.slack_bot_token:
        services.notifier = LazySlackNotifier(config, services)
    return services


class LazySlackNotifier:
    """The Slack notifier, made at its first report: a `dcs image list` on the bot's machine (its .env has the
    Slack token) never loads slack_bolt and the Slack surfaces just to print a table."""

    def __init__(self, config: Config, services: Services) -> None:
        self._config = config
        self._services = services
        self._notifier: Any = None

    def _real(self) -> Any:
        if self._notifier is None:
            # Imported on first use on purpose: the Slack surfaces and slack_sdk cost more than most commands.
            from bot.clients.slack import make_web_client

            # Imported on first use on purpose (see above).
            from handlers.notifier import SlackNotifier

            self._notifier = SlackNotifier(make_web_client(self._config), self._services)
        return self._notifier

    def rebuild_report(self, report: ChannelReport) -> bool:
        return bool(self._real().rebuild_report(report))

    def budget_alert(self, alert: BudgetAlert) -> bool:
        return bool(self._real().budget_alert(alert))

    def launch_changed(self, launch: Launch) -> bool:
        return bool(self._real().launch_changed(launch))

    def approval_changed(self, request: ApprovalRequest) -> bool:
        return bool(self._real().approval_changed(request))

    def release_changed(self, release: Release) -> bool:
        return bool(self._real().release_changed(release))


def attach_bot(services: Services, workers: Workers) -> None:
    """The parts of a running bot process: launches created from Slack are followed in its worker pool."""
    # Imported here on purpose: only a running bot follows launches; the CLI never needs the jobs package.
    from jobs.clusters import tracker_for

    tracker_for(services, workers)
