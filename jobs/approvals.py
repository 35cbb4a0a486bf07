"""The approval expiry sweep: every 10 min, requests past their 24 h lose their buttons.

Clicks on an expired request are refused anyway (bot/ops/approvals.py); the sweep only makes the message
say so before anyone clicks. Messages are updated through the notifier port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from bot.errors import DcsError
from bot.ops.approvals import approvals_for
from bot.services import Services
from bot.workers import Workers
from jobs.periodic import every

log = logging.getLogger(__name__)

EXPIRY_SWEEP_SECONDS = 600


def sweep_expired(services: Services) -> list[int]:
    """Mark requests past their expiry as expired and update their messages."""
    expired = approvals_for(services).expire_due()
    for request in expired:
        try:
            services.notifier.approval_changed(services.store.get_approval(request.id))
        except DcsError as exc:
            log.warning("could not update approval request #%s: %s", request.id, exc.message)
    return [r.id for r in expired]


def start_expiry_sweep(services: Services, workers: Workers, args: Any = None) -> Callable[[], None] | None:
    """bot.__main__ start-up hook (off with --no-scheduler)."""
    if getattr(args, "no_scheduler", False):
        return None
    return every(EXPIRY_SWEEP_SECONDS, "approval-expiry", lambda: sweep_expired(services))
