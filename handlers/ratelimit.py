"""`/dcs ratelimit` and the App Home "Docker Hub pull budget" section.

Both answer from the stored samples (no network before the ack). When the last sample is older than
two check intervals, or there is none, the command also asks Docker Hub on the quick lane (a token and a
manifest HEAD: no pull spent) and sends the fresh numbers through the response_url.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App

from bot.errors import DcsError
from bot.permissions import Role
from bot.store import parse_time
from handlers import blocks as bk
from handlers.builds import tell
from handlers.commands import CommandContext, Subcommand
from handlers.context import AppContext
from handlers.notices import budget_lines, budget_message

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
    ctx.set_home_section("pull_budget", pull_budget_section)


def stale(ctx: AppContext, now: datetime) -> bool:
    rows = ctx.store.query("SELECT at FROM ratelimit_samples ORDER BY id DESC LIMIT 1")
    at = parse_time(rows[0]["at"]) if rows else None
    return at is None or now - at > timedelta(minutes=2 * ctx.config.ratelimit_minutes)


def ratelimit_command(cmd: CommandContext) -> None:
    from jobs.ratelimit import budget_report

    cmd.reject_unknown(max_args=0)
    ctx = cmd.app
    report = budget_report(ctx.services)
    if not stale(ctx, datetime.now(UTC)):
        cmd.reply(budget_message(report))
        return
    content = budget_message(report)
    content["blocks"].append(bk.context(":hourglass_flowing_sand: Asking Docker Hub for fresh numbers…"))
    cmd.reply(content)
    ctx.workers.quick(refresh, ctx, cmd.response_url)


def refresh(ctx: AppContext, response_url: str | None) -> None:
    """Read the budget now (stored as a sample) and tell the person who asked."""
    from jobs.ratelimit import budget_report, read_budget

    try:
        read_budget(ctx.services)
    except DcsError as exc:
        tell(response_url, bk.problem(exc.message))
        return
    tell(response_url, budget_message(budget_report(ctx.services)))


def pull_budget_section(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    from jobs.ratelimit import budget_report

    report = budget_report(ctx.services)
    if report.budget is None and not report.error:
        return []  # never measured (no Docker Hub in the catalog, or the watch has not run yet)
    return [bk.header("Docker Hub pull budget"), bk.section("\n".join(budget_lines(report)))]
