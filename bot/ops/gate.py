"""The release gate's steps after a push: canary, then promotion or a wait for approval (bot/domain/release.py).

`advance` is called once a build pushed its immutable tag (every surface: bot/ops/build.py). "doctor" images
were promoted by their build already. "canary" images are promoted when the canary passed; "approval" images
(after the canary when `canary = true`) wait for their approvers (bot/ops/approvals_release.py). A canary that
fails leaves the moving tag where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.domain.records import Release
from bot.errors import DcsError
from bot.ops.canary import run_canary
from bot.ops.release import promote_build
from bot.services import Services

log = logging.getLogger(__name__)
BOT_ACTOR = "dcs-bot"


def advance(
    services: Services,
    build_id: int,
    *,
    announce: bool = True,
    sleep: Callable[[float], None] | None = None,
    poll_seconds: float | None = None,
) -> Release | None:
    """Take an open candidate as far as its policy goes without a person; its release row afterwards."""
    store = services.store
    release = store.find_release(build_id)
    if release is None or not release.open:
        return release
    try:
        spec = store.get_image(release.image)
        policy = spec.release
        if policy.needs_canary and release.status == "candidate" and not release.canary.get("ok"):
            outcome = run_canary(services, release, sleep=sleep, poll_seconds=poll_seconds)
            if not outcome.ok:
                return store.release(build_id)
        release = store.release(build_id)
        if release.status != "candidate":
            return release
        if policy.promote == "canary":
            promote_build(services, spec, store.get_build(build_id), actor=BOT_ACTOR, how="canary")
        elif policy.needs_approval and store.move_release(build_id, to="waiting", frm=("candidate",)) and announce:
            services.notifier.release_changed(store.release(build_id))
    except DcsError as exc:
        # the build itself succeeded; what the gate could not do is recorded, the candidate stays for a person
        log.warning("release gate of build %s stopped: %s", build_id, exc.message)
        store.audit(
            actor=BOT_ACTOR, action="gate", target=f"{release.image}#{build_id}", outcome="failed", detail=exc.message
        )
    return store.release(build_id)
