"""Docker Hub pull-budget maths: header parsing, pulls a launch needs, warning hysteresis, sparklines.

Pure: no I/O. Facts (../shared/reference/registries.md): the registry reports the budget in
`ratelimit-limit` / `ratelimit-remaining` as `<count>;w=<window seconds>`, possibly several
comma-separated policies; no such headers means the account is unlimited. The numbers are never
hard-coded here: Docker has changed them before and announced changes it never enforced.
Every Databricks node start is one pull of the cluster's image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.errors import InvalidInput

LIMIT_HEADER = "ratelimit-limit"
REMAINING_HEADER = "ratelimit-remaining"
SOURCE_HEADER = "docker-ratelimit-source"

OK, LOW = "ok", "low"
WARNING, ALL_CLEAR = "warning", "all_clear"

_POLICY = re.compile(r"^\s*(\d+)\s*(?:;(.*))?$")
_SPARKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class PullBudget:
    """What the registry says is left. `unlimited` when it sent no rate-limit headers at all."""

    limit: int | None
    remaining: int | None
    window_seconds: int | None
    source: str | None = None
    unlimited: bool = False

    @property
    def percent_remaining(self) -> float | None:
        if self.unlimited or not self.limit or self.remaining is None:
            return None
        return 100.0 * self.remaining / self.limit

    @property
    def window_label(self) -> str:
        return format_window(self.window_seconds)

    def describe(self) -> str:
        if self.unlimited:
            return "unlimited (the registry sent no rate-limit headers)"
        remaining = "?" if self.remaining is None else str(self.remaining)
        limit = "?" if self.limit is None else str(self.limit)
        return f"{remaining}/{limit} pulls left per {self.window_label}"


def unlimited_budget(source: str | None = None) -> PullBudget:
    return PullBudget(limit=None, remaining=None, window_seconds=None, source=source, unlimited=True)


def format_window(seconds: int | None) -> str:
    if not seconds:
        return "window unknown"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


# ---------------------------------------------------------------- headers


def _policies(value: str | None) -> list[tuple[int, int | None]]:
    """`100;w=21600, 2500;w=60` → [(100, 21600), (2500, 60)]. Unreadable parts are skipped."""
    found: list[tuple[int, int | None]] = []
    for part in (value or "").split(","):
        match = _POLICY.match(part)
        if not match:
            continue
        window = None
        for param in (match.group(2) or "").split(";"):
            key, _, raw = param.strip().partition("=")
            if key.strip().lower() == "w" and raw.strip().isdigit():
                window = int(raw.strip())
        found.append((int(match.group(1)), window))
    return found


def parse_ratelimit_headers(headers: Mapping[str, str]) -> PullBudget:
    """The budget a registry response announces; the tightest policy when there are several.

    Tightest = the fewest pulls remaining (ties: the smaller share of its limit). Raises ValueError when
    the headers are present but none of their policies can be read.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    source = lower.get(SOURCE_HEADER) or None
    raw_limit, raw_remaining = lower.get(LIMIT_HEADER), lower.get(REMAINING_HEADER)
    if raw_limit is None and raw_remaining is None:
        return unlimited_budget(source)
    limits, remainings = _policies(raw_limit), _policies(raw_remaining)
    if not limits and not remainings:
        raise ValueError(f"unreadable rate-limit headers: limit={raw_limit!r} remaining={raw_remaining!r}")
    if not remainings:
        # A limit without a remaining count: report the smallest limit, remaining unknown.
        count, window = min(limits, key=lambda p: p[0])
        return PullBudget(limit=count, remaining=None, window_seconds=window, source=source)

    def limit_for(window: int | None) -> int | None:
        same = [count for count, w in limits if w == window]
        if same:
            return min(same)
        return limits[0][0] if len(limits) == 1 else None

    def tightness(policy: tuple[int, int | None]) -> tuple[int, float]:
        count, window = policy
        limit = limit_for(window)
        return count, (count / limit if limit else 1.0)

    remaining, window = min(remainings, key=tightness)
    limit = limit_for(window)
    if window is None and limit is not None:
        window = next((w for c, w in limits if c == limit and w is not None), None)
    return PullBudget(limit=limit, remaining=remaining, window_seconds=window, source=source)


# ---------------------------------------------------------------- demand


def pulls_needed(
    num_workers: int | None = None, min_workers: int | None = None, max_workers: int | None = None
) -> tuple[int, int]:
    """(pulls at launch, pulls at most) for one cluster: every node (driver + workers) pulls once.

    Fixed size: workers + 1 both ways. Autoscaling: min_workers + 1 at launch, max_workers + 1 when it
    scales all the way up. Nothing given: a single-node cluster, one pull.
    """
    given = (("num_workers", num_workers), ("min_workers", min_workers), ("max_workers", max_workers))
    for field, value in given:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InvalidInput(field, value, "is not a whole number of workers", "Use 0 or more.")
    autoscale = min_workers is not None or max_workers is not None
    if autoscale and num_workers is not None:
        raise InvalidInput(
            "num_workers",
            num_workers,
            "was given together with autoscaling",
            "Give either num_workers or min_workers/max_workers, not both.",
        )
    if autoscale:
        low = min_workers if min_workers is not None else 0
        high = max_workers if max_workers is not None else low
        if high < low:
            raise InvalidInput(
                "max_workers", max_workers, f"is below min_workers ({low})", "Set max_workers to at least min_workers."
            )
        return low + 1, high + 1
    nodes = (num_workers or 0) + 1
    return nodes, nodes


