"""The release gate's background work: at start-up, canaries a stopped bot left behind get their clusters
terminated (bot/ops/canary.py `sweep_canaries`); every minute, candidates past their approval deadline expire
(bot/ops/release_votes.py), so the message says so before anyone clicks (a click on one is refused anyway)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.ops.canary import sweep_canaries
from bot.ops.release_votes import expire_due
from bot.services import Services
from bot.workers import Workers
from jobs.periodic import every

log = logging.getLogger(__name__)

EXPIRY_SWEEP_SECONDS = 60


def start(services: Services, workers: Workers, args: Any = None) -> Callable[[], None] | None:
    """bot.__main__ start-up hook. The canary sweep always runs (a canary cluster is never left running); the
    expiry sweep only with the scheduler."""

    def sweep() -> None:
        ended = sweep_canaries(services)
        if ended:
            log.warning("canaries of builds %s were cut short by a restart; their clusters were terminated", ended)

    workers.quick(sweep)
    if getattr(args, "no_scheduler", False):
        return None
    return every(EXPIRY_SWEEP_SECONDS, "release-expiry", lambda: expire_due(services))
