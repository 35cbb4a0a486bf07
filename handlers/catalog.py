"""The catalog from Slack: `/dcs images` and `/dcs image add` (a form, or key=value for power users)."""

from __future__ import annotations

import json
import logging
import re
import weakref
from typing import Any

from bot.catalog import ImageSpec, check_registry_known, image_from_dict
from bot.errors import InvalidInput, InvalidInputs
from bot.packages import split_requirements
from bot.permissions import Role
from bot.slack_client import SlackError, call
from bot.store import Build, Store
from handlers import blocks as bk
from handlers.commands import CommandContext, Subcommand, now
from handlers.context import AppContext
from jobs.scheduler import catalog_changed

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


def add_commands(ctx: AppContext) -> None:
    ctx.commands.add(
        Subcommand(
            "images",
            "The catalog: every image with its last build and pushed digest.",
            "images",
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


_LATEST = (
    "SELECT b.id, b.image, b.status, b.requester, b.requested_at, b.started_at, b.finished_at, "
    "b.pushed_digest FROM builds b JOIN (SELECT image, MAX(id) AS id FROM builds {where} GROUP BY image) "
    "last ON b.id = last.id"
)


_cache: weakref.WeakKeyDictionary[Store, tuple[tuple[int, int], tuple[bk.CatalogRow, ...]]] = (
    weakref.WeakKeyDictionary()
)


def catalog_rows(store: Store) -> list[bk.CatalogRow]:
    """The catalog with each image's latest and latest successful build.

    `/dcs images` and App Home ask for this on every request while acks must stay in milliseconds, so
    the result is cached until the database changes: `total_changes` counts this process's writes,
    `PRAGMA data_version` moves when another process (the `dcs` CLI) commits.
    """
    conn = store.db.conn
    fingerprint = store.with_lock(lambda: (conn.total_changes, conn.execute("PRAGMA data_version").fetchone()[0]))
    cached = _cache.get(store)
    if cached is not None and cached[0] == fingerprint:
        return list(cached[1])
    rows = _read_catalog(store)
    _cache[store] = (fingerprint, tuple(rows))
    return rows


def _read_catalog(store: Store) -> list[bk.CatalogRow]:
    # Three queries whatever the catalog size; specs were validated when stored, so plain JSON is enough.
    latest = {r["image"]: Build(**r) for r in store.query(_LATEST.format(where=""))}
    good = {r["image"]: Build(**r) for r in store.query(_LATEST.format(where="WHERE status = 'succeeded'"))}
    rows = []
    for row in store.query("SELECT name, spec FROM images ORDER BY name"):
        spec = json.loads(row["spec"])
        rows.append(
            bk.CatalogRow(
                row["name"],
                spec.get("base", ""),
                spec.get("repository", ""),
                spec.get("schedule"),
                latest.get(row["name"]),
                good.get(row["name"]),
            )
        )
    return rows


def images_command(cmd: CommandContext) -> None:
    cmd.reject_unknown(max_args=0)
    cmd.reply(bk.images_list(catalog_rows(cmd.app.store), now()))


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
    spec = add_image(cmd.app, data, actor=cmd.user_id)
    cmd.reply(bk.notice(added_text(spec)), public=False)


def form_data(data: dict[str, Any]) -> dict[str, Any]:
    """Turn text fields into the catalog's shapes: pip keeps `pandas>=2,<3` whole, apt splits on , and space."""
    out = {k: v for k, v in data.items() if v not in (None, "")}
    if isinstance(out.get("pip"), str):
        out["pip"] = split_requirements(out["pip"])
    if isinstance(out.get("apt"), str):
        out["apt"] = [p for p in re.split(r"[,\s]+", out["apt"]) if p]
    return out


def add_image(ctx: AppContext, data: dict[str, Any], *, actor: str) -> ImageSpec:
    """Validate and store a new image; every problem is raised with the field it belongs to."""
    store = ctx.store
    try:
        spec = image_from_dict(form_data(data))
        check_registry_known(spec, store.list_registries())
        store.add_image(spec)
    except (InvalidInput, InvalidInputs) as exc:
        store.audit(
            actor=actor,
            action="image.add",
            target=str(data.get("name") or ""),
            outcome="invalid",
            detail=ctx.services.redactor(exc.message)[:500],
        )
        raise
    store.audit(actor=actor, action="image.add", target=spec.name, outcome="ok", detail=spec.base)
    log.info("image %s added by %s", spec.name, actor)
    # Its schedule applies at once (a few in-memory scheduler calls, off the ack path).
    ctx.workers.quick(catalog_changed, ctx.services)
    return spec


def added_text(spec: ImageSpec) -> str:
    return (
        f":white_check_mark: Added *{bk.escape(spec.name)}* (`{bk.escape(spec.base)}` → "
        f"`{bk.escape(spec.repository)}`). Build it with `/dcs build {spec.name}` or "
        f"`/dcs build {spec.name} push`."
    )


def open_add_form(cmd: CommandContext) -> None:
    from handlers.views import image_add_modal

    cmd.ack()  # the trigger_id stays valid 3 s: ack first, then open
    try:
        call(cmd.app.client, "views.open", trigger_id=cmd.trigger_id, view=image_add_modal(cmd.channel_id))
    except SlackError as exc:
        cmd.reply(bk.problem(f"The form could not open: {exc.message}"))
