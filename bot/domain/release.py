"""Release policy: when a pushed build may move its image's moving tag ("promote"), pure.

Every build pushes its immutable tag first; the moving tag (what clusters start from) moves only when the
image's policy is met. The catalog fields (flat in an `[[image]]` table):

- `promote`: "doctor" (default: the doctor passed), "canary" (doctor + a canary cluster ran the image),
  "approval" (doctor, the canary when `canary = true`, then `approvals` people said yes);
- `approvals` (default 1) and `approvers`: "admins" (the default) and/or Slack user ids; the requester of a
  build never counts for its own candidate;
- `approval_hours` (default 72): after that the candidate expires and the moving tag stays where it was;
- `canary` (approval policy only): run the canary before asking; `canary_snippet` (+ `canary_language`,
  python/r/scala): code the canary runs after importing every pip requirement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from bot.config import SLACK_USER_ID
from bot.errors import InvalidInput

Policy = Literal["doctor", "canary", "approval"]
POLICIES: tuple[Policy, ...] = ("doctor", "canary", "approval")
LANGUAGES = ("python", "r", "scala")
RELEASE_FIELDS = ("promote", "approvals", "approvers", "approval_hours", "canary", "canary_snippet", "canary_language")
MAX_SNIPPET = 4000
ADMINS = "admins"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ReleasePolicy:
    promote: Policy = "doctor"
    approvals: int = 1
    approvers: tuple[str, ...] = (ADMINS,)
    approval_hours: int = 72
    canary: bool = False  # with "approval": run the canary first
    canary_snippet: str = ""
    canary_language: str = "python"

    @property
    def needs_canary(self) -> bool:
        return self.promote == "canary" or (self.promote == "approval" and self.canary)

    @property
    def needs_approval(self) -> bool:
        return self.promote == "approval"

    def describe(self) -> str:
        if self.promote == "doctor":
            return "promoted when the doctor passes"
        if self.promote == "canary":
            return "promoted when the doctor and a canary cluster pass"
        who = ", ".join(self.approvers)
        first = "doctor + canary" if self.canary else "doctor"
        return f"{first}, then {self.approvals} approval(s) by {who} within {self.approval_hours} h"


DEFAULT_POLICY = ReleasePolicy()


def may_approve(policy: ReleasePolicy, user: str, *, requester: str | None, admins: frozenset[str]) -> tuple[bool, str]:
    """Whether `user` may approve (or reject) a candidate of this policy, and why not."""
    if requester and user == requester:
        return False, "you requested this build; another approver has to decide (four eyes)"
    if user in policy.approvers or (ADMINS in policy.approvers and user in admins):
        return True, ""
    names = ", ".join("the bot's admins" if a == ADMINS else f"<@{a}>" for a in policy.approvers)
    return False, f"only {names} may approve releases of this image"


def release_from_dict(data: Mapping[str, Any], f: Callable[[str], str], problems: list[InvalidInput]) -> ReleasePolicy:
    """The release fields of one catalog entry; each problem names its field, the bad value and a fix."""
    promote = data.get("promote")
    promote = "doctor" if promote in (None, "") else promote
    if promote not in POLICIES:
        problems.append(
            InvalidInput(f("promote"), promote, "is not a release policy", 'Use "doctor", "canary" or "approval".')
        )
        promote = "doctor"
    approvals = _integer(data, "approvals", 1, 1, 5, f, problems)
    hours = _integer(data, "approval_hours", 72, 1, 24 * 30, f, problems)
    approvers_in = data.get("approvers")
    approvers: list[str] = []
    if approvers_in is None or approvers_in == []:
        approvers = [ADMINS]
    elif not isinstance(approvers_in, list | tuple):
        problems.append(
            InvalidInput(f("approvers"), approvers_in, "is not a list", 'Write approvers = ["admins", "U012AB3CD"].')
        )
        approvers = [ADMINS]
    else:
        for who in approvers_in:
            if who == ADMINS or (isinstance(who, str) and SLACK_USER_ID.match(who)):
                approvers.append(who)
            else:
                problems.append(
                    InvalidInput(
                        f("approvers"), who, 'is not a Slack user id or "admins"', "Use ids like U012AB3CD or admins."
                    )
                )
    if len(set(approvers)) < len(approvers):
        problems.append(InvalidInput(f("approvers"), approvers, "names someone twice", "List each approver once."))
        approvers = list(dict.fromkeys(approvers))
    named = [a for a in approvers if a != ADMINS]
    if ADMINS not in approvers and len(named) < approvals + 1 and promote == "approval":
        # the requester never counts: with only `approvals` named people, one of them could never be outvoted
        problems.append(
            InvalidInput(
                f("approvers"),
                approvers,
                f"names {len(named)} people for {approvals} approval(s); a requester cannot approve their own build",
                f'Name at least {approvals + 1} approvers, or add "admins".',
            )
        )
    canary = data.get("canary", False)
    if not isinstance(canary, bool):
        problems.append(InvalidInput(f("canary"), canary, "is not true or false", "Use canary = true or false."))
        canary = False
    language = data.get("canary_language") or "python"
    if language not in LANGUAGES:
        problems.append(
            InvalidInput(f("canary_language"), language, "is not a notebook language", "Use python, r or scala.")
        )
        language = "python"
    snippet = data.get("canary_snippet") or ""
    if not isinstance(snippet, str) or len(snippet) > MAX_SNIPPET or _CONTROL.search(snippet):
        problems.append(
            InvalidInput(
                f("canary_snippet"),
                snippet if isinstance(snippet, str) and len(snippet) < 80 else "…",
                f"is not text of at most {MAX_SNIPPET} characters",
                "Give a short snippet of code as a (multi-line) TOML string.",
            )
        )
        snippet = ""
    return ReleasePolicy(
        promote=cast(Policy, promote),
        approvals=approvals,
        approvers=tuple(approvers),
        approval_hours=hours,
        canary=canary,
        canary_snippet=snippet,
        canary_language=language,
    )


def release_to_dict(policy: ReleasePolicy) -> dict[str, Any]:
    """The catalog-file form: only what differs from the defaults."""
    out: dict[str, Any] = {}
    for name in RELEASE_FIELDS:
        value = getattr(policy, name)
        if value != getattr(DEFAULT_POLICY, name):
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _integer(
    data: Mapping[str, Any],
    name: str,
    default: int,
    low: int,
    high: int,
    f: Callable[[str], str],
    p: list[InvalidInput],
) -> int:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        p.append(
            InvalidInput(f(name), value, f"is not a whole number from {low} to {high}", f"Use {name} = {default}.")
        )
        return default
    return value
