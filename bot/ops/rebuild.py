"""Rebuild runs: check every distinct base once (manifest HEAD, never a GET: on Docker Hub a GET is a pull),
rebuild what is due (build → doctor → push), find clusters still on an older digest, and deliver one report
per channel through the notifier. One image failing never stops the others.

`rebuild_run` is the operation behind `/dcs rebuild`, `dcs rebuild` and every scheduled rebuild: a recorded,
exclusive run (bot/ops/runs.py), so two rebuilds never overlap. The Databricks part is optional: without a
workspace, or when it cannot be reached, the reports simply have no cluster section (and say nothing false).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.clients.databricks import databricks_configured
from bot.clients.registry import classify_registry_error
from bot.domain.catalog import ImageSpec
from bot.domain.clock import ago, utcnow
from bot.domain.dockerfile import spec_hash
from bot.domain.fleet import still_on_older_digest
from bot.domain.lts import LtsProposal
from bot.domain.rebuild import (
    FAILED,
    REBUILT,
    SKIPPED,
    UNCHANGED,
    BaseCheck,
    ChannelReport,
    RebuildDecision,
    RebuildResult,
    RebuildRun,
    StaleCluster,
    base_key,
    channel_reports,
    decide,
    published_build,
)
from bot.domain.records import ImageCheck, RunOutcome
from bot.errors import BuildInProgress, DcsError, PullLimitReached
from bot.ops.budget import latest_budget
from bot.ops.build import Builder, BuildProgress, ResolvedBase
from bot.ops.diff import changes_since
from bot.ops.fleet import scan_fleet
from bot.ops.lts import check_new_lts, remember
from bot.ops.release import promoted_build
from bot.ops.runs import OnBusy, run_job
from bot.services import Services

log = logging.getLogger(__name__)

ImageProgress = Callable[[str, BuildProgress], None]


# ---------------------------------------------------------------- base checks (HEAD only)


def check_bases(services: Services, specs: Iterable[ImageSpec]) -> dict[str, BaseCheck]:
    """HEAD each distinct unpinned base once; pinned bases are their own answer. Stored in base_checks."""
    store = services.store
    previous = store.base_checks()
    checks: dict[str, BaseCheck] = {}
    for spec in specs:
        key = base_key(spec)
        if key in checks:
            continue
        ref = spec.base_ref
        if ref.digest:
            checks[key] = BaseCheck(key, ref.digest, utcnow())
            continue
        digest, error = None, None
        try:
            digest = services.registry.head_manifest(ref, services.credentials_for_ref(ref)).digest
        except DcsError as exc:
            error = services.redactor(exc.message)
            log.warning("base check %s failed: %s", key, type(exc).__name__)
        before = previous.get(key)
        check = BaseCheck(key, digest, utcnow(), error, before.error if before else None)
        checks[key] = check
        store.record_base_check(check.base_ref, check.digest, check.checked_at, check.error)
    return checks


# ---------------------------------------------------------------- running


def resolved_base(spec: ImageSpec, checks: dict[str, BaseCheck]) -> ResolvedBase | None:
    """The digest this run checked, handed to the builder: the notice then names exactly what was built,
    and the build needs no second HEAD. None when the check failed (the builder resolves it itself)."""
    check = checks.get(base_key(spec))
    if check is None or check.error or not check.digest or spec.base_ref.digest:
        return None
    return ResolvedBase(spec.base_ref, check.digest, check.digest, "registry")


Plan = tuple[dict[str, BaseCheck], list[RebuildDecision]]


def plan(
    services: Services,
    specs: list[ImageSpec],
    *,
    by_hand: bool = False,
    on_request: bool = False,
    checks: dict[str, BaseCheck] | None = None,
    now: datetime | None = None,
) -> Plan:
    """Check the bases of `specs` and decide which are due (no build)."""
    checks = checks if checks is not None else check_bases(services, specs)
    now = now or datetime.now(UTC)
    max_age = services.config.rebuild_max_age_days
    decisions = []
    for spec in specs:
        history = services.store.builds(spec.name, limit=50)
        decisions.append(
            decide(
                spec,
                current_hash=spec_hash(spec),
                published=published_build(history),
                latest=history[0] if history else None,
                check=checks.get(base_key(spec)),
                now=now,
                max_age_days=max_age,
                by_hand=by_hand,
                on_request=on_request,
            )
        )
    return checks, decisions


def run_rebuilds(
    services: Services,
    names: list[str] | None = None,
    *,
    by_hand: bool = False,
    on_request: bool = False,
    source: str = "schedule",
    requester: str | None = None,
    progress: Callable[[str, BuildProgress], None] | None = None,
) -> RebuildRun:
    """Check bases, rebuild what is due (build → doctor → push), and report every image's outcome.

    `names=None` covers the whole catalog. `by_hand` rebuilds the named images even if nothing moved;
    `on_request` only when they moved (or were never built): bot/domain/rebuild.py `decide`.
    """
    store = services.store
    specs = [store.get_image(n) for n in names] if names is not None else store.list_images()
    run = RebuildRun(started_at=utcnow())
    before = services.registry.counts["HEAD"]
    run.checks, decisions = plan(services, specs, by_hand=by_hand, on_request=on_request)
    run.head_requests = services.registry.counts["HEAD"] - before
    builder = Builder(services)
    by_name = {s.name: s for s in specs}
    for decision in decisions:
        base = resolved_base(by_name[decision.image], run.checks)
        run.results.append(_rebuild_one(builder, decision, base, source, requester, progress))
    run.finished_at = utcnow()
    store.record_image_checks(_image_check(result, run, source) for result in run.results)
    store.audit(
        actor=requester,
        action="rebuild-run",
        target=",".join(names) if names else "catalog",
        outcome="failed" if run.failed else "succeeded",
        detail=f"{len(run.by_status(REBUILT))} rebuilt, {len(run.by_status(FAILED))} failed",
    )
    return run


def _rebuild_one(
    builder: Builder,
    decision: RebuildDecision,
    base: ResolvedBase | None,
    source: str,
    requester: str | None,
    progress: Callable[[str, BuildProgress], None] | None,
) -> RebuildResult:
    if not decision.due:
        return RebuildResult(decision.image, UNCHANGED, decision)
    before = promoted_build(builder.services, decision.image)
    try:
        build = builder.enqueue(decision.image, push=True, force=False, requester=requester, source=source)
        outcome = builder.run(
            build.id, (lambda p: progress(decision.image, p)) if progress else _ignore, base=base, announce=False
        )
    except BuildInProgress as exc:  # someone is building it right now: theirs wins, the next run re-checks
        return RebuildResult(
            decision.image,
            SKIPPED,
            decision,
            None,
            f"build #{exc.build_id} of it is already in progress; the next run checks again",
        )
    except DcsError as exc:  # NotFound (removed meanwhile) and the like: report, go on with the others
        return RebuildResult(decision.image, FAILED, decision, None, builder.services.redactor(exc.message))
    except Exception:
        log.exception("rebuild of %s crashed", decision.image)
        return RebuildResult(
            decision.image, FAILED, decision, None, "internal error during the rebuild; see the bot's log"
        )
    final = outcome.build
    if outcome.ok and final is not None and final.status == "succeeded":
        new = decision.new_base_digest or final.base_digest
        done = RebuildDecision(decision.image, True, decision.reasons, decision.old_base_digest, new)
        release = builder.store.find_release(final.id)
        previous = before.id if before else None
        changes = changes_since(builder.services, previous, final.id)
        return RebuildResult(
            decision.image, REBUILT, done, final, release=release, changes=changes, previous_build=previous
        )
    error = final.error if final is not None and final.error else "the build failed"
    return RebuildResult(decision.image, FAILED, decision, final, error)


def _image_check(result: RebuildResult, run: RebuildRun, source: str) -> ImageCheck:
    decision = result.decision
    if result.status in (REBUILT, UNCHANGED):
        note = ", ".join(decision.reasons) if result.status == REBUILT else decision.note
    else:
        note = result.error or decision.note
    return ImageCheck(result.image, run.finished_at or utcnow(), result.status, note or None, source)


def _ignore(_: BuildProgress) -> None:
    return None


# ---------------------------------------------------------------- the whole run, with its reports


@dataclass
class RebuildSummary:
    run: RebuildRun
    reports: dict[str, ChannelReport] = field(default_factory=dict)
    posted: list[str] = field(default_factory=list)  # channels a report was delivered to
    stale: list[StaleCluster] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # side parts that did not work (Databricks, Slack)
    proposals: list[LtsProposal] = field(default_factory=list)  # newer LTS tags (made once each)


def rebuild_job(
    services: Services,
    names: list[str] | None = None,
    *,
    by_hand: bool = False,
    on_request: bool = False,
    source: str = "schedule",
    requester: str | None = None,
    notify: bool = True,
    progress: ImageProgress | None = None,
) -> RebuildSummary:
    """One rebuild run end to end (not recorded; see `rebuild_run`). Never raises for one image's failure."""
    run = run_rebuilds(
        services, names, by_hand=by_hand, on_request=on_request, source=source, requester=requester, progress=progress
    )
    summary = RebuildSummary(run)
    specs = {s.name: s for s in services.store.list_images()}
    summary.stale = _stale_clusters(services, run, specs, summary.problems)
    summary.reports = channel_reports(run, specs, services.config.notify_channel, summary.stale)
    if source != "schedule":
        for report in summary.reports.values():
            report.requested_by = requester or source
    if names is None:  # the check over the whole catalog also looks for newer LTS tags of the bases
        summary.proposals = check_new_lts(services, specs.values())
        for proposal in summary.proposals:
            channel = specs[proposal.image].notify_channel or services.config.notify_channel
            if channel:
                summary.reports.setdefault(channel, ChannelReport(channel)).lts_proposals.append(proposal)
    _add_pull_budget(services, summary.reports)
    if notify:
        for channel, report in summary.reports.items():
            try:
                if services.notifier.rebuild_report(report):
                    summary.posted.append(channel)
            except DcsError as exc:
                summary.problems.append(f"notice to {channel} not posted: {exc.message}")
                log.warning("rebuild notice to %s not posted: %s", channel, exc.message)
        remember(services, [p for c in summary.posted for p in summary.reports[c].lts_proposals])
    return summary


