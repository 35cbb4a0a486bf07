"""`/dcs enable` and its Approve / Deny buttons: switching Container Services on with four eyes.

Asking is harmless, so any builder may ask; only an admin other than the requester decides.

Slack glue only; the rules (who may decide, one PATCH, 24 h expiry, audit) are in bot/ops/approvals.py.
The request is posted in DCS_NOTIFY_CHANNEL (else where it was asked); a refusal is an ephemeral note
to whoever clicked and changes nothing; a decision rewrites the message with the outcome, who and when,
and removes the buttons. Workspace calls run on the quick lane, not behind builds in the worker pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.clients.databricks import databricks_configured
from bot.clients.slack import SlackError, call
from bot.domain.permissions import Role
from bot.errors import DcsError, InvalidInput
from bot.ops.approvals import approvals_for
from bot.store import ApprovalRequest
from handlers import blocks as bk
from handlers.actions import guarded, reply
from handlers.blocks import when
from handlers.commands import CommandContext, Subcommand
from handlers.context import AppContext
from handlers.respond import tell, told_errors

log = logging.getLogger(__name__)

APPROVE, DENY = "enable_approve", "enable_deny"


# ---------------------------------------------------------------- pure Block Kit


def approval_message(request: ApprovalRequest, host: str) -> dict[str, Any]:
    where = bk.escape(host or "the Databricks workspace")
    asked = f"{bk.user(request.requester)} asked to switch on Databricks Container Services (`enableDcs`) in {where}"
    decider = bk.user(request.decided_by) if request.decided_by else "someone"
    outcome = {
        "pending": f":key: {asked}.\nA bot admin other than the requester can approve or deny. "
        f"The request expires {when(request.expires_at)}.",
        "approving": f":hourglass_flowing_sand: {asked}.\nApproved by {decider}; switching it on…",
        "approved": f":white_check_mark: {asked}.\n*Approved* by {decider} {when(request.decided_at)}: Container "
        "Services is on. Clusters can now use custom images (`/dcs launch NAME`).",
        "denied": f":no_entry_sign: {asked}.\n*Denied* by {decider} {when(request.decided_at)}.",
        "expired": f":hourglass: {asked}.\n*Expired* {when(request.decided_at)} without a decision. "
        "Ask again with `/dcs enable`.",
        "failed": f":x: {asked}.\nApproved by {decider} {when(request.decided_at)}, but Databricks did not switch it "
        f"on: {bk.escape(request.note or 'unknown error')}",
    }.get(request.status, f"{asked}: {request.status}.")
    blocks = [bk.section(outcome)]
    if request.note and request.status == "pending":
        blocks.append(bk.context(f":warning: {bk.escape(request.note)}"))
    if request.status == "pending":
        value = str(request.id)
        blocks.append(
            bk.actions(
                f"enable_{request.id}",
                bk.button(
                    "Approve",
                    APPROVE,
                    value,
                    style="primary",
                    confirm=bk.confirm(
                        "Switch on Container Services?",
                        "Every cluster in this workspace may then start from a custom Docker image. "
                        "This calls the workspace settings API at once.",
                        "Approve",
                    ),
                ),
                bk.button("Deny", DENY, value),  # refusing changes nothing: no red, no dialog
            )
        )
    blocks.append(bk.context(f"Request #{request.id}"))
    return bk.message(f"Switch on Container Services (request #{request.id}): {request.status}", blocks)


# ---------------------------------------------------------------- Slack I/O


def update_message(ctx: AppContext, request: ApprovalRequest) -> None:
    if request.slack_channel and request.slack_ts:
        call(
            ctx.client,
            "chat.update",
            channel=request.slack_channel,
            ts=request.slack_ts,
            **approval_message(request, ctx.services.workspace(request.workspace).label),
        )


def run_enable(
    ctx: AppContext, user_id: str, channel: str, response_url: str | None, workspace: str | None = None
) -> None:
    approvals = approvals_for(ctx.services)
    try:
        for expired in approvals.expire_due():
            _update_quietly(ctx, expired)
        started = approvals.start(user_id, workspace)
        host = ctx.services.workspace(workspace).label
    except DcsError as exc:
        tell(response_url, bk.problem(exc.message))
        return
    if started.outcome == "already_enabled":
        tell(
            response_url,
            bk.notice(
                f":white_check_mark: Container Services is already on in {bk.escape(host)}: "
                "nothing to approve. Launch with `/dcs launch NAME`."
            ),
        )
        return
    request = started.request
    assert request is not None
    if started.outcome == "pending_exists":
        where = f" in <#{request.slack_channel}>" if request.slack_channel else ""
        tell(
            response_url,
            bk.notice(
                f"A request to switch it on is already waiting for an admin{where} "
                f"(request #{request.id}, asked by {bk.user(request.requester)})."
            ),
        )
        return
    target = ctx.config.notify_channel or channel
    try:
        posted = call(ctx.client, "chat.postMessage", channel=target, **approval_message(request, host))
    except SlackError as exc:
        tell(
            response_url,
            bk.problem(f"Request #{request.id} was recorded, but I could not post it in {target}: {exc.message}"),
        )
        return
    request = approvals.attach_message(request.id, posted.get("channel") or target, posted["ts"])
    note = f"\n:warning: {bk.escape(request.note)}" if request.note else ""
    tell(
        response_url,
        bk.notice(
            f":key: Container Services is off in {bk.escape(host)}. I asked the admins in "
            f"<#{request.slack_channel}> (request #{request.id}); an admin other than you has to "
            f"approve it within 24 h.{note}"
        ),
    )


def enable_command(ctx: AppContext, cmd: CommandContext) -> None:
    cmd.reject_unknown(("workspace",), max_args=1)
    if cmd.args and "workspace" in cmd.options:
        raise InvalidInput("workspace", cmd.args[0], "is given twice", "Name the workspace once: `/dcs enable prod`.")
    workspace = ctx.config.workspace(cmd.options.get("workspace") or (cmd.args[0] if cmd.args else None)).name
    if not cmd.claim("enable"):
        cmd.reply(bk.notice("This request was already handled."))
        return
    where = f"the {workspace} workspace" if ctx.config.workspaces else "the workspace"
    cmd.reply(bk.notice(f":mag: Checking whether Container Services is on in {bk.escape(where)}…"))
    ctx.workers.quick(
        told_errors,
        cmd.response_url,
        "enable step",
        run_enable,
        ctx,
        cmd.user_id,
        cmd.channel_id,
        cmd.response_url,
        workspace,
    )


def decide(ctx: AppContext, body: dict[str, Any], user_id: str, approve: bool) -> None:
    value = body["actions"][0].get("value", "")
    if not value.isdigit():
        raise InvalidInput("button value", value, "is not a request number", "Ask again with `/dcs enable`.")
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    own = ctx.store.approval_of_message(channel, ts) if channel and ts else None
    if own is not None and own.id != int(value):  # the request is the message's, whatever the value says
        raise InvalidInput(
            "button value", value, f"is not the request of this message (#{own.id})", "Use the buttons on its message."
        )
    decision = approvals_for(ctx.services).decide(int(value), user_id, approve=approve)
    if decision.changed:
        update_message(ctx, decision.request)
    if decision.refusal:
        reply(ctx, body, bk.notice(f":no_entry: {decision.refusal}"))
    elif decision.error is not None:
        reply(ctx, body, bk.problem(f"Databricks refused to switch it on: {decision.error.message}"))


def _update_quietly(ctx: AppContext, request: ApprovalRequest) -> None:
    try:
        update_message(ctx, request)
    except SlackError as exc:
        log.warning("could not update approval request #%s: %s", request.id, exc.code)


def register(app: App, ctx: AppContext) -> None:
    if not databricks_configured(ctx.config):
        return  # handlers.placeholders answers that this is not set up (no workspace configured)
    ctx.commands.add(
        Subcommand(
            "enable",
            "Ask to switch on Container Services in a Databricks workspace (another admin approves).",
            "enable [WORKSPACE]",
            Role.BUILDER,
            lambda cmd: enable_command(ctx, cmd),
        )
    )

    def on_click(approve: bool) -> Callable[[dict[str, Any], str], None]:
        def run(body: dict[str, Any], user_id: str) -> None:
            ctx.workers.quick(told_errors, body.get("response_url"), "enable step", decide, ctx, body, user_id, approve)

        return run

    app.action(APPROVE)(guarded(ctx, APPROVE)(on_click(True)))
    app.action(DENY)(guarded(ctx, DENY)(on_click(False)))
