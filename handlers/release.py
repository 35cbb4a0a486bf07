"""Release candidates in Slack: the waiting-for-approval message with Approve / Reject (and its later states).

Slack glue only: who may decide, the votes, the deadline and the promotion are bot/ops/release_votes.py. The
button's value names the build; everything that decides (the policy, the requester, the votes, the state)
comes from the store. A refusal (the requester approving their own build, someone not an approver) is an
ephemeral note and changes nothing; a double click counts once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.domain.records import Release
from bot.domain.refs import short_digest
from bot.errors import DcsError, InvalidInput
from bot.ops.diff import changes_since
from bot.ops.release import TagMove, promote, promoted_build
from bot.ops.release_votes import VoteResult, approve, reject
from bot.services import Services
from handlers import blocks as bk
from handlers.actions import guarded, reply
from handlers.context import AppContext, reference_id
from handlers.notices import promote_button

log = logging.getLogger(__name__)
APPROVE, REJECT, PROMOTE = "release_approve", "release_reject", "release_promote"


def release_message(
    release: Release,
    *,
    target: str,
    approvers: str,
    votes: list[tuple[str, str]],
    promoted: str | None,
    changes: str | None,
) -> dict[str, Any]:
    """The candidate's message. `target` is `repository:moving-tag`, `promoted` what it points to now."""
    name, build = bk.escape(release.image), release.build_id
    yes = [u for u, v in votes if v == "approve"]
    head = f"*{name}* build #{build} (`{short_digest(release.digest)}`, `{bk.escape(release.immutable_tag or '?')}`)"
    now = f"`{bk.escape(target)}` is {bk.escape(promoted) if promoted else 'not published yet'}"
    status = release.status
    if status == "waiting":
        text = (
            f":hourglass_flowing_sand: {head} waits for approval to become `{bk.escape(target)}`.\n"
            f"Built for {bk.user(release.requester) if release.requester else 'a scheduled rebuild'}; needs "
            f"{release.approvals_needed} approval(s) from {approvers} ({len(yes)} so far"
            f"{': ' + ', '.join(bk.user(u) for u in yes) if yes else ''}); the requester cannot approve. "
            f"Expires {bk.when(release.expires_at)}. Until then {now}."
        )
    elif status == "promoted":
        who = ", ".join(bk.user(u) for u in yes) or "an admin"
        text = f":white_check_mark: {head} was *approved* by {who} and promoted: `{bk.escape(target)}` points to it."
    elif status == "rejected":
        text = f":no_entry_sign: {head} was *rejected* ({bk.escape(release.reason or '')}). {now}."
    elif status == "expired":
        text = f":hourglass: {head} *expired* {bk.when(release.updated_at)} without enough approvals. {now}."
    else:
        text = f"{head}: {status}" + (f" ({bk.escape(release.reason)})" if release.reason else "") + f". {now}."
    blocks: list[Any] = [bk.section(text)]
    canary = release.canary
    if canary.get("why"):
        mark = ":white_check_mark:" if canary.get("ok") else ":x:"
        blocks.append(bk.context(f"{mark} Canary: {bk.escape(bk.cut(str(canary['why']), 400))}"))
    if changes:
        blocks.append(bk.context(f"What changed: {bk.escape(bk.cut(changes, 600))}"))
    if status == "waiting":
        value = str(build)
        blocks.append(
            bk.actions(
                f"release_{build}",
                bk.button(
                    "Approve",
                    APPROVE,
                    value,
                    style="primary",
                    confirm=bk.confirm(
                        f"Promote {release.image} build #{build}?",
                        f"Clusters started from {target} get this build once the approvals are in.",
                        "Approve",
                    ),
                ),
                bk.button("Reject", REJECT, value),
            )
        )
    elif status in ("canary_failed", "expired", "candidate"):
        blocks.append(bk.actions(f"release_{build}", promote_button(release.image, build)))
    blocks.append(bk.context(f"`dcs diff {name}` shows what changed · `dcs promote {name} {build}` from a shell"))
    return bk.message(f"{release.image} build #{build}: {status}", blocks)


