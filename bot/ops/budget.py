"""The Docker Hub pull budget: read it (no pull spent), keep samples, and say where it stands.

Samples go to `ratelimit_samples` (kept 14 days); the last check's outcome is an alert state
(`dockerhub-check`). `budget_report` is what `/dcs ratelimit`, App Home and `dcs ratelimit` show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.config import Config
from bot.domain.clock import ago, parse_time, stamp
from bot.domain.credentials import Credentials
from bot.domain.ratelimit import (
    LOW,
    OK,
    BudgetReport,
    PullBudget,
    Thresholds,
    bucket_samples,
    sparkline,
    window_demand,
)
from bot.domain.records import LaunchStatus
from bot.domain.refs import parse_ref
from bot.errors import DcsError, PullLimitReached
from bot.services import Services
from bot.store import Store

CHECK_KEY = "dockerhub-check"  # last check outcome: state ok|error, detail = the error
DEFAULT_WINDOW = 6 * 3600  # only to size "recent launches" before the first sample says otherwise
KEEP_DAYS = 14
# Launches that will still start a cluster: being created, or held back by the budget check until someone
# presses "launch anyway".
PLANNED_LAUNCH_STATES: tuple[LaunchStatus, ...] = ("creating", "blocked", "checking")


@dataclass(frozen=True)
class LatestBudget:
    budget: PullBudget
    at: str
    account: str | None


def dockerhub_credentials(config: Config) -> Credentials | None:
    if config.dockerhub_username and config.dockerhub_token:
        return Credentials(config.dockerhub_username, config.dockerhub_token)
    return None


def record_sample(store: Store, budget: PullBudget, account: str | None, at: str | None = None) -> None:
    store.add_sample(
        account=account,
        limit=budget.limit,
        remaining=budget.remaining,
        window_seconds=budget.window_seconds,
        source="unlimited" if budget.unlimited else budget.source,
        at=at,
        keep_after=stamp(datetime.now(UTC) - timedelta(days=KEEP_DAYS)),
    )


def latest_budget(store: Store) -> LatestBudget | None:
    sample = store.latest_sample()
    if sample is None:
        return None
    unlimited = sample.source == "unlimited"
    budget = PullBudget(
        limit=sample.limit,
        remaining=sample.remaining,
        window_seconds=sample.window_seconds,
        source=None if unlimited else sample.source,
        unlimited=unlimited,
    )
    return LatestBudget(budget, sample.at, sample.account)


def samples_since(store: Store, since: datetime) -> list[tuple[datetime, int | None]]:
    return [(moment, s.remaining) for s in store.samples_since(stamp(since)) if (moment := parse_time(s.at))]


def launch_demand(store: Store, now: datetime, window_seconds: int | None) -> tuple[int, int]:
    """(pulls launches of the current window needed, pulls launches not started yet will need).

    Only images on Docker Hub count: a launch from a private registry spends none of this budget.
    """
    window = window_seconds or DEFAULT_WINDOW
    recent, planned = [], 0
    for row in store.launch_demand_rows(stamp(now - timedelta(seconds=window)), PLANNED_LAUNCH_STATES):
        if not _on_docker_hub(row.image_url):
            continue
        if row.cluster_id is None and row.status in PLANNED_LAUNCH_STATES:
            planned += row.pulls_needed or 0
        elif row.cluster_id is not None:
            at = parse_time(row.created_at)
            if at is not None:
                recent.append((at, row.pulls_needed))
    return window_demand(recent, now, window), planned


def _on_docker_hub(image_url: str | None) -> bool:
    if not image_url:
        return False
    try:
        return parse_ref(image_url, "image_url").on_docker_hub
    except DcsError:
        return False


def thresholds(config: Config, needed: int) -> Thresholds:
    return Thresholds(percent=config.pull_warn_percent, minimum=config.pull_warn_min, needed=needed)


def budget_report(services: Services, now: datetime | None = None) -> BudgetReport:
    """The latest sample, 24 h sparkline and launch demand (no network)."""
    store, config = services.store, services.config
    now = now or datetime.now(UTC)
    latest = latest_budget(store)
    check_state, check_error = store.alert_state(CHECK_KEY)
    error = check_error if check_state == "error" else None
    if latest is None:
        return BudgetReport(budget=None, account=config.dockerhub_username, error=error)
    budget = latest.budget
    recent, planned = launch_demand(store, now, budget.window_seconds)
    slots = bucket_samples(samples_since(store, now - timedelta(hours=24)), now)
    warn_below = thresholds(config, recent + planned).warn_below(budget) if not budget.unlimited else 0
    # What people see is where the numbers stand now; the alert state (hysteresis) only governs notices.
    low = not budget.unlimited and budget.remaining is not None and budget.remaining < warn_below
    return BudgetReport(
        budget=budget,
        account=latest.account,
        checked_at=latest.at,
        checked_ago=ago(latest.at, now),
        error=error,
        spark=sparkline(slots, high=budget.limit, gap="·") if not budget.unlimited else "",
        recent_pulls=recent,
        planned_pulls=planned,
        state=LOW if low else OK,
        warn_below=warn_below,
    )


def read_budget(services: Services) -> PullBudget:
    """Ask Docker Hub now and store the sample. A 429 is a sample too: nothing left."""
    config = services.config
    account = config.dockerhub_username
    try:
        budget = services.dockerhub.pull_budget(dockerhub_credentials(config))
    except PullLimitReached as exc:
        budget = PullBudget(limit=exc.limit, remaining=0, window_seconds=exc.window_seconds)
        record_sample(services.store, budget, account)
        services.store.set_alert_state(CHECK_KEY, "error", exc.message)
        raise
    except DcsError as exc:
        services.store.set_alert_state(CHECK_KEY, "error", services.redactor(exc.message))
        raise
    record_sample(services.store, budget, account)
    services.store.set_alert_state(CHECK_KEY, "ok", None)
    return budget


def budget_is_stale(services: Services, now: datetime) -> bool:
    """No sample, or the last is older than two check intervals (the watch may not be running)."""
    latest = services.store.latest_sample()
    at = parse_time(latest.at) if latest else None
    return at is None or now - at > timedelta(minutes=2 * services.config.ratelimit_minutes)


@dataclass(frozen=True)
class BudgetReading:
    """`ratelimit`: the report, and the failure of the fresh read when one was asked for and failed."""

    report: BudgetReport
    failure: DcsError | None = None


def pull_budget(services: Services, *, refresh: bool = True) -> BudgetReading:
    """The pull budget as people see it; with `refresh`, read Docker Hub first (a failure is reported)."""
    failure = None
    if refresh:
        try:
            read_budget(services)
        except DcsError as exc:
            failure = exc
    return BudgetReading(budget_report(services), failure)