def rebuild_run(
    services: Services,
    job_id: str,
    names: list[str] | None,
    *,
    by_hand: bool = False,
    on_request: bool = False,
    source: str = "schedule",
    requester: str | None = None,
    busy: OnBusy = "skip",
    notify: bool = True,
    progress: ImageProgress | None = None,
) -> RebuildSummary | None:
    """A recorded, exclusive rebuild run; the summary, or None when skipped because another run is busy."""
    result: dict[str, RebuildSummary] = {}

    def work() -> tuple[RunOutcome, str]:
        summary = rebuild_job(
            services,
            names,
            by_hand=by_hand,
            on_request=on_request,
            source=source,
            requester=requester,
            notify=notify,
            progress=progress,
        )
        result["summary"] = summary
        run = summary.run
        counts = {s: len(run.by_status(s)) for s in ("rebuilt", "failed", "skipped", "unchanged")}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no images"
        if summary.problems:
            text += "; " + "; ".join(summary.problems)
        return ("failed" if run.failed else "succeeded"), text

    run_job(services, job_id, work, detail={"names": names}, busy=busy)
    return result.get("summary")


def _add_pull_budget(services: Services, reports: dict[str, ChannelReport]) -> None:
    """A failure that was a pull limit gets the numbers of the last budget reading next to it."""
    limited = [
        r for r in reports.values() if any(classify_registry_error(f.error or "") is PullLimitReached for f in r.failed)
    ]
    if not limited:
        return
    latest = latest_budget(services.store)
    if latest is None:
        return
    text = f"{latest.budget.describe()} ({ago(latest.at, datetime.now(UTC))})"
    for report in limited:
        report.pull_budget = text


def _stale_clusters(
    services: Services, run: RebuildRun, specs: dict[str, ImageSpec], problems: list[str]
) -> list[StaleCluster]:
    """Everything in every workspace still on an older digest of a rebuilt image (the fleet inventory: clusters
    made by anyone, jobs, pools, policies), not only the clusters the bot launched."""
    rebuilt = {r.image: r for r in run.by_status(REBUILT) if r.pushed_digest and r.promoted}
    if not rebuilt or not databricks_configured(services.config):
        return []
    report = scan_fleet(services, images=list(rebuilt))
    for workspace, error in report.errors.items():
        problems.append(f"workspace {workspace} not checked for older digests: {error}")
        log.warning("stale check of workspace %s skipped: %s", workspace, error)
    new = {name: r.pushed_digest for name, r in rebuilt.items() if r.pushed_digest}
    moving = {name: spec.tag for name, spec in specs.items()}
    tags: dict[tuple[str, str], str] = {}
    for name in rebuilt:
        for build in services.store.builds(name, status="succeeded", limit=20):
            for push in services.store.pushes(build.id):
                if push.digest:
                    tags.setdefault((name, push.tag), push.digest)
    return still_on_older_digest(report.items, new, moving, tags)
