"""The Docker Hub pull-budget watch: sample the budget, warn once per crossing, all-clear once.

Samples and the report are bot/ops/budget.py; the warning state lives in `alert_state` (key
`dockerhub-pulls`), so a restart neither repeats a warning nor forgets one. The state only changes once the
notice is out (or when there is no channel to post to), so a Slack outage delays a warning instead of losing
it. Notices go out through the notifier port (`services.notifier`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.domain.notify import BudgetAlert
from bot.domain.ratelimit import ALL_CLEAR, WARNING, AlertDecision, PullBudget, next_alert
from bot.errors import DcsError, PullLimitReached
from bot.ops.budget import budget_report, launch_demand, read_budget, thresholds
from bot.services import Services

log = logging.getLogger(__name__)

ALERT_KEY = "dockerhub-pulls"
_alert_lock = threading.Lock()  # one state transition at a time inside this process


@dataclass(frozen=True)
class WatchOutcome:
    budget: PullBudget | None
    decision: AlertDecision | None
    posted: str | None  # WARNING / ALL_CLEAR when a notice went out
    error: str | None = None


def ratelimit_job(services: Services, *, notify: bool = True, now: datetime | None = None) -> WatchOutcome:
    """Sample the budget and post a warning or an all-clear on a crossing (never in between)."""
    store, config = services.store, services.config
    now = now or datetime.now(UTC)
    error = None
    try:
        budget = read_budget(services)
    except PullLimitReached as exc:
        budget = PullBudget(limit=exc.limit, remaining=0, window_seconds=exc.window_seconds)
        error = exc.message
    except DcsError as exc:
        log.warning("pull budget check failed: %s", type(exc).__name__)
        return WatchOutcome(None, None, None, services.redactor(exc.message))
    recent, planned = launch_demand(store, now, budget.window_seconds)
    with _alert_lock:
        previous, _ = store.alert_state(ALERT_KEY)
        decision = next_alert(previous, budget, thresholds(config, recent + planned))
        posted = None
        if decision.notify and notify and config.notify_channel:
            alert = BudgetAlert(
                "warning" if decision.notify == WARNING else "all_clear",
                budget_report(services, now),
                decision.reason,
                config.notify_channel,
            )
            try:
                delivered = services.notifier.budget_alert(alert)
            except DcsError as exc:
                # Keep the old state: the next check tries the notice again instead of losing it.
                log.warning("pull-budget notice not posted: %s", exc.message)
                return WatchOutcome(budget, decision, None, exc.message)
            posted = decision.notify if delivered else None
        if decision.state != previous:
            store.set_alert_state(ALERT_KEY, decision.state, decision.reason)
    if posted:
        store.audit(
            actor=None, action="ratelimit.notice", target=config.notify_channel, outcome=posted, detail=decision.reason
        )
    return WatchOutcome(budget, decision, posted if posted in (WARNING, ALL_CLEAR) else None, error)
