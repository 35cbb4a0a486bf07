"""`/dcs fleet NAME`, the "Move N items to <digest>" modal, and the rollout message with its buttons.

Slack glue only; the rules are bot/ops/fleet.py and bot/ops/rollout.py. What a click affects always comes from
the store: a button carries an image name or a rollout number, and the rollout's items are the ones stored when
the modal was opened. Every consequence is an atomic transition there (`proposed → ready`, `ready → running`,
one claim per item, one rollback per rollout), so double clicks and Slack retries change each item once. The
rollout's one channel message shows per-item progress and ends with the failures and their reasons, "Retry
failed" and "Roll back".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.clients.databricks import databricks_configured
from bot.clients.slack import SlackError, call
from bot.domain.fleet import FleetItem
from bot.domain.permissions import Role
from bot.domain.refs import short_digest
from bot.domain.rollout_records import Rollout, RolloutItem
from bot.errors import DcsError, InvalidInput
from bot.ops import rollout as rollouts
from bot.ops.fleet import FleetReport, last_report, scan_fleet
from handlers import blocks as bk
from handlers.actions import guarded, reply
from handlers.commands import CommandContext, Subcommand
from handlers.context import AppContext, reference_id
from handlers.notices import FLEET_MOVE
from handlers.respond import tell, told_errors

log = logging.getLogger(__name__)

OPEN, MODAL, APPROVE, RETRY, ROLLBACK = FLEET_MOVE, "fleet_rollout", "fleet_approve", "fleet_retry", "fleet_rollback"
ICONS = {
    "pending": ":white_circle:",
    "sending": ":hourglass_flowing_sand:",
    "done": ":white_check_mark:",
    "unchanged": ":heavy_minus_sign:",
    "failed": ":x:",
    "manual": ":memo:",
    "refused": ":no_entry:",
}
UPDATE_EVERY = 1.0  # seconds between progress edits of the rollout message (chat.update budget)


# ---------------------------------------------------------------- pure Block Kit


def item_line(item: FleetItem) -> str:
    uses = short_digest(item.digest_or_tag) if item.pinned else item.digest_or_tag
    flags = " *stale*" if item.stale else ""
    if item.managed_by:
        flags += f" · managed by {bk.escape(item.managed_by)}"
    state = f" ({item.state})" if item.state else ""
    return f"`{item.workspace}` {item.kind} *{bk.escape(item.name or item.item_id)}*{state} — {uses}{flags}"


def fleet_message(image: str, report: FleetReport, *, can_move: bool) -> dict[str, Any]:
    items = report.of(image)
    current = report.current.get(image)
    head = f"*{bk.escape(image)}* runs in {len(items)} place(s)"
    head += f"; current digest `{short_digest(current)}`" if current else "; no pushed build yet"
    blocks: list[dict[str, Any]] = [bk.section(head)]
    lines = [item_line(i) for i in items]
    for start in range(0, len(lines), 10):
        blocks.append(bk.section("\n".join(lines[start : start + 10])))
    for name, error in report.errors.items():
        blocks.append(bk.context(f":warning: `{bk.escape(name)}` not listed: {bk.escape(error)}"))
    movable = [i for i in items if i.kind != "pool" and (i.stale or not i.pinned)]
    if can_move and current and movable:
        label = f"Move {len(movable)} item(s) to {short_digest(current)}"
        blocks.append(bk.actions(f"fleet_{image}", bk.button(label, OPEN, image, style="primary")))
    return bk.message(f"{image}: {len(items)} place(s), {len(report.stale(image))} stale", bk.fit(blocks, 48))


def _change_line(item: RolloutItem) -> str:
    what = {
        "policy_edit": "policy edited",
        "cluster_update": "docker_image updated",
        "job_update": "tasks replaced: " + ", ".join(item.locations),
    }.get(item.action, "")
    text = f"{ICONS.get(item.status, '')} `{item.workspace}` {item.kind} *{bk.escape(item.name or item.item_id)}*"
    if item.status == "failed":
        return text + f" — failed: {bk.escape(item.error or 'unknown error')}"
    note = item.detail or ""
    return (
        text
        + (f" — {bk.escape(what)}" if what and item.status in ("pending", "done") else "")
        + (f" · {bk.escape(note)}" if note else "")
    )


def rollout_modal(rollout: Rollout) -> dict[str, Any]:
    writes = rollout.writes
    restarts = sum(1 for i in writes if "restarts" in (i.detail or ""))
    intro = (
        f"Move *{len(writes)}* item(s) running *{bk.escape(rollout.image)}* to `{short_digest(rollout.target_digest)}`"
        f" (policies first, then clusters, then jobs)."
    )
    if restarts:
        intro += f"\n:warning: {restarts} running cluster(s) restart on the new image."
    if rollout.protected:
        intro += "\n:lock: A protected workspace is included: a second person approves before anything changes."
    lines = [_change_line(i) for i in rollout.items]
    blocks: list[dict[str, Any]] = [bk.section(intro)]
    for start in range(0, len(lines), 8):
        blocks.append(bk.section("\n".join(lines[start : start + 8])))
    view = {
        "type": "modal",
        "callback_id": MODAL,
        "title": {"type": "plain_text", "text": "Roll out"},
        "close": {"type": "plain_text", "text": "Cancel"},
        # for whoever reads the payload only: the submission is answered from the form the store keeps for this view
        "private_metadata": json.dumps({"rollout": rollout.id}),
        "blocks": bk.fit(blocks, 90),
    }
    if writes:
        view["submit"] = {"type": "plain_text", "text": f"Move {len(writes)}"[:24]}
    return view


def simple_view(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Roll out"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [bk.section(text)],
    }


def rollout_message(rollout: Rollout, *, rolled_back: bool = False) -> dict[str, Any]:
    what = "Rollback" if rollout.kind == "rollback" else "Rollout"
    writes = rollout.writes
    finished = rollout.count("done", "unchanged", "failed", "refused")
    status = {
        "awaiting_approval": ":lock: waiting for a second person to approve",
        "ready": "starting",
        "running": f"{bk.progress_bar(finished / max(1, len(writes)))} {finished}/{len(writes)}",
        "done": ":white_check_mark: done",
        "partial": f":warning: {rollout.count('failed')} failed",
        "failed": ":x: failed",
    }.get(rollout.status, rollout.status)
    head = (
        f"*{what} #{rollout.id}* of *{bk.escape(rollout.image)}* to `{short_digest(rollout.target_digest)}` "
        f"by {bk.user(rollout.requester)}: {status}"
    )
    if rollout.approved_by:
        head += f" (approved by {bk.user(rollout.approved_by)})"
    blocks: list[dict[str, Any]] = [bk.section(head)]
    lines = [_change_line(i) for i in rollout.items]
    for start in range(0, len(lines), 8):
        blocks.append(bk.section("\n".join(lines[start : start + 8])))
    buttons = []
    value = str(rollout.id)
    if rollout.status == "awaiting_approval":
        buttons.append(bk.button("Approve", APPROVE, value, style="primary"))
    if rollout.status in ("partial", "failed"):
        buttons.append(bk.button("Retry failed", RETRY, value))
    if (
        rollout.kind == "rollout"
        and rollout.status in ("done", "partial")
        and rollout.count("done")
        and not rolled_back
    ):
        dialog = bk.confirm(
            "Roll back?",
            f"Put the {rollout.count('done')} changed item(s) back to what they ran before (running clusters restart).",
            "Roll back",
            danger=True,
        )
        buttons.append(bk.button("Roll back", ROLLBACK, value, style="danger", confirm=dialog))
    if buttons:
        blocks.append(bk.actions(f"rollout_{rollout.id}", *buttons))
    return bk.message(f"{what} #{rollout.id} of {rollout.image}: {rollout.status}", bk.fit(blocks, 48))


# ---------------------------------------------------------------- Slack I/O


class MessageUpdater:
    """Keeps a rollout's one message current, at most one edit per UPDATE_EVERY (the last state always shown).
    A rollout without a message yet (a rollback) gets one in `channel` on its first update."""

    def __init__(self, ctx: AppContext, channel: str | None) -> None:
        self.ctx = ctx
        self.channel = channel
        self.last = 0.0
        self.lock = threading.Lock()

    def __call__(self, rollout: Rollout) -> None:
        final = rollout.status not in ("running", "ready")
        with self.lock:
            if not final and time.monotonic() - self.last < UPDATE_EVERY:
                return
            self.last = time.monotonic()
            if not rollout.slack_ts and self.channel:
                rollout = post_message(self.ctx, rollout, self.channel)
        update_message(self.ctx, rollout)


def update_message(ctx: AppContext, rollout: Rollout, channel: str | None = None, ts: str | None = None) -> None:
    channel, ts = channel or rollout.slack_channel, ts or rollout.slack_ts
    if not (channel and ts):
        return
    rolled_back = ctx.store.rollback_of(rollout.id) is not None
    try:
        call(ctx.client, "chat.update", channel=channel, ts=ts, **rollout_message(rollout, rolled_back=rolled_back))
    except SlackError as exc:
        log.warning("rollout %s: message not updated: %s", rollout.id, exc.code)


def post_message(ctx: AppContext, rollout: Rollout, channel: str) -> Rollout:
    posted = call(ctx.client, "chat.postMessage", channel=channel, **rollout_message(rollout))
    ctx.store.attach_rollout_message(rollout.id, posted.get("channel") or channel, posted["ts"])
    return ctx.store.get_rollout(rollout.id)


def run_in_message(ctx: AppContext, step: Callable[..., Rollout], rollout_id: int, user_id: str) -> None:
    """A worker job: one run/retry/rollback with its progress in the rollout's message (a rollback: its own)."""
    rollout = ctx.store.get_rollout(rollout_id)
    done = step(ctx.services, rollout_id, user_id, MessageUpdater(ctx, rollout.slack_channel))
    if done.id != rollout_id:
        update_message(ctx, ctx.store.get_rollout(rollout_id))  # the rolled-back rollout loses its button


