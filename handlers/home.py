"""App Home: a list of named sections, each `(ctx, user_id) -> blocks`, composed into one Home view.

Other features add or replace a section with `ctx.set_home_section(name, builder)`. Sections show real
data only; the view stays within Slack's 100-block limit. The view is published on `app_home_opened`
(on the quick lane, so a slow Slack never holds a listener thread) and can be refreshed with
`publish_home(ctx, user_id)` after something changes.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import App

from bot.clients.slack import SlackError, call
from bot.ops.budget import budget_report
from bot.ops.build import builds_overview
from bot.ops.catalog import image_page
from handlers import blocks as bk
from handlers.builds import positions_of
from handlers.commands import now
from handlers.context import AppContext, HomeSection, reference_id
from handlers.notices import budget_lines

log = logging.getLogger(__name__)

RECENT_LAUNCHES = 5
PER_SECTION_BLOCKS = 30


def catalog_section(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    # the header and the "more" line take two of the section's blocks; only the shown page is looked up
    page = image_page(ctx.services, size=PER_SECTION_BLOCKS - 2)
    rows = page.rows
    blocks: list[dict[str, Any]] = [bk.header("Images")]
    if not rows:
        return [*blocks, bk.section(bk.EMPTY_CATALOG)]
    can_build = ctx.role(user_id) >= ctx.commands.get("build").role
    stamp = now()
    for row in rows:
        block = bk.section(bk.image_line(row, stamp))
        if can_build:
            block["accessory"] = bk.button(
                "Build & push",
                "build_image",
                json.dumps({"image": row.name, "push": True}),
                confirm=bk.confirm(
                    f"Build and push {row.name}?",
                    f"Builds *{bk.escape(row.name)}*, runs the doctor and pushes `{bk.escape(row.repository)}` "
                    "if it passes: clusters on the moving tag get it at their next start.",
                    "Build & push",
                ),
            )
        blocks.append(block)
    if page.total > len(rows):
        blocks.append(bk.context(f"…and {page.total - len(rows)} more: `/dcs images WORD` finds one, with pages."))
    return blocks


def builds_section(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    active = builds_overview(ctx.services).active
    stamp = now()
    positions = positions_of(ctx)
    text = "\n".join(bk.build_line(b, stamp, positions.get(b.id)) for b in active) or "Nothing is building right now."
    return [bk.header("Builds in progress"), bk.section(text)]


def launches_section(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    launches = ctx.store.launches(limit=RECENT_LAUNCHES)
    if not launches:
        return []  # nothing launched yet (or the launch feature is not set up): no empty section
    stamp = now()
    lines = [
        f"*#{r.id}* {bk.escape(r.image)} → {bk.escape(r.cluster_name or '(no cluster yet)')} — "
        f"{bk.escape(r.state or r.status)}, {bk.ago(r.created_at, stamp)} ({bk.user(r.requester)})"
        for r in launches
    ]
    return [bk.header("Recent launches"), bk.section("\n".join(lines))]


def pull_budget_section(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    report = budget_report(ctx.services)
    if report.budget is None and not report.error:
        return []  # never measured (no Docker Hub in the catalog, or the watch has not run yet)
    return [bk.header("Docker Hub pull budget"), bk.section("\n".join(budget_lines(report)))]


DEFAULT_SECTIONS = (
    ("catalog", catalog_section),
    ("builds", builds_section),
    ("launches", launches_section),
    ("pull_budget", pull_budget_section),
)


def home_view(ctx: AppContext, user_id: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for section in ctx.home_sections:
        try:
            part = section.build(ctx, user_id)
        except Exception:
            ref = reference_id()
            log.exception("home section %s failed (ref %s)", section.name, ref)
            part = [bk.context(f":warning: The {section.name} section could not be shown (reference `{ref}`).")]
        if part:
            blocks += [*bk.fit(part, PER_SECTION_BLOCKS, what="lines"), bk.divider()]
    blocks.append(bk.context("Commands: `/dcs help`. Build: `/dcs build NAME [push]`."))
    return {"type": "home", "blocks": bk.fit(blocks, bk.VIEW_BLOCKS)}


def publish_home(ctx: AppContext, user_id: str) -> None:
    try:
        call(ctx.client, "views.publish", user_id=user_id, view=home_view(ctx, user_id))
    except SlackError:
        pass  # logged by call(); the next app_home_opened tries again


def default_sections() -> list[HomeSection]:
    return [HomeSection(name, build) for name, build in DEFAULT_SECTIONS]


def register(app: App, ctx: AppContext) -> None:
    ctx.refresh_home = publish_home

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            ctx.workers.quick(publish_home, ctx, event["user"])