def window_demand(launches: Iterable[tuple[datetime, int | None]], now: datetime, window_seconds: int | None) -> int:
    """Pulls that launches inside the current window need (recent ones, and planned ones in the future)."""
    if not window_seconds:
        return sum(p or 0 for _, p in launches)
    start = now - timedelta(seconds=window_seconds)
    return sum(p or 0 for at, p in launches if at >= start)


# ---------------------------------------------------------------- hysteresis


@dataclass(frozen=True)
class Thresholds:
    """Warn below any of: `percent` of the limit, `minimum` pulls, `needed` by the window's launches."""

    percent: int = 20
    minimum: int = 10
    needed: int = 0
    # Recovery needs this share of the limit above the warning line, so a budget hovering at the line
    # does not flap between warning and all-clear.
    recovery_percent: int = 5

    def warn_below(self, budget: PullBudget) -> int:
        by_percent = math.ceil((budget.limit or 0) * self.percent / 100)
        return max(by_percent, self.minimum, self.needed)

    def clear_at(self, budget: PullBudget) -> int:
        margin = max(1, math.ceil((budget.limit or 0) * self.recovery_percent / 100))
        return self.warn_below(budget) + margin


@dataclass(frozen=True)
class AlertDecision:
    state: str  # OK or LOW, to store
    notify: str | None  # WARNING, ALL_CLEAR or None
    threshold: int  # the warning line that applied
    reason: str


def next_alert(previous: str | None, budget: PullBudget, thresholds: Thresholds) -> AlertDecision:
    """One step of the warning state machine: one warning per crossing, one all-clear on recovery."""
    was_low = previous == LOW
    if budget.unlimited:
        state = OK
        reason = "the registry reports no pull limit"
        return AlertDecision(state, ALL_CLEAR if was_low else None, 0, reason)
    if budget.remaining is None:
        unknown = "the registry did not say how many pulls remain"
        return AlertDecision(LOW if was_low else OK, None, 0, unknown)
    warn_below = thresholds.warn_below(budget)
    if not was_low:
        if budget.remaining < warn_below:
            return AlertDecision(LOW, WARNING, warn_below, _low_reason(budget, thresholds))
        return AlertDecision(OK, None, warn_below, "enough pulls left")
    if budget.remaining >= thresholds.clear_at(budget):
        return AlertDecision(OK, ALL_CLEAR, warn_below, f"back to {budget.remaining} pulls")
    return AlertDecision(LOW, None, warn_below, _low_reason(budget, thresholds))


def _low_reason(budget: PullBudget, thresholds: Thresholds) -> str:
    remaining = budget.remaining or 0
    reasons = []
    if thresholds.needed and remaining < thresholds.needed:
        reasons.append(f"launches in this window need {thresholds.needed}")
    by_percent = math.ceil((budget.limit or 0) * thresholds.percent / 100)
    if remaining < by_percent:
        reasons.append(f"below {thresholds.percent}% of {budget.limit}")
    if remaining < thresholds.minimum:
        reasons.append(f"below {thresholds.minimum}")
    return f"{remaining} pulls left ({'; '.join(reasons) or 'below the warning line'})"


@dataclass(frozen=True)
class BudgetReport:
    """Everything a person sees about the pull budget (`/dcs ratelimit`, App Home, `dcs ratelimit`)."""

    budget: PullBudget | None  # the latest sample, None before the first check
    account: str | None = None  # DOCKERHUB_USERNAME, None when anonymous
    checked_at: str | None = None
    checked_ago: str | None = None
    error: str | None = None  # the last check's failure, if it failed
    spark: str = ""  # 24 h of samples
    recent_pulls: int = 0  # pulls launches in the current window needed
    planned_pulls: int = 0  # pulls launches waiting to start will need
    state: str = OK
    warn_below: int = 0


# ---------------------------------------------------------------- sparkline


def bucket_samples(
    samples: Iterable[tuple[datetime, int | None]], now: datetime, *, hours: int = 24, buckets: int = 24
) -> list[int | None]:
    """The lowest remaining count of each time slot over the last `hours` (None: no sample)."""
    span = timedelta(hours=hours)
    start = now - span
    slots: list[int | None] = [None] * buckets
    for at, remaining in samples:
        if remaining is None or at < start or at > now:
            continue
        index = min(buckets - 1, int((at - start) / span * buckets))
        current = slots[index]
        slots[index] = remaining if current is None else min(current, remaining)
    return slots


def sparkline(values: Sequence[int | None], high: int | None = None, gap: str = " ") -> str:
    """`▁▂▃▄▅▆▇█` from 0 to `high` (default: the largest value); a slot without samples is `gap`."""
    known = [v for v in values if v is not None]
    if not known:
        return gap * len(values)
    top = high if high else max(known)
    out = []
    for value in values:
        if value is None:
            out.append(gap)
            continue
        share = 0.0 if top <= 0 else min(max(value / top, 0.0), 1.0)
        out.append(_SPARKS[min(len(_SPARKS) - 1, int(share * (len(_SPARKS) - 1) + 0.5))])
    return "".join(out)