def fleet_command(ctx: AppContext, cmd: CommandContext) -> None:
    cmd.reject_unknown(("workspace",), max_args=1)
    if not cmd.args:
        raise InvalidInput("NAME", "", "is missing", "Usage: `/dcs fleet NAME [workspace=W]`.")
    image, workspace = cmd.args[0], cmd.options.get("workspace")
    ctx.store.get_image(image)  # unknown: said in the ack
    if workspace:
        ctx.config.workspace(workspace)
    cmd.reply(bk.notice(f":mag: Listing what runs *{bk.escape(image)}* in every workspace…"))
    can_move = ctx.role(cmd.user_id) >= Role.BUILDER
    ctx.workers.quick(
        told_errors, cmd.response_url, "fleet listing", show_fleet, ctx, image, workspace, can_move, cmd.response_url
    )


def show_fleet(ctx: AppContext, image: str, workspace: str | None, can_move: bool, response_url: str | None) -> None:
    report = scan_fleet(ctx.services, images=[image], workspace=workspace)
    tell(response_url, fleet_message(image, report, can_move=can_move))


def open_rollout(ctx: AppContext, body: dict[str, Any], user_id: str) -> None:
    image = body["actions"][0].get("value", "")
    refusal = ctx.permitted(user_id, Role.BUILDER, "rollout.create", image, doing="move the fleet to a new image")
    if refusal:
        reply(ctx, body, bk.notice(refusal))
        return
    ctx.store.get_image(image)
    opened = call(
        ctx.client, "views.open", trigger_id=body.get("trigger_id", ""), view=simple_view(":hourglass: Listing…")
    )
    view_id = (opened.get("view") or {}).get("id", "")
    ctx.workers.quick(fill_modal, ctx, view_id, image, user_id, _channel(body))


