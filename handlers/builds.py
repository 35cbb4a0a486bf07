"""Builds from Slack: `/dcs build`, `status`, `log`, and the job that keeps one channel message current.

`start_build()` is what every entry point uses (the command, the Retry and Build buttons, and scheduled
rebuilds that want a Slack message): it claims the interaction, queues the build row, hands the job to
the worker pool and returns what to tell the user, all in a few milliseconds. A queued or forced build
gets its channel message at once (on the quick lane); otherwise the job first checks whether anything
changed, and an unchanged image is answered to the requester alone ("already up to date (build #N, …)")
with nothing posted in the channel. The job feeds the builder's progress to a throttled `ProgressMessage`,
ends with a short result (status, image, short digest, doctor in one line; details behind buttons) and
mentions the requester in the message's thread: Slack notifies on mentions, never on an edit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt import App

from bot.clients.slack import SlackError, call
from bot.clients.slack_progress import ProgressMessage
from bot.domain.permissions import Role
from bot.errors import DcsError, InvalidInput
from bot.ops.build import BuildOutcome, BuildProgress, ResolvedBase, build_with_log, builds_overview
from bot.store import Build
from bot.workers import QueueFull, Ticket
from handlers import blocks as bk
from handlers.commands import CommandContext, Subcommand, now
from handlers.context import AppContext, reference_id
from handlers.respond import tell

log = logging.getLogger(__name__)

ANNOUNCE_WAIT_SECONDS = 60
ACTIVE_STATES = ("running", "queued")


@dataclass(frozen=True)
class StartedBuild:
    build: Build
    reply: dict[str, Any]  # what to tell the person who asked (ephemeral)
    ticket: Ticket | None = None
    duplicate: bool = False  # a retry/double click, or the image was already building: nothing new started


def job_key(build_id: int) -> str:
    return f"build:{build_id}"


class Announcement:
    """Who posts a build's channel message: the quick lane (queued or forced builds, at once) or the job
    itself after its "did anything change?" check, so that an unchanged image posts nothing in the channel.
    Whoever `take()`s it first posts; `where` gets the message's (channel, ts), or None."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._taken = False
        self.where: Future = Future()

    def take(self) -> bool:
        with self._lock:
            taken, self._taken = self._taken, True
            return not taken


def register(app: App, ctx: AppContext) -> None:
    ctx.commands.add(
        Subcommand(
            "build",
            "Build an image; `push` also pushes it (after the doctor passes).",
            "build NAME [push] [force]",
            Role.BUILDER,
            build_command,
        )
    )
    ctx.commands.add(
        Subcommand(
            "status",
            "Builds in progress and the latest ones, or one build in detail.",
            "status [BUILD_ID]",
            Role.EVERYONE,
            status_command,
        )
    )
    ctx.commands.add(Subcommand("log", "The last log lines of a build.", "log BUILD_ID", Role.EVERYONE, log_command))


# ---------------------------------------------------------------- commands
def build_command(cmd: CommandContext) -> None:
    cmd.reject_unknown(max_args=3)
    if not cmd.args:
        raise InvalidInput(
            "NAME", "", "is missing", "Usage: `/dcs build NAME [push] [force]`, e.g. `/dcs build team-pandas push`."
        )
    name, *words = cmd.args
    flags = {w.lower() for w in words}
    unknown = sorted(flags - {"push", "force"})
    if unknown:
        raise InvalidInput(
            "build option",
            unknown[0],
            "is not a build option",
            "Use `push` to push after building and `force` (admins) to rebuild an unchanged image "
            "(it never skips the doctor: waive a check in the catalog with doctor.waive).",
        )
    if "force" in flags:
        refusal = cmd.app.permitted(
            cmd.user_id,
            Role.ADMIN,
            "build.force",
            name,
            doing="force a build (rebuild when unchanged)",
        )
        if refusal:
            cmd.reply(bk.notice(refusal))
            return
    started = start_build(
        cmd.app,
        name,
        push="push" in flags,
        force="force" in flags,
        requester=cmd.user_id,
        channel=cmd.channel_id,
        claim_key=cmd.claim_key,
        response_url=cmd.response_url,
    )
    cmd.reply(started.reply)


