"""The catalog from Slack: `/dcs images` and `/dcs image add` (a form, or key=value for power users)."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from slack_bolt import App

from bot.clients.slack import SlackError, call
from bot.domain.catalog_search import ImagePage
from bot.domain.permissions import Role
from bot.errors import InvalidInput
from bot.ops.catalog import add_image, image_page
from handlers import blocks as bk
from handlers.commands import CommandContext, Subcommand, now
from handlers.context import AppContext
from handlers.respond import replace
from handlers.views import form_data, image_add_modal

log = logging.getLogger(__name__)

# key=value names accepted by `image add`, mapped to catalog fields.
ADD_OPTIONS = {
    "base": "base",
    "repository": "repository",
    "repo": "repository",
    "registry": "registry",
    "pip": "pip",
    "apt": "apt",
    "tag": "tag",
    "immutable_tag": "immutable_tag",
    "schedule": "schedule",
    "notify": "notify_channel",
    "notify_channel": "notify_channel",
    "description": "description",
}


def register(app: App, ctx: AppContext) -> None:
    register_paging(app, ctx)
    ctx.commands.add(
        Subcommand(
            "images",
            "The catalog: every image with its last build and pushed digest; words filter, buttons page.",
            "images [WORD…]",
            Role.EVERYONE,
            images_command,
        )
    )
    ctx.commands.add(
        Subcommand(
            "image add",
            "Add an image to the catalog (opens a form without arguments).",
            'image add [NAME base=... repo=... pip=a,b apt=c schedule="0 3 * * 1" notify=#channel]',
            Role.ADMIN,
            image_add_command,
        )
    )


def images_command(cmd: CommandContext) -> None:
    cmd.reject_unknown()
    cmd.reply(rendered_page(image_page(cmd.app.services, " ".join(cmd.args))))


_rendered: dict[tuple[int, int], tuple[ImagePage, dict[str, Any]]] = {}
_rendered_lock = threading.Lock()


def rendered_page(page: ImagePage) -> dict[str, Any]:
    """The page's message, drawn at most once a second per page (its "… ago" texts count in whole seconds):
    under a burst of `/dcs images`, the answer is the same dict again (Bolt only reads it)."""
    moment = now()
    key = (id(page), int(moment.timestamp()))
    with _rendered_lock:
        known = _rendered.get(key)
    if known is not None and known[0] is page:
        return known[1]
    content = bk.images_page(page, moment)
    with _rendered_lock:
        if len(_rendered) >= 64:
            _rendered.clear()
        _rendered[key] = (page, content)
    return content


def register_paging(app: App, ctx: AppContext) -> None:
    """Previous/Next on a `/dcs images` answer: the same filter, another offset (read-only: no claim)."""

    def page(ack: Any, body: dict[str, Any]) -> None:
        ack()
        action = (body.get("actions") or [{}])[0]
        try:
            data = json.loads(action.get("value") or "{}")
            query, offset = str(data.get("q", "")), int(data.get("offset", 0))
        except (ValueError, TypeError, AttributeError):
            query, offset = "", 0  # a mangled value shows the first page rather than nothing
        content = bk.images_page(image_page(ctx.services, query, offset), now())
        ctx.workers.quick(replace, body.get("response_url"), content)

    app.action("images_page_previous")(page)
    app.action("images_page_next")(page)


def image_add_command(cmd: CommandContext) -> None:
    if not cmd.args and not cmd.options:
        open_add_form(cmd)
        return
    cmd.reject_unknown(tuple(ADD_OPTIONS), max_args=1)
    if not cmd.args:
        raise InvalidInput("NAME", "", "is missing", "Put the image name first: `/dcs image add team-pandas base=...`.")
    data: dict[str, Any] = {"name": cmd.args[0], "owner": cmd.user_id}
    for key, value in cmd.options.items():
        data[ADD_OPTIONS[key]] = value
    spec = add_image(cmd.app.services, form_data(data), actor=cmd.user_id)
    cmd.reply(bk.notice(bk.image_added(spec)), public=False)


def open_add_form(cmd: CommandContext) -> None:
    cmd.ack()  # the trigger_id stays valid 3 s: ack first, then open
    try:
        opened = call(cmd.app.client, "views.open", trigger_id=cmd.trigger_id, view=image_add_modal(cmd.channel_id))
        view_id = (opened.get("view") or {}).get("id", "")
        # where the confirmation goes: read back from the store on submission, not from private_metadata
        cmd.app.store.save_form(view_id, kind="image_add", user=cmd.user_id, state={"channel": cmd.channel_id})
    except SlackError as exc:
        cmd.reply(bk.problem(f"The form could not open: {exc.message}"))