def fill_modal(ctx: AppContext, view_id: str, image: str, user_id: str, channel: str) -> None:
    try:
        planned = rollouts.plan(ctx.services, image)
        rollout = rollouts.create(ctx.services, planned, user_id, propose=True)
        ctx.store.attach_rollout_message(rollout.id, channel, "")  # where its message goes once confirmed
        ctx.store.save_form(view_id, kind="rollout", user=user_id, state={"rollout": rollout.id})
        view = (
            rollout_modal(ctx.store.get_rollout(rollout.id))
            if rollout.writes
            else simple_view("Nothing to move: every item is on the current digest, left to its source, or a pool.")
        )
    except DcsError as exc:
        view = simple_view(f":warning: {bk.escape(exc.message)}")
    except Exception:
        ref = reference_id()
        log.exception("rollout modal for %s failed (ref %s)", image, ref)
        view = simple_view(f"Sorry, something went wrong on my side (reference {ref}).")
    call(ctx.client, "views.update", view_id=view_id, view=view)


def submitted(ctx: AppContext, ack: Any, body: dict[str, Any]) -> None:
    ack()
    user_id = (body.get("user") or {}).get("id", "")
    view = body.get("view") or {}
    form = ctx.store.form(str(view.get("id") or ""), "rollout") if isinstance(view, dict) else None
    if form is None or form.user != user_id or not isinstance(form.state.get("rollout"), int):
        return  # not a form the bot opened for this person: nothing to start
    rollout_id = int(form.state["rollout"])
    ctx.workers.submit(f"rollout-confirm:{rollout_id}", confirm_and_run, ctx, rollout_id, user_id)