def status_command(cmd: CommandContext) -> None:
    cmd.reject_unknown(max_args=1)
    positions = positions_of(cmd.app)
    if cmd.args:
        build = cmd.app.store.get_build(parse_build_id(cmd.args[0]))
        cmd.reply(bk.build_detail(build, now(), positions.get(build.id)))
        return
    overview = builds_overview(cmd.app.services)
    cmd.reply(bk.builds_overview(overview.active, overview.recent, now(), positions))


def log_command(cmd: CommandContext) -> None:
    cmd.reject_unknown(max_args=1)
    if not cmd.args:
        raise InvalidInput("BUILD_ID", "", "is missing", "Usage: `/dcs log BUILD_ID`; `/dcs status` lists builds.")
    cmd.reply(log_content(cmd.app, parse_build_id(cmd.args[0])))


def log_content(ctx: AppContext, build_id: int) -> dict[str, Any]:
    return bk.build_log(build_with_log(ctx.services, build_id), inventory=ctx.store.inventory(build_id))


def parse_build_id(text: str) -> int:
    raw = text.strip().lstrip("#")
    if not raw.isdigit() or len(raw) > 12:
        raise InvalidInput("BUILD_ID", text, "is not a build number", "Use the number shown by `/dcs status`, e.g. 12.")
    return int(raw)


# ---------------------------------------------------------------- starting a build
def start_build(
    ctx: AppContext,
    image: str,
    *,
    push: bool,
    force: bool = False,
    requester: str,
    channel: str,
    claim_key: str,
    response_url: str | None = None,
    source: str = "slack",
) -> StartedBuild:
    """Queue a build unless this interaction was already handled or the image is already building."""
    store = ctx.store
    store.get_image(image)  # NotFound with the known names

    def claim_and_queue() -> tuple[Build, bool]:
        # Under the store's lock: a retry racing the original waits here and then sees its claim and build.
        if not store.claim(claim_key, "build"):
            ref = store.claim_ref(claim_key)
            if ref and ref.isdigit():
                return store.get_build(int(ref)), True
            raise DcsError("This request was already handled.")
        active = store.active_build(image)
        if active is not None:
            store.set_claim_ref(claim_key, str(active.id))
            return active, True
        queued = ctx.builder.enqueue(
            image, push=push, force=force, requester=requester, source=source, slack_channel=channel
        )
        store.set_claim_ref(claim_key, str(queued.id))
        return queued, False

    build, duplicate = store.with_lock(claim_and_queue)
    if duplicate:
        position = ctx.workers.position(job_key(build.id))
        where = _where(build, position)
        state = f"is already {where}" if build.status in ACTIVE_STATES else f"already ended ({where})"
        return StartedBuild(
            build, bk.notice(f"{bk.build_title(build)} {state}: nothing new was started."), duplicate=True
        )
    detail = ", ".join(word for word, on in (("push", push), ("force", force)) if on) or None
    announcement = Announcement()
    try:
        ticket = ctx.workers.submit(job_key(build.id), run_build_job, ctx, build.id, announcement, response_url)
    except QueueFull:
        # Refused, not failed: nothing was built, so no failed build lands in the history (or blocks a retry).
        ctx.builder.discard_queued(build.id)
        store.audit(actor=requester, action="build.request", target=image, outcome="refused: queue full", detail=detail)
        raise
    store.audit(actor=requester, action="build.request", target=f"{image}#{build.id}", outcome="queued", detail=detail)
    if (ticket.queued or force) and announcement.take():
        ctx.workers.quick(announce, ctx, build, channel, ticket.position, announcement.where, response_url)
    if ticket.queued:
        text = (
            f"{bk.build_title(build)} is queued: {bk.ordinal(ticket.position)} in line (the bot runs "
            f"{ctx.workers.size} job(s) at once). The message in the channel updates when it starts."
        )
    elif force:
        text = f"{bk.build_title(build)} started. Follow it in the channel message."
    else:
        text = (
            f"{bk.build_title(build)}: checking whether *{bk.escape(image)}* changed since its last build. "
            "If it did, the build starts in the channel; if not, I'll say so here."
        )
    return StartedBuild(build, bk.notice(text), ticket)


