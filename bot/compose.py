"""The composition root: the one place that puts the core, the Slack delivery and the jobs together.

`build_services(config)` is what `dcs-bot`, the `dcs` CLI and the tests use: the store and the clients
(bot/services.py) plus, when a Slack token is configured, the Slack notifier that delivers the jobs'
reports. `attach_bot(services, workers)` adds what only a running bot has: the launch tracker.
"""

from __future__ import annotations

from bot.clients.slack import make_web_client
from bot.config import Config
from bot.services import Services
from bot.workers import Workers
from handlers.notifier import SlackNotifier
from jobs.clusters import tracker_for


def build_services(config: Config) -> Services:
    services = Services.from_config(config)
    if config.slack_bot_token:
        services.notifier = SlackNotifier(make_web_client(config), services)
    return services


def attach_bot(services: Services, workers: Workers) -> None:
    """The parts of a running bot process: launches created from Slack are followed in its worker pool."""
    tracker_for(services, workers)
