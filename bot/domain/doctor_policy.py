"""An image's doctor policy (the catalog entry's `doctor` table), pure:

    doctor = { waive = { os = "Debian approved by the platform team" }, size_budget_mb = 6000 }

- `waive`: check name → the reason the team accepts that row failing or warning. A waived row shows as
  "waived" with its reason in the doctor table and the build message, and no longer blocks the push.
  `platform` and `shell` cannot be waived: Databricks cannot run such an image at all.
- `size_budget_mb`: the image size above which the doctor warns (default DCS_DOCTOR_SIZE_BUDGET_MB).

Forcing a build (`--force`) is something else: it rebuilds an unchanged image, it never waives a check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.domain.checks import FAIL, WAIVED, WARN, DoctorReport
from bot.errors import InvalidInput

# Every row the doctor can show (tests/unit/test_doctor_policy.py checks the doctor makes no other).
CHECK_NAMES = (
    "platform", "shell", "bash", "iproute2", "coreutils", "procps", "sudo", "acl", "java", "python", "os",
    "runtime", "os_version", "python_version", "java_version", "notebook", "dependencies", "imports",
    "sudo_works", "pyspark_python", "locale", "fuse", "libraries_user", "init_scripts", "size", "gpu",
    "entrypoint",
)  # fmt: skip
NOT_WAIVABLE = ("platform", "shell")
POLICY_FIELDS = ("waive", "size_budget_mb")
MAX_REASON = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class DoctorPolicy:
    waive: tuple[tuple[str, str], ...] = ()  # (check name, reason), sorted
    size_budget_mb: int | None = None

    @property
    def empty(self) -> bool:
        return not self.waive and self.size_budget_mb is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.waive:
            out["waive"] = dict(self.waive)
        if self.size_budget_mb is not None:
            out["size_budget_mb"] = self.size_budget_mb
        return out


NO_POLICY = DoctorPolicy()


def policy_from_dict(data: object, field_prefix: str = "doctor.") -> DoctorPolicy:
    """Validate an image's `doctor` table; raises the first problem (the catalog collects them per field)."""
    if not isinstance(data, Mapping):
        raise InvalidInput(
            field_prefix.rstrip("."),
            data,
            "is not a table",
            'Write doctor = { waive = { os = "why the team accepts it" } }.',
        )
    for key in data:
        if key not in POLICY_FIELDS:
            raise InvalidInput(
                f"{field_prefix}{key}", key, "is not a doctor setting", f"Use {' or '.join(POLICY_FIELDS)}."
            )
    waive_in = data.get("waive", {})
    if not isinstance(waive_in, Mapping):
        raise InvalidInput(
            f"{field_prefix}waive", waive_in, "is not a table", 'Write waive = { os = "why the team accepts it" }.'
        )
    waive: list[tuple[str, str]] = []
    for name, reason in waive_in.items():
        field = f"{field_prefix}waive.{name}"
        if name in NOT_WAIVABLE:
            raise InvalidInput(field, reason, "cannot be waived: Databricks cannot run such an image", "Fix the image.")
        if name not in CHECK_NAMES:
            raise InvalidInput(
                field,
                reason,
                "is not a doctor check",
                f"Waive one of: {', '.join(sorted(set(CHECK_NAMES) - set(NOT_WAIVABLE)))}.",
            )
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON or _CONTROL.search(reason):
            raise InvalidInput(
                field,
                reason,
                f"is not a reason (one line of text, at most {MAX_REASON} characters)",
                f'Say why the team accepts it, e.g. {name} = "approved by the platform team, ticket PLAT-12".',
            )
        waive.append((name, reason.strip()))
    budget = data.get("size_budget_mb")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= 1_000_000):
        raise InvalidInput(
            f"{field_prefix}size_budget_mb", budget, "is not a whole number of MB (1 to 1000000)", "E.g. 6000."
        )
    return DoctorPolicy(tuple(sorted(waive)), budget)


def apply_waivers(report: DoctorReport, policy: DoctorPolicy) -> DoctorReport:
    """The report with each waived failing or warning row marked `waived` (its reason kept); others as they were."""
    reasons = dict(policy.waive)
    if not reasons:
        return report
    checks = tuple(
        replace(c, status=WAIVED, waiver=reasons[c.name]) if c.name in reasons and c.status in (FAIL, WARN) else c
        for c in report.checks
    )
    return replace(report, checks=checks)
