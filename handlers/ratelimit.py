"""`/dcs ratelimit`: the Docker Hub pull budget (App Home shows it too, handlers/home.py).

The command answers from the stored samples (no network before the ack). When the last sample is older than
two check intervals, or there is none, it also asks Docker Hub on the quick lane (a token and a manifest
HEAD: no pull spent) and sends the fresh numbers through the response_url.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from slack_bolt import App

from bot.domain.permissions import Role
from bot.ops.budget import budget_is_stale, budget_report, pull_budget
from handlers import blocks as bk
from handlers.commands import CommandContext, Subcommand
from handlers.context import AppContext
from handlers.notices import budget_message
from handlers.respond import tell

log = logging.getLogger(__name__)


def register(app: App, ctx: AppContext) -> None:
    ctx.commands.add(
        Subcommand(
            "ratelimit",
            "The Docker Hub pull budget: what is left, the last 24 h, what launches need.",
            "ratelimit",
            Role.EVERYONE,
            ratelimit_command,
        )
    )


def ratelimit_command(cmd: CommandContext) -> None:
    cmd.reject_unknown(max_args=0)
    ctx = cmd.app
    content = budget_message(budget_report(ctx.services))
    if not budget_is_stale(ctx.services, datetime.now(UTC)):
        cmd.reply(content)
        return
    content["blocks"].append(bk.context(":hourglass_flowing_sand: Asking Docker Hub for fresh numbers…"))
    cmd.reply(content)
    ctx.workers.quick(refresh, ctx, cmd.response_url)


def refresh(ctx: AppContext, response_url: str | None) -> None:
    """Read the budget now (stored as a sample) and tell the person who asked."""
    reading = pull_budget(ctx.services, refresh=True)
    if reading.failure is not None:
        tell(response_url, bk.problem(reading.failure.message))
        return
    tell(response_url, budget_message(reading.report))
