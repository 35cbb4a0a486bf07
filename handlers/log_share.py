"""The "Log in thread" button: a build's log where the team can discuss it, not only in an ephemeral note.

A short log goes into the message's thread as a code block; a longer one is attached to the thread as a
file through `files_upload_v2` (files.getUploadURLExternal + completeUploadExternal; the retired
files.upload is never used), which needs the `files:write` scope of slack-manifest.yml. Without the scope
the thread still gets the last lines and says how to get the whole log. Logs were redacted when stored and
are again on the way out; terminal codes never reach Slack.
"""

from __future__ import annotations

import logging

from bot.clients.slack import SlackError, call
from bot.domain.ansi import plain
from bot.ops.build import build_with_log
from handlers import blocks as bk
from handlers.context import AppContext
from handlers.respond import tell

log = logging.getLogger(__name__)

INLINE_LINES = 40  # a log this short goes into the thread as text
INLINE_CHARS = bk.SECTION_LIMIT - 200


def share_log(
    ctx: AppContext, build_id: int, channel: str, thread_ts: str, user_id: str, response_url: str | None
) -> None:
    build = build_with_log(ctx.services, build_id)
    text = plain(build.log_tail or "").strip()
    title = f"Log of build #{build.id} of {build.image} ({build.status})"
    if not text:
        tell(response_url, bk.notice(f"Build #{build.id} has no log stored (status: {build.status})."))
        return
    lines = text.splitlines()
    try:
        if len(lines) <= INLINE_LINES and len(text) <= INLINE_CHARS:
            _post_inline(ctx, channel, thread_ts, title, text, user_id)
            return
        call(
            ctx.client,
            "files_upload_v2",
            channel=channel,
            thread_ts=thread_ts,
            content=text + "\n",
            filename=f"build-{build.id}.log",
            title=title,
            initial_comment=f"{bk.escape(title)}, shared by {bk.escape(user_id)}: {len(lines)} lines.",
        )
        ctx.store.audit(actor=user_id, action="build.log.share", target=f"{build.image}#{build.id}", outcome="file")
    except SlackError as exc:
        if exc.code != "missing_scope":
            tell(response_url, bk.problem(f"I could not share the log of build #{build.id}: {exc.message}"))
            return
        tail = "\n".join(lines[-INLINE_LINES:])
        note = (
            f"(the last {INLINE_LINES} of {len(lines)} lines; the app lacks `files:write` to attach the whole "
            f"log: reinstall it from slack-manifest.yml, or use `/dcs log {build.id}`)"
        )
        try:
            _post_inline(ctx, channel, thread_ts, title, tail, user_id, note=note)
        except SlackError as again:
            tell(response_url, bk.problem(f"I could not share the log of build #{build.id}: {again.message}"))


def _post_inline(
    ctx: AppContext, channel: str, thread_ts: str, title: str, text: str, user_id: str, note: str = ""
) -> None:
    heading = f"*{bk.escape(title)}*" + (f" {bk.escape(note)}" if note else "")
    content = bk.message(title, [bk.section(heading), bk.section(bk.code(text))])
    call(ctx.client, "chat.postMessage", channel=channel, thread_ts=thread_ts, **content)
    ctx.store.audit(actor=user_id, action="build.log.share", target=title, outcome="thread")