def announce(
    ctx: AppContext, build: Build, channel: str, position: int, announced: Future, response_url: str | None
) -> None:
    """Post the build's channel message; the job waits for its (channel, ts)."""
    content = bk.build_queued(build, position)
    try:
        posted = call(ctx.client, "chat.postMessage", channel=channel, **content)
        where = (posted.get("channel") or channel, posted["ts"])
        ctx.store.update_build(build.id, slack_channel=where[0], slack_ts=where[1])
        announced.set_result(where)
    except SlackError as exc:
        announced.set_result(None)
        tell(
            response_url,
            bk.notice(
                f":warning: I could not post build #{build.id}'s progress here: {exc.message} "
                f"The build goes on; follow it with `/dcs status {build.id}`."
            ),
        )
    except Exception:
        announced.set_result(None)
        raise


def run_build_job(ctx: AppContext, build_id: int, announcement: Announcement, response_url: str | None) -> None:
    """The worker-pool job: check for changes, run the build, keep its message current, tell the requester."""
    build = ctx.store.get_build(build_id)
    redact = ctx.services.redactor  # once per job: it reads the registries' password variables
    reference = None
    message: ProgressMessage | None = None
    where: tuple[str, str] | None = None
    try:
        base, skipped = (None, None) if build.forced else _unchanged(ctx, build)
        if skipped is not None:
            assert skipped.build is not None  # a skipped outcome names the build that is still current
            content = bk.up_to_date(skipped.build, f"`/dcs build {build.image} force` (admins)")
            if announcement.take():  # nothing in the channel yet: answer the person who asked, and only them
                tell(response_url, content)
                return
            where = _posted(announcement)
            if where is None or not ProgressMessage(ctx.client, *where, label=f"build #{build_id}").finish(**content):
                tell(response_url, content)
            return
        if announcement.take():
            announce(ctx, build, build.slack_channel or "", 0, announcement.where, response_url)
            if announcement.where.result() is not None:
                tell(response_url, bk.notice(f"{bk.build_title(build)} started. Follow it in the channel message."))
        where = _posted(announcement)
        message = ProgressMessage(ctx.client, where[0], where[1], label=f"build #{build_id}") if where else None

        def progress(report: BuildProgress) -> None:
            if message is not None and report.phase != "done":
                message.update(
                    **bk.build_progress(
                        build, report.phase, report.step, report.total, redact(report.message), report.fraction
                    )
                )

        ctx.builder.run(build_id, progress, base=base)
    except Exception:
        reference = reference_id()
        log.exception("build #%s crashed (ref %s)", build_id, reference)
    finally:
        # Whatever happened above, a build this job leaves queued or running would block its image for good.
        ctx.builder.abandon(build_id, "The bot's job for this build ended before the build did.")
    final = ctx.store.get_build(build_id)
    content = final_content(ctx, final, redact)
    if reference:
        content["blocks"] = bk.fit([*content["blocks"], *bk.apology(reference)["blocks"]])
    if message is not None and where is not None:
        if message.finish(**content) or (
            message.last_error in ("msg_too_long", "invalid_blocks")
            and message.finish(**bk.build_result(replace(final, log_tail=None), ()))
        ):
            notify_requester(ctx, final, where)
            return
    tell(response_url, content)


def _posted(announcement: Announcement) -> tuple[str, str] | None:
    try:
        where: tuple[str, str] | None = announcement.where.result(timeout=ANNOUNCE_WAIT_SECONDS)
        return where
    except FutureTimeout:
        return None


