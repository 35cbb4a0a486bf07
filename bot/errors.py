"""Errors a user can read.

`DcsError` and its subclasses carry a message fit for a person (CLI or Slack). Anything else that
escapes is a bug: callers log it with a traceback and show a short apology with a reference id.
Every subclass has an exit code so the CLI can tell pipelines what went wrong.
"""

from __future__ import annotations


class DcsError(Exception):
    """Base class: the message is shown to the user as is."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(DcsError):
    """A user input was rejected. Names the field, the bad value and the fix."""

    exit_code = 2

    def __init__(self, field: str, value: object, reason: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        self.fix = fix
        shown = _shorten(repr(value) if not isinstance(value, str) else repr(value), 120)
        super().__init__(f"{field}: {shown} {reason}. {fix}")


class InvalidInputs(DcsError):
    """Several inputs were rejected at once (a form, a catalog file)."""

    exit_code = 2

    def __init__(self, problems: list[InvalidInput]) -> None:
        self.problems = problems
        lines = "\n".join(f"- {p.message}" for p in problems)
        super().__init__(f"{len(problems)} problem(s):\n{lines}")


class ConfigError(DcsError):
    """The environment does not describe a runnable configuration."""

    exit_code = 78  # EX_CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"- {p}" for p in problems)
        super().__init__(f"Configuration problem(s):\n{lines}")


class NotFound(DcsError):
    exit_code = 4


class AlreadyExists(DcsError):
    exit_code = 5


class EngineUnavailable(DcsError):
    """The Docker engine cannot be reached."""

    exit_code = 69  # EX_UNAVAILABLE


class BuildFailed(DcsError):
    exit_code = 10

    def __init__(self, message: str, *, step: str = "", log_tail: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.log_tail = log_tail


class BuildInProgress(DcsError):
    """Another build of the same image is queued or running (they would race for the same tags)."""

    exit_code = 13

    def __init__(self, message: str, *, build_id: int) -> None:
        super().__init__(message)
        self.build_id = build_id


class BuildTimedOut(BuildFailed):
    exit_code = 11


class DoctorFailed(DcsError):
    """The image would not run on Databricks; the push was blocked."""

    exit_code = 12


class RegistryError(DcsError):
    """A registry answered with an error we cannot classify more precisely."""

    exit_code = 20


class RegistryAuthError(RegistryError):
    exit_code = 21


class CredentialsRefused(RegistryAuthError):
    """The bot will not send a secret there: another host, a token service not allowed, a variable it must not read."""

    exit_code = 26


class RegistryUnreachable(RegistryError):
    exit_code = 22


class PullLimitReached(RegistryError):
    """Docker Hub (or another registry) answered `toomanyrequests`; the numbers when it sent them."""

    exit_code = 23

    def __init__(
        self, message: str, *, limit: int | None = None, remaining: int | None = None, window_seconds: int | None = None
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.remaining = remaining
        self.window_seconds = window_seconds


class ManifestNotFound(RegistryError):
    exit_code = 24


class PushFailed(RegistryError):
    exit_code = 25


class NotAllowed(DcsError):
    """The user may not do this (not an admin, approving their own request, ...)."""

    exit_code = 14


class WorkspaceError(DcsError):
    """Databricks answered with an error we cannot classify more precisely."""

    exit_code = 40


class WorkspaceUnreachable(WorkspaceError):
    """The workspace did not answer within the bot's time budget (network, DNS, host down)."""

    exit_code = 41


class WorkspaceUnavailable(WorkspaceUnreachable):
    """Databricks answered 503 (temporarily unavailable) past the bot's time budget."""


class CreateUnconfirmed(WorkspaceError):
    """clusters/create got no answer or a 5xx: the cluster may exist. Look for it by its tag; never send it again."""


class WorkspacePermissionDenied(WorkspaceError):
    """The bot's Databricks identity lacks a permission, or its credentials were refused."""

    exit_code = 42


class WorkspaceRejected(WorkspaceError):
    """Databricks refused a request as invalid; `databricks_message` is its own words."""

    exit_code = 43

    def __init__(self, message: str, *, databricks_message: str = "", error_code: str = "") -> None:
        super().__init__(message)
        self.databricks_message = databricks_message
        self.error_code = error_code


class DcsDisabled(WorkspaceError):
    """Custom containers are switched off in the workspace (`enableDcs` is not "true")."""

    exit_code = 44


class WorkspaceRateLimited(WorkspaceError):
    """Databricks kept answering 429 past the bot's retry budget."""

    exit_code = 45


class LaunchBlocked(DcsError):
    """A launch would exhaust the Docker Hub pull budget; it needs an explicit "launch anyway"."""

    exit_code = 46


class LaunchFailed(DcsError):
    """The cluster was created but stopped before it ran (TERMINATED/ERROR), or was lost."""

    exit_code = 47


class StopRequested(SystemExit):
    """A stop signal (SIGTERM) arrived: unwind like Ctrl-C, so that work in progress records how it ended."""

    def __init__(self, signal_name: str, code: int) -> None:
        super().__init__(code)
        self.signal_name = signal_name


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
