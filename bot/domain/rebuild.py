"""Rebuild decisions, pure: which images are due, clusters still on an older digest, one report per channel.

Databricks patches its `-LTS` images under the same tag, so a moved base digest means fixes to pick up.
An image is due when its base moved since its last published build, its spec changed, or it is older than
the optional maximum age. The checks and builds themselves are bot/ops/rebuild.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.catalog import ImageSpec
from bot.domain.clock import parse_time
from bot.domain.inventory_diff import InventoryDiff
from bot.domain.lts import LtsProposal
from bot.domain.records import Build, Release

REBUILT, FAILED, UNCHANGED, SKIPPED = "rebuilt", "failed", "unchanged", "skipped"


@dataclass(frozen=True)
class BaseCheck:
    """The answer to one manifest HEAD of a base (or the reason there is none)."""

    base_ref: str
    digest: str | None
    checked_at: str
    error: str | None = None
    previous_error: str | None = None  # the error of the check before, to report only new problems

    @property
    def new_error(self) -> bool:
        return bool(self.error) and self.error != self.previous_error


@dataclass(frozen=True)
class RebuildDecision:
    image: str
    due: bool
    reasons: tuple[str, ...] = ()
    old_base_digest: str | None = None
    new_base_digest: str | None = None
    note: str = ""  # why it is not due


@dataclass
class RebuildResult:
    image: str
    status: str  # REBUILT, FAILED, UNCHANGED or SKIPPED
    decision: RebuildDecision
    build: Build | None = None
    error: str | None = None
    release: Release | None = None  # the build's release-gate state (None: not pushed, or before the gate)
    changes: InventoryDiff | None = None  # what changed inside against the build promoted before
    previous_build: int | None = None  # that build

    @property
    def promoted(self) -> bool:
        """The moving tag points to this build (its policy passed, or a history from before the gate)."""
        return self.release is None or self.release.status == "promoted"

    @property
    def pushed_digest(self) -> str | None:
        return self.build.pushed_digest if self.build else None

    @property
    def immutable_tag(self) -> str | None:
        return self.build.tags[0] if self.build and self.build.tags else None


@dataclass
class RebuildRun:
    started_at: str
    finished_at: str | None = None
    checks: dict[str, BaseCheck] = field(default_factory=dict)
    results: list[RebuildResult] = field(default_factory=list)
    head_requests: int = 0

    def by_status(self, status: str) -> list[RebuildResult]:
        return [r for r in self.results if r.status == status]

    @property
    def failed(self) -> bool:
        return any(r.status == FAILED for r in self.results)


# ---------------------------------------------------------------- pure decisions


def base_key(spec: ImageSpec) -> str:
    """The normalised base reference: `ubuntu` and `docker.io/library/ubuntu:latest` are one base."""
    ref = spec.base_ref
    if not ref.tag and not ref.digest:
        ref = ref.with_tag("latest")
    return f"{ref.domain}/{ref.path}:{ref.tag}" + (f"@{ref.digest}" if ref.digest else "")


def published_build(builds: Iterable[Build]) -> Build | None:
    """The newest successful build that was pushed, else the newest successful one (builds newest first)."""
    succeeded = [b for b in builds if b.status == "succeeded"]
    return next((b for b in succeeded if b.pushed_digest), succeeded[0] if succeeded else None)


def decide(
    spec: ImageSpec,
    *,
    current_hash: str,
    published: Build | None,
    latest: Build | None,
    check: BaseCheck | None,
    now: datetime,
    max_age_days: int | None,
    by_hand: bool = False,
    on_request: bool = False,
) -> RebuildDecision:
    """Is `spec` due for a rebuild? `published` is its last successful build, `latest` its last of any kind.

    `by_hand` (an admin's `force`, `dcs rebuild NAME`): always. `on_request` (a builder's `/dcs rebuild NAME`):
    when never built, or when the base or spec moved (or it is too old), also right after a failed attempt; an
    unchanged image is not rebuilt. Otherwise (schedules) the same, but never-built images are left alone and
    inputs that already failed are not retried.
    """
    old = published.base_digest if published else None
    new = check.digest if check and not check.error else None
    if by_hand:
        return RebuildDecision(spec.name, True, ("requested by hand",), old, new)
    if published is None:
        if on_request:
            return RebuildDecision(spec.name, True, ("never built",), None, new)
        return RebuildDecision(
            spec.name, False, (), None, new, note="never built: build it once by hand (`dcs rebuild NAME`)"
        )
    reasons: list[str] = []
    if new and new != old:
        reasons.append("base moved")
    if published.spec_hash != current_hash:
        reasons.append("spec changed")
    finished = parse_time(published.finished_at)
    if max_age_days and finished and now - finished > timedelta(days=max_age_days):
        reasons.append(f"older than {max_age_days} days")
    if not reasons:
        if check and check.error:
            return RebuildDecision(spec.name, False, (), old, None, note=f"base not checked: {check.error}")
        return RebuildDecision(spec.name, False, (), old, new, note="up to date")
    if (
        not on_request
        and latest is not None
        and latest.id != published.id
        and latest.status == "failed"
        and latest.spec_hash == current_hash
        and (new is None or latest.base_digest == new)
    ):
        # The same inputs already failed: retrying every interval would only repeat the failure notice.
        return RebuildDecision(
            spec.name,
            False,
            tuple(reasons),
            old,
            new,
            note=f"build #{latest.id} already failed with these inputs; fix it and run `dcs rebuild {spec.name}`",
        )
    return RebuildDecision(spec.name, True, tuple(reasons), old, new)


# ---------------------------------------------------------------- clusters still on an older digest

LIVE_STATES = frozenset({"PENDING", "RUNNING", "RESTARTING", "RESIZING"})


@dataclass(frozen=True)
class StaleCluster:
    cluster_id: str
    cluster_name: str
    image: str
    state: str
    running_digest: str | None  # None: the cluster's tags did not say
    image_url: str
    new_digest: str
    moving: bool  # launched on the moving tag: a restart picks up the new digest
    kind: str = "cluster"  # or job, pool, policy (the fleet inventory, bot/domain/fleet.py)
    workspace: str | None = None


# ---------------------------------------------------------------- one notice per channel


@dataclass
class ChannelReport:
    channel: str
    rebuilt: list[RebuildResult] = field(default_factory=list)
    failed: list[RebuildResult] = field(default_factory=list)
    stale: list[StaleCluster] = field(default_factory=list)
    unpatched: list[tuple[str, str]] = field(default_factory=list)  # (image, base) on non-LTS Databricks tags
    base_errors: list[tuple[BaseCheck, list[str]]] = field(default_factory=list)  # new check failures, images
    repositories: dict[str, str] = field(default_factory=dict)  # image → repository:moving-tag
    pull_budget: str | None = None  # the last Docker Hub budget reading, when a failure was a pull limit
    requested_by: str | None = None  # who ran it by hand (/dcs rebuild, dcs rebuild); None for the schedule
    lts_proposals: list[LtsProposal] = field(default_factory=list)  # newer LTS tags of the bases (bot/ops/lts.py)

    @property
    def worth_posting(self) -> bool:
        return bool(self.rebuilt or self.failed or self.base_errors or self.lts_proposals)


def channel_reports(
    run: RebuildRun, specs: dict[str, ImageSpec], default_channel: str | None, stale: Iterable[StaleCluster] = ()
) -> dict[str, ChannelReport]:
    """Group a run by notify channel (the image's, else the default). Channels with nothing to say are left out."""
    reports: dict[str, ChannelReport] = {}

    def report_for(image: str) -> ChannelReport | None:
        spec = specs.get(image)
        channel = (spec.notify_channel if spec else None) or default_channel
        if not channel:
            return None
        report = reports.setdefault(channel, ChannelReport(channel))
        if spec is not None:
            report.repositories[image] = f"{spec.repository}:{spec.tag}"
        return report

    for result in run.results:
        if result.status not in (REBUILT, FAILED):
            continue
        report = report_for(result.image)
        if report is None:
            continue
        (report.rebuilt if result.status == REBUILT else report.failed).append(result)
        spec = specs.get(result.image)
        if spec is not None and spec.base_info.is_databricks and not spec.base_info.lts:
            report.unpatched.append((spec.name, spec.base))
    for cluster in stale:
        report = report_for(cluster.image)
        if report is not None:
            report.stale.append(cluster)
    for check in run.checks.values():
        if not check.new_error:
            continue
        on_base = [s.name for s in specs.values() if base_key(s) == check.base_ref]
        by_channel: dict[str, list[str]] = {}
        for name in on_base:
            spec = specs[name]
            channel = spec.notify_channel or default_channel
            if channel:
                by_channel.setdefault(channel, []).append(name)
        for channel, names in by_channel.items():
            reports.setdefault(channel, ChannelReport(channel)).base_errors.append((check, names))
    return {c: r for c, r in reports.items() if r.worth_posting}
