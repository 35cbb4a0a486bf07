"""Pruning the store by age (bot/store/retention.py), with the periods from the configuration (DCS_KEEP_*).

Run once a day by the scheduler (`store:prune`) and at its start; a recorded run of its own group, so two
bots on one database never prune at the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.clock import stamp
from bot.domain.records import RunOutcome
from bot.ops.runs import run_job
from bot.services import Services
from bot.store import Pruned

PRUNE_JOB = "store:prune"


def prune_store(services: Services, now: datetime | None = None) -> Pruned:
    config = services.config
    now = now or datetime.now(UTC)

    def before(days: int) -> str:
        return stamp(now - timedelta(days=days))

    return services.store.prune(
        runs_before=before(config.keep_runs_days),
        claims_before=before(config.keep_claims_days),
        audit_before=before(config.keep_audit_days),
        logs_before=before(config.keep_logs_days),
    )


def prune_job(services: Services) -> None:
    def work() -> tuple[RunOutcome, str]:
        return "succeeded", "pruned " + prune_store(services).describe()

    run_job(services, PRUNE_JOB, work)
