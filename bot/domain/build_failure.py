"""Why a build failed, in the words of the tool that failed: the line a person would look for in the log.

The engine's own error ("The command '/bin/sh -c pip install …' returned a non-zero code: 1") names the step
but not the reason; pip, apt and the shell print the reason a few lines earlier. `failure_summary()` finds it
(most specific patterns first, newest line first) and says the step once, with its exit code, so a message
can put the cause first and the step second instead of repeating the step twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.ansi import plain

# Most specific first: the first pattern with a match in the log wins, searching from the newest line.
_CAUSES = [
    re.compile(r"No matching distribution found for \S+.*"),
    re.compile(r"Could not find a version that satisfies the requirement .+"),
    re.compile(r"ResolutionImpossible.*|Cannot install .+ because these package versions have conflicting.*"),
    re.compile(r"E: Unable to locate package .+|E: Package '.+' has no installation candidate.*"),
    re.compile(r"E: Version '.+' for '.+' was not found.*"),
    re.compile(r"Could not resolve host: .+|Temporary failure resolving .+|Name or service not known.*"),
    re.compile(r"SSL: CERTIFICATE_VERIFY_FAILED.*|certificate verify failed.*"),
    re.compile(r"ERROR: (?!The command ).+|^E: .+|^error: .+"),
]
_EXIT_CODE = re.compile(r"returned a non-zero code: (\d+)")
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
MAX_CAUSE = 300


@dataclass(frozen=True)
class FailureSummary:
    cause: str  # the reason, first thing a person reads
    step: str | None = None  # "step 3 of 5: RUN pip install …" (once), when a Dockerfile step failed
    exit_code: int | None = None
    cause_from_log: bool = False  # the cause is a log line, not the bot's own error text


def cause_in_log(log_tail: str | None) -> str | None:
    """The most telling line of a failed step's log, or None."""
    lines = [line.strip() for line in plain(log_tail or "").splitlines() if line.strip()]
    for pattern in _CAUSES:
        for line in reversed(lines):
            found = pattern.search(line)
            if found and not line.startswith("Step "):
                text = found.group(0).strip()
                return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 1] + "…"
    return None


def failure_summary(error: str | None, failed_step: str | None, log_tail: str | None) -> FailureSummary:
    """Cause first (the tool's own line when the log has one), then the step and its exit code."""
    error = plain(error or "").strip()
    exit_code = _EXIT_CODE.search(error)
    step = _step_words(failed_step) if failed_step else None
    code = int(exit_code.group(1)) if exit_code else None
    first, _, rest = error.partition("\n")
    if rest.strip() and not first.startswith("Build failed at "):
        # Already explained (bot/ops/build_plan.py puts the field, package and fix first): that is the cause.
        return FailureSummary(first.strip(), step, code)
    found = cause_in_log(log_tail) if failed_step else None
    if found and found not in error:
        return FailureSummary(found, step, int(exit_code.group(1)) if exit_code else None, cause_from_log=True)
    return FailureSummary(
        _without_step(error, failed_step) or "unknown", step, int(exit_code.group(1)) if exit_code else None
    )


def _step_words(failed_step: str) -> str:
    match = _STEP.match(failed_step.strip())
    if not match:
        return failed_step.strip()
    return f"step {match.group(1)} of {match.group(2)}: {match.group(3)}"


def _without_step(error: str, failed_step: str | None) -> str:
    """The engine's "Build failed at Step 3/5 : RUN …: why" without the step, which is shown on its own."""
    if failed_step and error.startswith(f"Build failed at {failed_step}: "):
        return error[len(f"Build failed at {failed_step}: ") :]
    return error