def notify_requester(ctx: AppContext, build: Build, where: tuple[str, str]) -> None:
    """A threaded reply that mentions the requester: Slack notifies on mentions, never on an edited message.
    Claimed per build, so a retried job or a second process does not ping twice."""
    if not (build.requester and build.requester[:1] in "UW"):
        return  # a schedule or the CLI asked: nobody to ping
    if not ctx.store.claim(f"notify:build:{build.id}", "notify"):
        return
    try:
        call(ctx.client, "chat.postMessage", channel=where[0], thread_ts=where[1], **bk.build_finished_note(build))
    except SlackError as exc:
        log.warning("build #%s: could not tell %s in the thread: %s", build.id, build.requester, exc.code)


def _unchanged(ctx: AppContext, build: Build) -> tuple[ResolvedBase | None, BuildOutcome | None]:
    """(resolved base, skipped outcome): skipped when neither the spec nor the base changed since the last
    good build. Checked in the worker (it costs a manifest HEAD); the queued row is then discarded, since
    nothing ran. A failure to check is not fatal: the build runs and reports whatever is wrong.
    """
    try:
        base, skipped = ctx.builder.check_unchanged(
            build.image, push=build.push_requested, force_hint=f"`/dcs build {build.image} force`"
        )
    except DcsError:
        return None, None
    if skipped is not None and ctx.builder.discard_queued(build.id):
        ctx.store.audit(
            actor=build.requester,
            action="build",
            target=f"{build.image}#{build.id}",
            outcome="up-to-date",
            detail=f"current: #{skipped.build.id if skipped.build else '?'}",
        )
        return base, skipped
    return base, None


def final_content(ctx: AppContext, build: Build, redact: Callable[[str], str]) -> dict[str, Any]:
    """The result message; stored texts were redacted when written, and are again on the way out."""
    clean = replace(
        build,
        error=redact(build.error or "") or None,
        failed_step=redact(build.failed_step or "") or None,
        log_tail=redact(build.log_tail or "") or None,
    )
    return bk.build_result(clean, ctx.store.pushes(build.id))


def details_content(ctx: AppContext, build_id: int) -> dict[str, Any]:
    """The "Details" button: the doctor table, tags, full digest and pushes of one build (ephemeral)."""
    build = build_with_log(ctx.services, build_id)
    redact = ctx.services.redactor
    clean = replace(build, error=redact(build.error or "") or None, failed_step=redact(build.failed_step or "") or None)
    return bk.build_detail(
        clean, now(), positions_of(ctx).get(build_id), ctx.store.pushes(build_id), ctx.store.inventory(build_id)
    )


def close_interrupted(ctx: AppContext, build_ids: list[int]) -> None:
    """At start-up: builds the last stop cut short get their Slack message finished ("interrupted")."""
    redact = ctx.services.redactor
    for build_id in build_ids:
        build = ctx.store.get_build(build_id)
        if build.slack_channel and build.slack_ts:
            ctx.workers.quick(
                _finish_quietly, ctx, build.slack_channel, build.slack_ts, final_content(ctx, build, redact), build
            )


def _finish_quietly(ctx: AppContext, channel: str, ts: str, content: dict[str, Any], build: Build) -> None:
    try:
        call(ctx.client, "chat.update", channel=channel, ts=ts, **content)
    except SlackError:
        return  # logged by call(); the build's state is in the store and /dcs status
    notify_requester(ctx, build, (channel, ts))


# ---------------------------------------------------------------- helpers
def positions_of(ctx: AppContext) -> dict[int, int]:
    """Queue positions of the builds the worker pool knows, by build id (0 = running)."""
    out = {}
    for key, position in ctx.workers.snapshot().items():
        if key.startswith("build:") and key[6:].isdigit():
            out[int(key[6:])] = position
    return out


def _where(build: Build, position: int | None) -> str:
    if build.status == "queued" and position:
        return f"queued ({bk.ordinal(position)} in line)"
    if build.status in ACTIVE_STATES:
        return "running" if build.status == "running" else "queued"
    return build.status
