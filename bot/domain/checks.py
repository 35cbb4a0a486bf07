"""The doctor's verdicts: one `Check` per row (pass, warn, fail, skip; a fix for what is not a pass) and the
`DoctorReport` table of one image. Pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
WAIVED = "waived"  # a failing or warning row the catalog entry waives, with its reason (bot/domain/doctor_policy.py)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    waiver: str = ""  # the reason, when waived


@dataclass(frozen=True)
class DoctorReport:
    image: str
    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        states = {c.status for c in self.checks}
        return FAIL if FAIL in states else WARN if WARN in states else PASS

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def waived(self) -> list[Check]:
        return [c for c in self.checks if c.status == WAIVED]

    def to_rows(self) -> list[dict[str, str]]:
        return [{k: v for k, v in asdict(c).items() if k != "waiver" or v} for c in self.checks]

    @classmethod
    def from_rows(cls, image: str, rows: list[dict[str, str]] | tuple[dict[str, str], ...]) -> DoctorReport:
        return cls(image=image, checks=tuple(Check(**r) for r in rows))
