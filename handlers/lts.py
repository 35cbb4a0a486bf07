"""The "Upgrade NAME…" button of a new-LTS proposal: a modal asks the new entry's name, the submission adds the
upgraded catalog entry (same spec, the proposed base) and builds it through the release gate.

Slack glue only (bot/ops/lts.py does the work). Catalog changes are for admins. The button names the image;
which base it moves to comes from the proposal the store remembers, not from anything the client sends.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import App

from bot.clients.slack import call
from bot.domain.lts import upgraded_name
from bot.domain.permissions import Role
from bot.errors import DcsError, InvalidInput, InvalidInputs
from bot.ops.lts import pending_proposal, upgrade
from handlers import blocks as bk
from handlers.actions import guarded, reply
from handlers.builds import start_build
from handlers.context import AppContext, reference_id

log = logging.getLogger(__name__)
UPGRADE, SUBMIT = "lts_upgrade", "lts_upgrade_submit"


def upgrade_modal(image: str, new_base: str, channel: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": SUBMIT,
        "private_metadata": json.dumps({"image": image, "channel": channel}),
        "title": {"type": "plain_text", "text": "Upgrade to a new LTS"},
        "submit": {"type": "plain_text", "text": "Add and build"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            bk.section(
                f"A new catalog entry with *{bk.escape(image)}*'s spec on `{bk.escape(new_base)}`. It is built and "
                f"pushed as a candidate and promoted by its release policy; *{bk.escape(image)}* stays as it is."
            ),
            bk.input_block(
                "name",
                "Name of the new image",
                bk.text_input(
                    "lowercase letters, digits, -", initial=upgraded_name(image, new_base.rsplit(":", 1)[-1])
                ),
            ),
        ],
    }


def register(app: App, ctx: AppContext) -> None:
    @app.action(UPGRADE)
    @guarded(ctx, UPGRADE)
    def on_upgrade(body: dict[str, Any], user_id: str) -> None:
        image = str((body.get("actions") or [{}])[0].get("value", ""))
        refusal = ctx.permitted(user_id, Role.ADMIN, "image.add", image, doing="add images to the catalog")
        if refusal:
            reply(ctx, body, bk.notice(refusal))
            return
        proposal = pending_proposal(ctx.services, image)
        channel = (body.get("container") or {}).get("channel_id") or user_id
        opened = call(
            ctx.client,
            "views.open",
            trigger_id=body.get("trigger_id"),
            view=upgrade_modal(image, proposal.new_base, channel),
        )
        # what this form upgrades and where it answers: the submission reads it back from here
        view_id = str((opened.get("view") or {}).get("id") or "")
        ctx.store.save_form(view_id, kind="lts_upgrade", user=user_id, state={"image": image, "channel": channel})

    @app.view(SUBMIT)
    def on_submit(ack: Any, body: dict[str, Any]) -> None:
        user_id = (body.get("user") or {}).get("id", "")
        view = body.get("view") or {}
        form = ctx.store.form(str(view.get("id") or ""), "lts_upgrade") if isinstance(view, dict) else None
        if form is None or form.user != user_id:
            ack(response_action="errors", errors={"name": "This form was not opened for you: click Upgrade again."})
            return
        image, channel = str(form.state.get("image", "")), str(form.state.get("channel") or user_id)
        name = str(
            (((view.get("state") or {}).get("values") or {}).get("name") or {}).get("value", {}).get("value") or ""
        )
        refusal = ctx.permitted(user_id, Role.ADMIN, "image.add", image, doing="add images to the catalog")
        if refusal:
            ack(response_action="errors", errors={"name": bk.cut_words(refusal.replace("*", ""), 150)})
            return
        try:
            spec = upgrade(ctx.services, image, name.strip(), actor=user_id)
        except (InvalidInput, InvalidInputs) as exc:
            problems = exc.problems if isinstance(exc, InvalidInputs) else [exc]
            ack(response_action="errors", errors={"name": bk.cut_words(problems[0].message, 150)})
            return
        except DcsError as exc:  # AlreadyExists, no proposal any more
            ack(response_action="errors", errors={"name": bk.cut_words(exc.message, 150)})
            return
        except Exception:
            ref = reference_id()
            log.exception("LTS upgrade of %s by %s failed (ref %s)", image, user_id, ref)
            ack(response_action="errors", errors={"name": f"Sorry, something went wrong on my side (reference {ref})."})
            return
        ack()
        ctx.workers.quick(_build, ctx, spec.name, user_id, channel, f"lts-upgrade:{view.get('id', '')}")


def _build(ctx: AppContext, name: str, user_id: str, channel: str, claim_key: str) -> None:
    started = start_build(ctx, name, push=True, requester=user_id, channel=channel, claim_key=claim_key)
    try:
        call(ctx.client, "chat.postEphemeral", channel=channel, user=user_id, **started.reply)
    except DcsError:
        call(ctx.client, "chat.postMessage", channel=user_id, **started.reply)
