"""The Docker Hub pull-budget watch: sample the budget, store it, warn once per crossing, all-clear once.

Samples go to `ratelimit_samples`; the warning state lives in `alert_state` (key `dockerhub-pulls`), so a
restart neither repeats a warning nor forgets one. The state only changes once the notice is out (or
when there is no channel to post to), so a Slack outage delays a warning instead of losing it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.clients.registry import Credentials
from bot.config import Config
from bot.errors import DcsError, PullLimitReached
from bot.ratelimit import (
    ALL_CLEAR,
    LOW,
    OK,
    WARNING,
    AlertDecision,
    BudgetReport,
    PullBudget,
    Thresholds,
    bucket_samples,
    next_alert,
    sparkline,
    window_demand,
)
from bot.refs import parse_ref
from bot.services import Services
from bot.store import Store, parse_time, utcnow

log = logging.getLogger(__name__)

ALERT_KEY = "dockerhub-pulls"
CHECK_KEY = "dockerhub-check"  # last check outcome: state ok|error, detail = the error
DEFAULT_WINDOW = 6 * 3600  # only to size "recent launches" before the first sample says otherwise
KEEP_DAYS = 14
# Launch rows that will still start a cluster (bot/launcher.py): being created, or held back by the budget
# check until someone presses "launch anyway".
PLANNED_LAUNCH_STATES = ("creating", "blocked")

_alert_lock = threading.Lock()  # one state transition at a time inside this process


@dataclass(frozen=True)
class WatchOutcome:
    budget: PullBudget | None
    decision: AlertDecision | None
    posted: str | None  # WARNING / ALL_CLEAR when a notice went out
    error: str | None = None


def dockerhub_credentials(config: Config) -> Credentials | None:
    if config.dockerhub_username and config.dockerhub_token:
        return Credentials(config.dockerhub_username, config.dockerhub_token)
    return None


# ---------------------------------------------------------------- storage


def record_sample(store: Store, budget: PullBudget, account: str | None, at: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute(
            'INSERT INTO ratelimit_samples (at, account, "limit", remaining, window_seconds, source)'
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                at or utcnow(),
                account,
                budget.limit,
                budget.remaining,
                budget.window_seconds,
                "unlimited" if budget.unlimited else budget.source,
            ),
        )
        cutoff = (datetime.now(UTC) - timedelta(days=KEEP_DAYS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn.execute("DELETE FROM ratelimit_samples WHERE at < ?", (cutoff,))


def latest_sample(store: Store) -> tuple[PullBudget, str, str | None] | None:
    rows = store.query("SELECT * FROM ratelimit_samples ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    r = rows[0]
    unlimited = r["source"] == "unlimited"
    budget = PullBudget(
        limit=r["limit"],
        remaining=r["remaining"],
        window_seconds=r["window_seconds"],
        source=None if unlimited else r["source"],
        unlimited=unlimited,
    )
    return budget, r["at"], r["account"]


def samples_since(store: Store, since: datetime) -> list[tuple[datetime, int | None]]:
    rows = store.query(
        "SELECT at, remaining FROM ratelimit_samples WHERE at >= ? ORDER BY id",
        (since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),),
    )
    return [(parse_time(r["at"]), r["remaining"]) for r in rows]  # type: ignore[misc]


def get_state(store: Store, key: str) -> tuple[str | None, str | None]:
    rows = store.query("SELECT state, detail FROM alert_state WHERE key = ?", (key,))
    return (rows[0]["state"], rows[0]["detail"]) if rows else (None, None)


def set_state(store: Store, key: str, state: str, detail: str | None = None) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO alert_state (key, state, changed_at, detail) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET state = excluded.state, detail = excluded.detail,"
            " changed_at = CASE WHEN alert_state.state = excluded.state THEN alert_state.changed_at"
            " ELSE excluded.changed_at END",
            (key, state, utcnow(), detail),
        )


def launch_demand(store: Store, now: datetime, window_seconds: int | None) -> tuple[int, int]:
    """(pulls launches of the current window needed, pulls launches not started yet will need).

    Only images on Docker Hub count: a launch from a private registry spends none of this budget.
    """
    window = window_seconds or DEFAULT_WINDOW
    since = (now - timedelta(seconds=window)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    marks = ",".join("?" for _ in PLANNED_LAUNCH_STATES)
    rows = store.query(
        f"SELECT created_at, pulls_needed, image_url, cluster_id, status FROM launches"  # noqa: S608
        f" WHERE created_at >= ? OR (cluster_id IS NULL AND status IN ({marks}))",
        (since, *PLANNED_LAUNCH_STATES),
    )
    recent, planned = [], 0
    for r in rows:
        if not _on_docker_hub(r["image_url"]):
            continue
        if r["cluster_id"] is None and r["status"] in PLANNED_LAUNCH_STATES:
            planned += r["pulls_needed"] or 0
        elif r["cluster_id"] is not None:
            at = parse_time(r["created_at"])
            if at is not None:
                recent.append((at, r["pulls_needed"]))
    return window_demand(recent, now, window), planned


def _on_docker_hub(image_url: str | None) -> bool:
    if not image_url:
        return False
    try:
        return parse_ref(image_url, "image_url").on_docker_hub
    except DcsError:
        return False


# ---------------------------------------------------------------- the report people see


def budget_report(services: Services, now: datetime | None = None) -> BudgetReport:
    """The latest sample, 24 h sparkline and launch demand (no network)."""
    from handlers.blocks import ago

    store, config = services.store, services.config
    now = now or datetime.now(UTC)
    latest = latest_sample(store)
    check_state, check_error = get_state(store, CHECK_KEY)
    error = check_error if check_state == "error" else None
    if latest is None:
        return BudgetReport(budget=None, account=config.dockerhub_username, error=error)
    budget, at, account = latest
    recent, planned = launch_demand(store, now, budget.window_seconds)
    slots = bucket_samples(samples_since(store, now - timedelta(hours=24)), now)
    thresholds = _thresholds(config, recent + planned)
    warn_below = thresholds.warn_below(budget) if not budget.unlimited else 0
    # What people see is where the numbers stand now; the alert state (hysteresis) only governs notices.
    low = not budget.unlimited and budget.remaining is not None and budget.remaining < warn_below
    return BudgetReport(
        budget=budget,
        account=account,
        checked_at=at,
        checked_ago=ago(at, now),
        error=error,
        spark=sparkline(slots, high=budget.limit, gap="·") if not budget.unlimited else "",
        recent_pulls=recent,
        planned_pulls=planned,
        state=LOW if low else OK,
        warn_below=warn_below,
    )


def _thresholds(config: Config, needed: int) -> Thresholds:
    return Thresholds(percent=config.pull_warn_percent, minimum=config.pull_warn_min, needed=needed)


# ---------------------------------------------------------------- the job


def read_budget(services: Services) -> PullBudget:
    """Ask Docker Hub now and store the sample. A 429 is a sample too: nothing left."""
    config = services.config
    account = config.dockerhub_username
    try:
        budget = services.dockerhub.pull_budget(dockerhub_credentials(config))
    except PullLimitReached as exc:
        budget = PullBudget(limit=exc.limit, remaining=0, window_seconds=exc.window_seconds)
        record_sample(services.store, budget, account)
        set_state(services.store, CHECK_KEY, "error", exc.message)
        raise
    except DcsError as exc:
        set_state(services.store, CHECK_KEY, "error", services.redactor(exc.message))
        raise
    record_sample(services.store, budget, account)
    set_state(services.store, CHECK_KEY, "ok", None)
    return budget


def ratelimit_job(services: Services, *, notify: bool = True, now: datetime | None = None) -> WatchOutcome:
    """Sample the budget and post a warning or an all-clear on a crossing (never in between)."""
    from handlers.notices import pull_all_clear, pull_warning
    from jobs.rebuild import post_message

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
        previous, _ = get_state(store, ALERT_KEY)
        decision = next_alert(previous, budget, _thresholds(config, recent + planned))
        posted = None
        if decision.notify and notify and config.notify_channel:
            report = budget_report(services, now)
            msg = pull_warning(report, decision.reason) if decision.notify == WARNING else pull_all_clear(report)
            try:
                ts = post_message(services, config.notify_channel, msg)
            except DcsError as exc:
                # Keep the old state: the next check tries the notice again instead of losing it.
                log.warning("pull-budget notice not posted: %s", exc.message)
                return WatchOutcome(budget, decision, None, exc.message)
            posted = decision.notify if ts else None
        if decision.state != previous:
            set_state(store, ALERT_KEY, decision.state, decision.reason)
    if posted:
        store.audit(
            actor=None, action="ratelimit.notice", target=config.notify_channel, outcome=posted, detail=decision.reason
        )
    return WatchOutcome(budget, decision, posted if posted in (WARNING, ALL_CLEAR) else None, error)