def release_content(services: Services, release: Release) -> dict[str, Any]:
    """The message for a release as the store has it now."""
    spec = services.store.get_image(release.image)
    policy = spec.release
    approvers = ", ".join("the bot's admins" if a == "admins" else bk.user(a) for a in policy.approvers)
    promoted = promoted_build(services, release.image)
    shown = f"build #{promoted.id} (`{short_digest(promoted.pushed_digest)}`)" if promoted else None
    diff = changes_since(services, promoted.id if promoted else None, release.build_id)
    return release_message(
        release,
        target=f"{spec.repository}:{spec.tag}",
        approvers=approvers,
        votes=services.store.votes(release.build_id),
        promoted=shown,
        changes=diff.summary() if diff else None,
    )


def _build_of(body: dict[str, Any]) -> int:
    value = str((body.get("actions") or [{}])[0].get("value", ""))
    if not value.isdigit():
        raise InvalidInput("button value", value[:40], "is not a build number", "Use `dcs promote NAME BUILD`.")
    return int(value)


def _decide(
    ctx: AppContext, body: dict[str, Any], user_id: str, decide: Callable[[Services, int, str], VoteResult], verb: str
) -> None:
    """In the quick lane (a vote may promote: a manifest PUT): the clicker hears the outcome ephemerally."""
    try:
        result = decide(ctx.services, _build_of(body), user_id)
    except DcsError as exc:
        reply(ctx, body, bk.problem(exc.message))
        return
    except Exception:
        ref = reference_id()
        log.exception("release %s by %s failed (ref %s)", verb, user_id, ref)
        reply(ctx, body, bk.apology(ref))
        return
    release = result.release
    if result.note:
        reply(ctx, body, bk.notice(f"Nothing changed: {result.note}."))
    elif result.move is not None and result.move.done:
        reply(
            ctx, body, bk.notice(f":white_check_mark: {verb}: {release.image} build #{release.build_id} is promoted.")
        )
    else:
        reply(ctx, body, bk.notice(f"{verb}: {release.image} build #{release.build_id} is {release.status}."))


def _promote(ctx: AppContext, body: dict[str, Any], user_id: str) -> None:
    try:
        build_id = _build_of(body)
        move: TagMove = promote(ctx.services, ctx.store.get_build(build_id).image, build_id, actor=user_id)
    except DcsError as exc:
        reply(ctx, body, bk.problem(exc.message))
        return
    except Exception:
        ref = reference_id()
        log.exception("promote by %s failed (ref %s)", user_id, ref)
        reply(ctx, body, bk.apology(ref))
        return
    if move.done:
        reply(
            ctx, body, bk.notice(f":white_check_mark: {move.image}: `{move.tag}` now points to build #{move.build_id}.")
        )
    else:
        reply(ctx, body, bk.notice(f"Nothing changed: {bk.escape(move.note)}"))


def register(app: App, ctx: AppContext) -> None:
    @app.action(PROMOTE)
    @guarded(ctx, PROMOTE)
    def on_promote(body: dict[str, Any], user_id: str) -> None:
        _build_of(body)
        ctx.workers.quick(_promote, ctx, body, user_id)

    @app.action(APPROVE)
    @guarded(ctx, APPROVE)
    def on_approve(body: dict[str, Any], user_id: str) -> None:
        _build_of(body)  # a malformed value is answered in the ack's thread already
        ctx.workers.quick(_decide, ctx, body, user_id, approve, "Approved")

    @app.action(REJECT)
    @guarded(ctx, REJECT)
    def on_reject(body: dict[str, Any], user_id: str) -> None:
        _build_of(body)
        ctx.workers.quick(_decide, ctx, body, user_id, reject, "Rejected")
