"""The "Add an image" modal: its blocks, reading its state, and the submission with inline errors.

Slack shows `response_action="errors"` messages under the input block they name, so every catalog
validation problem is mapped from its field to the block the user typed it in.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import App

from bot.clients.slack import SlackError, call
from bot.domain.bases import LTS_RUNTIMES
from bot.domain.packages import split_requirements
from bot.domain.permissions import Role
from bot.errors import DcsError, InvalidInput, InvalidInputs
from bot.ops.catalog import add_image
from handlers import blocks as bk
from handlers.blocks import input_block as _input
from handlers.blocks import option as _option
from handlers.blocks import text_input as _text
from handlers.context import AppContext, reference_id

log = logging.getLogger(__name__)

IMAGE_ADD = "image_add"
FLAVOURS = (
    ("standard", "standard — Python, DBFS FUSE, SSH (recommended)"),
    ("python", "python — Python only"),
    ("dbfsfuse", "dbfsfuse — Python + DBFS FUSE"),
    ("minimal", "minimal — no Python (Scala/Java)"),
    ("rbase", "rbase — R"),
)
DEFAULT_FLAVOUR, DEFAULT_RUNTIME = "standard", "15.4"
# Catalog field -> the modal block where its errors appear.
FIELD_BLOCKS = {
    "name": "name",
    "base": "base_custom",
    "pip": "pip",
    "apt": "apt",
    "repository": "repository",
    "registry": "repository",
    "schedule": "schedule",
    "notify_channel": "notify",
    "tag": "repository",
    "immutable_tag": "repository",
    "description": "name",
    "owner": "name",
    "env": "name",
}


def image_add_modal(channel_id: str = "") -> dict[str, Any]:
    flavours = [_option(v, t) for v, t in FLAVOURS]
    runtimes = [_option(r, f"{r} LTS") for r in reversed(LTS_RUNTIMES)]
    return {
        "type": "modal",
        "callback_id": IMAGE_ADD,
        "title": {"type": "plain_text", "text": "Add an image"},
        "submit": {"type": "plain_text", "text": "Add"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"channel": channel_id}),
        "blocks": [
            _input("name", "Name", _text("team-pandas"), hint="Lowercase letters, digits and '-'."),
            _input(
                "flavour",
                "Databricks base",
                {"type": "static_select", "options": flavours, "initial_option": flavours[0]},
            ),
            _input(
                "runtime",
                "Runtime (LTS)",
                {
                    "type": "static_select",
                    "options": runtimes,
                    "initial_option": next(o for o in runtimes if o["value"] == DEFAULT_RUNTIME),
                },
            ),
            _input(
                "base_custom",
                "Or a full base image",
                _text("myacr.azurecr.io/databricksruntime/standard:15.4-LTS"),
                optional=True,
                hint="Overrides the two fields above (mirrors, GPU images, pinned digests).",
            ),
            _input(
                "pip",
                "pip packages",
                _text("pandas==2.2.2, pyarrow>=15", multiline=True),
                optional=True,
                hint="Comma- or newline-separated.",
            ),
            _input("apt", "apt packages", _text("curl, libpq-dev", multiline=True), optional=True),
            _input("repository", "Push to repository", _text("myacr.azurecr.io/team/pandas")),
            _input(
                "schedule",
                "Rebuild schedule (cron, UTC)",
                _text("0 3 * * 1"),
                optional=True,
                hint="Five fields: minute hour day month weekday.",
            ),
            _input("notify", "Notify channel", {"type": "channels_select"}, optional=True),
        ],
    }


def form_data(data: dict[str, Any]) -> dict[str, Any]:
    """Turn text fields into the catalog's shapes: pip keeps `pandas>=2,<3` whole, apt splits on , and space."""
    out = {k: v for k, v in data.items() if v not in (None, "")}
    if isinstance(out.get("pip"), str):
        out["pip"] = split_requirements(out["pip"])
    if isinstance(out.get("apt"), str):
        out["apt"] = [p for p in re.split(r"[,\s]+", out["apt"]) if p]
    return out