def confirm_and_run(ctx: AppContext, rollout_id: int, user_id: str) -> None:
    rollout, moved = rollouts.confirm(ctx.services, rollout_id, user_id)
    if not moved:
        return  # a second submit: the first one posted and runs it
    channel = rollout.slack_channel or ctx.config.notify_channel or user_id
    if rollout.status == "awaiting_approval" and ctx.config.notify_channel:
        channel = ctx.config.notify_channel
    post_message(ctx, rollout, channel)
    if rollout.status == "ready":
        run_in_message(ctx, rollouts.run, rollout_id, user_id)


def _channel(body: dict[str, Any]) -> str:
    return (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id") or ""


def _rollout_id(ctx: AppContext, body: dict[str, Any]) -> int:
    """The rollout of the message the button is on (the store decides; the value must agree with it)."""
    value = body["actions"][0].get("value", "")
    if not value.isdigit():
        raise InvalidInput("button value", value, "is not a rollout number", "Use `/dcs fleet NAME` again.")
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    own = ctx.store.rollout_of_message(channel, ts) if channel and ts else None
    if own is None or own.id != int(value):
        raise InvalidInput(
            "button value", value, "is not the rollout of this message", "Use the buttons on the rollout's message."
        )
    return own.id


def fleet_home(ctx: AppContext, user_id: str) -> list[dict[str, Any]]:
    """The last inventory this process made (Home never waits for a workspace): per image, items and stale."""
    report = last_report(ctx.services)
    if report is None:
        return []
    lines = []
    for image in sorted({i.image for i in report.items}):
        items, stale = report.of(image), report.stale(image)
        lines.append(
            f"*{bk.escape(image)}*: {len(items)} place(s)"
            + (f", {len(stale)} stale" if stale else "")
            + f" — `/dcs fleet {bk.escape(image)}`"
        )
    if not lines:
        return []
    return [bk.header("Fleet"), bk.section("\n".join(lines[:20])), bk.context("From the last `/dcs fleet` listing.")]


def register(app: App, ctx: AppContext) -> None:
    if not databricks_configured(ctx.config):
        return
    ctx.commands.add(
        Subcommand(
            "fleet",
            "What runs an image in every workspace (clusters, jobs, pools, policies); move it to the current digest.",
            "fleet NAME [workspace=W]",
            Role.EVERYONE,
            lambda cmd: fleet_command(ctx, cmd),
        )
    )
    ctx.set_home_section("fleet", fleet_home)
    app.action(OPEN)(guarded(ctx, OPEN)(lambda body, user_id: open_rollout(ctx, body, user_id)))
    app.view(MODAL)(lambda ack, body: submitted(ctx, ack, body))

    def click(step: Callable[..., Rollout], action: str) -> Callable[[dict[str, Any], str], None]:
        def run(body: dict[str, Any], user_id: str) -> None:
            rollout_id = _rollout_id(ctx, body)
            refusal = ctx.permitted(user_id, Role.BUILDER, action, f"rollout#{rollout_id}", doing="change the fleet")
            if refusal:
                reply(ctx, body, bk.notice(refusal))
                return
            ctx.workers.submit(f"{action}:{rollout_id}:{user_id}", _clicked, ctx, body, step, rollout_id, user_id)

        return run

    app.action(RETRY)(guarded(ctx, RETRY)(click(rollouts.retry, "rollout.retry")))
    app.action(ROLLBACK)(guarded(ctx, ROLLBACK)(click(rollouts.rollback, "rollback.create")))
    app.action(APPROVE)(guarded(ctx, APPROVE)(click(_approve_and_run, "rollout.approve")))


def _approve_and_run(services: Any, rollout_id: int, user_id: str, progress: Any) -> Rollout:
    rollouts.approve(services, rollout_id, user_id)
    return rollouts.run(services, rollout_id, user_id, progress)


def _clicked(
    ctx: AppContext, body: dict[str, Any], step: Callable[..., Rollout], rollout_id: int, user_id: str
) -> None:
    try:
        run_in_message(ctx, step, rollout_id, user_id)
    except DcsError as exc:
        reply(ctx, body, bk.notice(f":no_entry: {exc.message}"))
