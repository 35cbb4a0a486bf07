"""The rebuild job: check bases, rebuild what is due, find clusters on older digests, post one notice per channel.

Called by the scheduler (jobs/scheduler.py), by `/dcs rebuild` and by `dcs rebuild`. The Databricks part
is optional: without a workspace configured, or when it cannot be reached, the notice simply has no
cluster section (and says nothing false).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.builder import BuildProgress
from bot.clients.registry import classify_registry_error
from bot.errors import DcsError, PullLimitReached
from bot.rebuild import (
    REBUILT,
    TAG_BUILD,
    TAG_DIGEST,
    TAG_IMAGE,
    ChannelReport,
    RebuildRun,
    StaleCluster,
    channel_reports,
    find_stale_clusters,
    run_rebuilds,
)
from bot.services import Services
from handlers.notices import rebuild_notice

log = logging.getLogger(__name__)
_client_lock = threading.Lock()


@dataclass
class RebuildSummary:
    run: RebuildRun
    reports: dict[str, ChannelReport] = field(default_factory=dict)
    posted: list[str] = field(default_factory=list)  # channels a notice went to
    stale: list[StaleCluster] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # side parts that did not work (Databricks, Slack)


def rebuild_job(
    services: Services,
    names: list[str] | None = None,
    *,
    by_hand: bool = False,
    source: str = "schedule",
    requester: str | None = None,
    notify: bool = True,
    progress: Callable[[str, BuildProgress], None] | None = None,
) -> RebuildSummary:
    """One rebuild run end to end. Never raises for one image's failure; the summary says what happened."""
    run = run_rebuilds(services, names, by_hand=by_hand, source=source, requester=requester, progress=progress)
    summary = RebuildSummary(run)
    specs = {s.name: s for s in services.store.list_images()}
    summary.stale = _stale_clusters(services, run, specs, summary.problems)
    summary.reports = channel_reports(run, specs, services.config.notify_channel, summary.stale)
    _add_pull_budget(services, summary.reports)
    if notify:
        for channel, report in summary.reports.items():
            try:
                post_message(services, channel, rebuild_notice(report))
                summary.posted.append(channel)
            except DcsError as exc:
                summary.problems.append(f"notice to {channel} not posted: {exc.message}")
                log.warning("rebuild notice to %s not posted: %s", channel, exc.message)
    return summary


def _add_pull_budget(services: Services, reports: dict[str, ChannelReport]) -> None:
    """A failure that was a pull limit gets the numbers of the last budget reading next to it."""
    limited = [
        r for r in reports.values() if any(classify_registry_error(f.error or "") is PullLimitReached for f in r.failed)
    ]
    if not limited:
        return
    from handlers.blocks import ago
    from jobs.ratelimit import latest_sample

    latest = latest_sample(services.store)
    if latest is None:
        return
    budget, at, _account = latest
    text = f"{budget.describe()} ({ago(at, datetime.now(UTC))})"
    for report in limited:
        report.pull_budget = text


# ---------------------------------------------------------------- Slack


def post_message(services: Services, channel: str, msg: dict[str, Any]) -> str | None:
    """chat.postMessage with the bot's token; returns the message ts. Raises DcsError on failure."""
    if not services.config.slack_bot_token:
        log.info("no SLACK_BOT_TOKEN: notice for %s not posted", channel)
        return None
    from bot.slack_client import call, make_web_client

    with _client_lock:  # one client per Services, created once
        client = services.extras.get("notices_web_client")
        if client is None:
            client = make_web_client(services.config)
            services.extras["notices_web_client"] = client
    answer = call(
        client,
        "chat.postMessage",
        channel=channel,
        text=msg["text"],
        blocks=msg["blocks"],
        unfurl_links=False,
        unfurl_media=False,
    )
    return answer.get("ts")


# ---------------------------------------------------------------- Databricks


def databricks_client(services: Services) -> Any | None:
    """The workspace client when Databricks is configured, else None (the cluster section is left out)."""
    config = services.config
    if not (config.databricks_host or config.environ.get("DATABRICKS_HOST")):
        return None
    return services.databricks


def _cluster_tags() -> tuple[str, str, str]:
    """The tag names the launcher sets; ours when the launcher is not installed."""
    try:
        from bot import clusterspec
    except ImportError:
        return TAG_IMAGE, TAG_BUILD, TAG_DIGEST
    return (
        getattr(clusterspec, "TAG_IMAGE", TAG_IMAGE),
        getattr(clusterspec, "TAG_BUILD", TAG_BUILD),
        getattr(clusterspec, "TAG_DIGEST", TAG_DIGEST),
    )


def list_clusters(client: Any) -> list[dict]:
    """clusters/list as plain dicts (cluster_id, cluster_name, state, custom_tags, docker_image)."""
    lister = getattr(client, "list_clusters", None)
    if callable(lister):
        return [c if isinstance(c, dict) else c.as_dict() for c in lister()]
    # The client's bounded, translated call path (time budget, error translation) around the SDK list.
    return client._call("list clusters", lambda w: [c.as_dict() for c in w.clusters.list()])  # noqa: SLF001


def _stale_clusters(services: Services, run: RebuildRun, specs: dict, problems: list[str]) -> list[StaleCluster]:
    rebuilt = {r.image: r for r in run.by_status(REBUILT) if r.pushed_digest}
    if not rebuilt:
        return []
    client = databricks_client(services)
    if client is None:
        return []
    try:
        clusters = list_clusters(client)
    except DcsError as exc:
        problems.append(f"clusters not checked: {exc.message}")
        log.warning("stale-cluster check skipped: %s", exc.message)
        return []
    store = services.store
    marks = ",".join("?" for _ in rebuilt)
    digests = {
        r["id"]: r["pushed_digest"]
        for r in store.query(
            f"SELECT id, pushed_digest FROM builds WHERE image IN ({marks}) AND pushed_digest IS NOT NULL",  # noqa: S608
            tuple(rebuilt),
        )
    }
    launch_digests = {
        r["cluster_id"]: digests[r["build_id"]]
        for r in store.query(
            f"SELECT cluster_id, build_id FROM launches WHERE image IN ({marks}) AND cluster_id IS NOT NULL",  # noqa: S608
            tuple(rebuilt),
        )
        if r["build_id"] in digests
    }
    moving = {name: f"{spec.repository}:{spec.tag}" for name, spec in specs.items()}
    return find_stale_clusters(clusters, rebuilt, digests, moving, launch_digests, tags=_cluster_tags())