def _value(values: dict[str, Any], block_id: str) -> str | None:
    element = (values.get(block_id) or {}).get("value") or {}
    if "selected_option" in element:
        return (element.get("selected_option") or {}).get("value")
    if "selected_channel" in element:
        return element.get("selected_channel")
    if "selected_conversation" in element:
        return element.get("selected_conversation")
    value = element.get("value")
    return value.strip() if isinstance(value, str) else None


def form_to_image(values: dict[str, Any]) -> dict[str, Any]:
    """The modal's state.values as an image mapping (strings; catalog validation comes next)."""
    base = _value(values, "base_custom")
    if not base:
        flavour = _value(values, "flavour") or DEFAULT_FLAVOUR
        runtime = _value(values, "runtime") or DEFAULT_RUNTIME
        base = f"databricksruntime/{flavour}:{runtime}-LTS"
    return {
        "name": _value(values, "name"),
        "base": base,
        "pip": _value(values, "pip"),
        "apt": _value(values, "apt"),
        "repository": _value(values, "repository"),
        "schedule": _value(values, "schedule"),
        "notify_channel": _value(values, "notify"),
    }


def inline_errors(exc: InvalidInput | InvalidInputs, custom_base: bool) -> dict[str, str]:
    """{block_id: message} for response_action=errors (first problem per block wins)."""
    problems = exc.problems if isinstance(exc, InvalidInputs) else [exc]
    errors: dict[str, str] = {}
    for problem in problems:
        block = FIELD_BLOCKS.get(problem.field, "name")
        if block == "base_custom" and not custom_base:
            block = "runtime"
        message = f"{problem.reason}. {problem.fix}" if problem.reason else problem.message
        errors.setdefault(block, bk.cut_words(message, 150))
    return errors


def register(app: App, ctx: AppContext) -> None:
    @app.view(IMAGE_ADD)
    def image_add_submitted(ack: Any, body: dict[str, Any]) -> None:
        handle_image_add(ctx, body, ack)


def handle_image_add(ctx: AppContext, body: dict[str, Any], ack: Any) -> None:
    user_id = body.get("user", {}).get("id", "")
    view = body.get("view") or {}
    values = (view.get("state") or {}).get("values") or {}
    refusal = ctx.permitted(user_id, Role.ADMIN, "image.add", doing="add images to the catalog")
    if refusal:
        ack(response_action="errors", errors={"name": bk.cut_words(refusal.replace("*", ""), 150)})
        return
    data = form_to_image(values)
    try:
        spec = add_image(ctx.services, form_data({**data, "owner": user_id}), actor=user_id)
    except (InvalidInput, InvalidInputs) as exc:
        ack(response_action="errors", errors=inline_errors(exc, bool(_value(values, "base_custom"))))
        return
    except DcsError as exc:  # AlreadyExists, mostly: the name is the field to change
        ack(response_action="errors", errors={"name": bk.cut_words(exc.message, 150)})
        return
    except Exception:
        ref = reference_id()
        log.exception("image add form by %s failed (ref %s)", user_id, ref)
        ack(response_action="errors", errors={"name": f"Sorry, something went wrong on my side (reference {ref})."})
        return
    ack()
    form = ctx.store.form(str(view.get("id") or ""), "image_add")
    channel = str(form.state.get("channel") or user_id) if form is not None and form.user == user_id else user_id
    ctx.workers.quick(_confirm, ctx, channel, user_id, bk.image_added(spec))


def _confirm(ctx: AppContext, channel: str, user_id: str, text: str) -> None:
    try:
        call(ctx.client, "chat.postEphemeral", channel=channel, user=user_id, **bk.notice(text))
    except SlackError:
        call(ctx.client, "chat.postMessage", channel=user_id, **bk.notice(text))  # the bot's DM with them
