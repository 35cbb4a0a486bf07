"""Stand-ins for features that are not configured: `launch`, `enable`, `ratelimit` and the
"Launch cluster" button. They answer truthfully that the feature is not set up yet.

Registered LAST (see bot/app.py SURFACES): a real `ctx.commands.add(...)` replaces a placeholder in the
table whatever the order, and Bolt runs the first matching action listener, so a real
`app.action("launch_cluster")` registered earlier wins over the fallback here.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.domain.permissions import Role
from handlers import blocks as bk
from handlers.actions import guarded, reply
from handlers.commands import CommandContext, Subcommand
from handlers.context import AppContext

LAUNCH = (
    "Launching clusters is not set up in this bot yet: no Databricks workspace is configured (set "
    "DATABRICKS_HOST and DATABRICKS_TOKEN, or a Databricks profile). Until then, create the cluster in the "
    "Databricks UI with the pushed image "
    "(`/dcs images` shows the digests)."
)
ENABLE = (
    "Enabling Databricks Container Services from Slack is not set up in this bot yet: no Databricks "
    "workspace is configured (set DATABRICKS_HOST and DATABRICKS_TOKEN, or a Databricks profile). A "
    "workspace admin can enable it in the admin settings."
)
RATELIMIT = (
    "The Docker Hub pull-budget watch is not set up in this bot yet, so there is no measurement to show. "
    "Docker Hub's own answer: `docker login` and check the `ratelimit-remaining` header."
)


def _answer(text: str) -> Any:
    def run(cmd: CommandContext) -> None:
        cmd.reply(bk.notice(f":information_source: {text}"))

    return run


def register(app: App, ctx: AppContext) -> None:
    ctx.commands.add(
        Subcommand(
            "launch",
            "Launch a Databricks cluster running an image.",
            "launch NAME",
            Role.BUILDER,
            _answer(LAUNCH),
            placeholder=True,
        )
    )
    ctx.commands.add(
        Subcommand(
            "ratelimit", "The Docker Hub pull budget.", "ratelimit", Role.EVERYONE, _answer(RATELIMIT), placeholder=True
        )
    )
    ctx.commands.add(
        Subcommand(
            "enable",
            "Enable Container Services in the Databricks workspace.",
            "enable",
            Role.BUILDER,
            _answer(ENABLE),
            placeholder=True,
        )
    )

    @app.action("launch_cluster")
    @guarded(ctx, "launch_cluster")
    def launch_cluster(body: dict[str, Any], user_id: str) -> None:
        reply(ctx, body, bk.notice(f":information_source: {LAUNCH}"))
