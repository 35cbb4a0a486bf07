"""`/dcs rebuild NAME [force]`: the scheduled rebuild, run by hand from Slack.

A builder's rebuild runs only when the image's base or spec moved (or it was never built); rebuilding an
unchanged image is `force`, which only admins may use. The command validates and queues within milliseconds;
the run itself (base check, build, doctor, push, notice) happens in the bot's worker pool under the same lock
as scheduled runs, and the person who asked gets the outcome through the response_url. The channel summary is
the same notice a scheduled run posts.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from bot.domain.permissions import Role
from bot.domain.rebuild import FAILED, REBUILT, UNCHANGED
from bot.domain.refs import short_digest
from bot.errors import DcsError, InvalidInput
from bot.ops.rebuild import RebuildSummary, rebuild_run
from bot.ops.runs import MANUAL_JOB
from bot.workers import QueueFull
from handlers import blocks as bk
from handlers.commands import CommandContext, Subcommand
from handlers.context import AppContext, reference_id
from handlers.respond import tell

log = logging.getLogger(__name__)


def register(app: App, ctx: AppContext) -> None:
    ctx.commands.add(
        Subcommand(
            "rebuild",
            "Rebuild an image now if its base or spec moved: check, build, doctor, push, post the summary. "
            "`force` (admins) rebuilds an unchanged image.",
            "rebuild NAME [force]",
            Role.BUILDER,
            rebuild_command,
        )
    )


def rebuild_command(cmd: CommandContext) -> None:
    cmd.reject_unknown(max_args=2)
    if not cmd.args:
        raise InvalidInput("NAME", "", "is missing", "Usage: `/dcs rebuild NAME`, e.g. `/dcs rebuild team-pandas`.")
    name, *words = cmd.args
    if any(w.lower() != "force" for w in words):
        raise InvalidInput(
            "rebuild option",
            words[0],
            "is not a rebuild option",
            "Use `force` (admins) to rebuild an image whose base and spec did not move.",
        )
    force = bool(words)
    ctx = cmd.app
    ctx.store.get_image(name)  # NotFound lists the known images
    if force:
        refusal = ctx.permitted(
            cmd.user_id, Role.ADMIN, "rebuild.force", name, doing="rebuild an image whose base and spec did not move"
        )
        if refusal:
            cmd.reply(bk.notice(refusal))
            return
    busy = ctx.store.running_run(MANUAL_JOB)
    if busy is not None:
        cmd.reply(
            bk.notice(
                f":hourglass_flowing_sand: A rebuild run ({bk.escape(busy.job_id)}) is in progress "
                f"since {busy.started_at}; try again when it has finished."
            )
        )
        return
    if not cmd.claim("rebuild"):
        cmd.reply(bk.notice(f"Already on it: the rebuild of *{bk.escape(name)}* was queued by your first request."))
        return
    try:
        ticket = ctx.workers.submit(f"rebuild:{name}", run_rebuild, ctx, name, cmd.user_id, cmd.response_url, force)
    except QueueFull as exc:
        cmd.reply(bk.problem(exc.message))
        return
    ctx.store.audit(
        actor=cmd.user_id, action="rebuild.request", target=name, outcome="queued", detail="force" if force else None
    )
    if ticket.duplicate:
        cmd.reply(bk.notice(f"A rebuild of *{bk.escape(name)}* is already queued or running."))
    elif ticket.position:
        cmd.reply(
            bk.notice(
                f":hourglass_flowing_sand: Rebuild of *{bk.escape(name)}* queued "
                f"({ticket.position} in line). I'll tell you here when it is done."
            )
        )
    else:
        cmd.reply(
            bk.notice(
                f":gear: Rebuilding *{bk.escape(name)}*: base check, build, doctor, push. "
                "I'll tell you here when it is done."
            )
        )


def run_rebuild(ctx: AppContext, name: str, user_id: str, response_url: str | None, force: bool = False) -> None:
    """The worker-pool job: one manual rebuild run, then a short answer to whoever asked."""
    try:
        summary = rebuild_run(
            ctx.services,
            MANUAL_JOB,
            [name],
            by_hand=force,
            on_request=not force,
            source="slack",
            requester=user_id,
            busy="raise",
        )
    except DcsError as exc:
        tell(response_url, bk.problem(exc.message))
        return
    except Exception:
        ref = reference_id()
        log.exception("rebuild of %s failed (ref %s)", name, ref)
        tell(response_url, bk.apology(ref))
        return
    if summary is not None:  # busy="raise": a busy run raised JobBusy above instead
        tell(response_url, outcome_message(summary))


def outcome_message(summary: RebuildSummary) -> dict[str, Any]:
    """What the person who asked sees (the channel gets the full notice)."""
    lines = []
    for r in summary.run.results:
        if r.status == REBUILT:
            d = r.decision
            lines.append(
                f":white_check_mark: *{bk.escape(r.image)}* rebuilt on base "
                f"`{short_digest(d.new_base_digest)}` and pushed `{bk.escape(r.immutable_tag or '?')}` = "
                f"`{short_digest(r.pushed_digest)}` (build #{r.build.id if r.build else '?'})."
            )
        elif r.status == FAILED:
            build = f" (build #{r.build.id}, `/dcs log {r.build.id}`)" if r.build else ""
            lines.append(f":x: *{bk.escape(r.image)}* failed{build}: {bk.escape(bk.cut(r.error or '', 1500))}")
        elif r.status == UNCHANGED:
            lines.append(
                f"*{bk.escape(r.image)}*: {bk.escape(r.decision.note or 'unchanged')}, so nothing was rebuilt. "
                f"An admin can rebuild it anyway: `/dcs rebuild {bk.escape(r.image)} force`."
            )
        else:
            lines.append(f"*{bk.escape(r.image)}*: {bk.escape(r.error or r.decision.note or r.status)}")
    if summary.stale:
        lines.append(f"{len(summary.stale)} cluster(s) still run an older digest: see the notice.")
    if summary.posted:
        lines.append(
            "Summary posted in " + ", ".join(f"<#{c}>" if c[:1] in "CG" else bk.escape(c) for c in summary.posted) + "."
        )
    for problem in summary.problems:
        lines.append(f":warning: {bk.escape(problem)}")
    return bk.notice("\n".join(lines) or "Nothing to rebuild.")
