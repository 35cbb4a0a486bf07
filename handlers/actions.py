"""Buttons: "Show log", "Retry" on a build message, "Build" and "Build & push" on App Home.

Bolt does not de-duplicate: a double click delivers two block_actions. Buttons that start work claim
`button_key(body)` first (the message or Home view the click came from, plus the action), so the
second click only gets a note. Read-only buttons need no claim.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import App

from bot.clients.slack import call
from bot.domain.permissions import Role
from bot.errors import DcsError, InvalidInput
from handlers import blocks as bk
from handlers.builds import details_content, log_content, start_build
from handlers.context import AppContext, reference_id
from handlers.log_share import share_log
from handlers.respond import tell

log = logging.getLogger(__name__)


def button_key(body: dict[str, Any]) -> str:
    """Identifies the click's origin: a double click on the same button of the same message (or Home view
    version) gives the same key; a fresh message or a re-rendered Home gives a new one."""
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    origin = container.get("message_ts") or (body.get("message") or {}).get("ts")
    if not origin:
        view = body.get("view") or {}
        origin = f"{view.get('id', '')}:{view.get('hash', '')}"
    return f"button:{origin}:{action.get('block_id', '')}:{action.get('action_id', '')}:{action.get('value', '')}"


def guarded(ctx: AppContext, name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Ack at once, then run the body; DcsErrors become an ephemeral note, crashes an apology with a ref."""

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        def listener(ack: Any, body: dict[str, Any]) -> None:
            ack()
            user_id = (body.get("user") or {}).get("id", "")
            try:
                fn(body, user_id)
            except DcsError as exc:
                reply(ctx, body, bk.problem(exc.message))
            except Exception:
                ref = reference_id()
                log.exception("button %s by %s failed (ref %s)", name, user_id, ref)
                reply(ctx, body, bk.apology(ref))

        listener.__name__ = f"action_{name}"
        return listener

    return wrap


def reply(ctx: AppContext, body: dict[str, Any], content: dict[str, Any]) -> None:
    """An ephemeral answer to the clicker: via response_url for messages, a DM for App Home clicks."""
    if body.get("response_url"):
        ctx.workers.quick(tell, body["response_url"], content)
        return
    user_id = (body.get("user") or {}).get("id", "")
    if user_id:
        ctx.workers.quick(call, ctx.client, "chat.postMessage", channel=user_id, **content)


def _channel(body: dict[str, Any]) -> str:
    return (
        (body.get("container") or {}).get("channel_id")
        or (body.get("channel") or {}).get("id")
        or (body.get("user") or {}).get("id", "")
    )


def register(app: App, ctx: AppContext) -> None:
    @app.action("build_show_log")
    @guarded(ctx, "build_show_log")
    def show_log(body: dict[str, Any], user_id: str) -> None:
        value = body["actions"][0].get("value", "")
        if not value.isdigit():
            raise InvalidInput("button value", value, "is not a build number", "Use `/dcs log BUILD_ID`.")
        reply(ctx, body, log_content(ctx, int(value)))

    @app.action("build_details")
    @guarded(ctx, "build_details")
    def details(body: dict[str, Any], user_id: str) -> None:
        reply(ctx, body, details_content(ctx, _build_number(body)))

    @app.action("build_share_log")
    @guarded(ctx, "build_share_log")
    def share(body: dict[str, Any], user_id: str) -> None:
        build_id = _build_number(body)
        message = body.get("message") or {}
        thread = message.get("thread_ts") or message.get("ts") or (body.get("container") or {}).get("message_ts")
        if not thread:
            raise InvalidInput("button", "Log in thread", "is not on a message", f"Use `/dcs log {build_id}`.")
        if not ctx.store.claim(f"share-log:{build_id}:{thread}", "share-log"):
            reply(ctx, body, bk.notice("The log is already in this message's thread."))
            return
        ctx.workers.quick(share_log, ctx, build_id, _channel(body), thread, user_id, body.get("response_url"))

    def start_from_button(body: dict[str, Any], user_id: str, image: str, push: bool, action: str) -> None:
        refusal = ctx.permitted(user_id, Role.BUILDER, action, image, doing=f"build {image}")
        if refusal:
            reply(ctx, body, bk.notice(refusal))
            return
        started = start_build(
            ctx,
            image,
            push=push,
            requester=user_id,
            channel=_channel(body),
            claim_key=button_key(body),
            response_url=body.get("response_url"),
        )
        reply(ctx, body, started.reply)
        if (body.get("view") or {}).get("type") == "home" and ctx.refresh_home is not None:
            ctx.workers.quick(ctx.refresh_home, ctx, user_id)  # the Home tab shows the new build at once

    @app.action("build_retry")
    @guarded(ctx, "build_retry")
    def retry(body: dict[str, Any], user_id: str) -> None:
        data = _json_value(body)
        start_from_button(body, user_id, str(data.get("image", "")), bool(data.get("push")), "build.retry")

    @app.action("build_image")
    @guarded(ctx, "build_image")
    def build_image(body: dict[str, Any], user_id: str) -> None:
        data = _json_value(body)
        start_from_button(body, user_id, str(data.get("image", "")), bool(data.get("push")), "build.request")


def _build_number(body: dict[str, Any]) -> int:
    value = body["actions"][0].get("value", "")
    if not value.isdigit():
        raise InvalidInput("button value", value, "is not a build number", "Use `/dcs status` to find the build.")
    return int(value)


def _json_value(body: dict[str, Any]) -> dict[str, Any]:
    value = body["actions"][0].get("value", "")
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not data.get("image"):
        raise InvalidInput("button value", value, "is not a build request", "Use `/dcs build NAME` instead.")
    return data
