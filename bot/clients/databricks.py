"""The Databricks workspace, through the official `databricks-sdk` and its unified auth.

Facts (../shared/reference/databricks.md): the SDK's default retry budget is 300 s and it retries
connection errors, 429 and 503 (honouring `Retry-After`) until that budget is spent — a job would
freeze for minutes on an unreachable host. Every call here is bounded by `DCS_DATABRICKS_TIMEOUT`
(retries included, the `Retry-After` sleeps clipped to what is left of it). The SDK costs ~2 s and
~80 MB to import, so it is imported on first use, never at start-up. Its exceptions are translated
into `WorkspaceError` subclasses with messages a person can act on.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.config import Config, Workspace
from bot.errors import (
    ConfigError,
    CreateUnconfirmed,
    DcsDisabled,
    NotFound,
    WorkspaceError,
    WorkspacePermissionDenied,
    WorkspaceRateLimited,
    WorkspaceRejected,
    WorkspaceUnavailable,
    WorkspaceUnreachable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

LIST_PAGE_SIZE = 100
DCS_OFF_MARKERS = ("custom containers is turned off", "custom containers are turned off")
ENABLE_HINT = "An admin can switch it on: run `/dcs enable` in Slack (or `dcs enable`)."
# Auth-related variables of the SDK's unified auth that the bot forwards from its own environment,
# so configuration flows from the Config object (and .env) rather than from a second read of os.environ.
_PASSED_THROUGH = {
    "host",
    "token",
    "client_id",
    "client_secret",
    "profile",
    "config_file",
    "auth_type",
    "azure_workspace_resource_id",
    "azure_client_id",
    "azure_client_secret",
    "azure_tenant_id",
    "azure_use_msi",
    "azure_environment",
    "account_id",
    "google_service_account",
    "google_credentials",
    "username",
    "password",
    "databricks_cli_path",
}


def databricks_configured(config: Config) -> bool:
    """Whether any unified-auth source names a workspace: DATABRICKS_HOST, a profile, or ~/.databrickscfg."""
    env = config.environ
    if config.workspaces and any(ws.profile for ws in config.workspaces):
        return True
    if config.databricks_host or env.get("DATABRICKS_HOST") or env.get("DATABRICKS_CONFIG_PROFILE"):
        return True
    from pathlib import Path

    path = env.get("DATABRICKS_CONFIG_FILE") or str(Path(env.get("HOME") or "~") / ".databrickscfg")
    return Path(path).expanduser().is_file()


@dataclass(frozen=True)
class ClusterStatus:
    """What `clusters/get` says about a cluster, termination code kept as the raw string."""

    cluster_id: str
    state: str
    state_message: str = ""
    cluster_name: str = ""
    termination_code: str | None = None
    termination_type: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"

    @property
    def failed(self) -> bool:
        return self.state in ("TERMINATED", "ERROR")


@dataclass(frozen=True)
class CommandResult:
    """One commands/status answer: status Queued/Running/Finished/Error/Cancelled and its results. A failed
    command comes back Finished with result_type "error": check both."""

    status: str
    result_type: str | None = None
    data: str = ""
    cause: str = ""
    summary: str = ""

    @property
    def done(self) -> bool:
        return self.status in ("Finished", "Error", "Cancelled")

    @property
    def ok(self) -> bool:
        return self.status == "Finished" and self.result_type != "error"


@dataclass(frozen=True)
class Identity:
    """The bot's own Databricks identity (SCIM Me)."""

    user_name: str
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return "admins" in self.groups


class _BoundedClock:
    """The SDK's retry loop sleeps through this clock: no sleep runs past the current call's deadline.

    Without it a `Retry-After: 3600` would block a worker for an hour whatever the retry budget says. For a
    call that must reach the server at most once (clusters/create), the loop's first wish to sleep ends it
    instead: the clock jumps past every deadline, and the SDK raises TimeoutError from the error it got. That
    holds for every retryable failure (a reset connection, a read timeout, 429/503 with any Retry-After, a
    500 "Unexpected error"), whatever the SDK's own retry budget is. (SDK 0.167 no longer retries a POST that
    timed out reading the answer and raises the requests timeout itself; translate_error takes both forms.)
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def set_deadline(self, deadline: float | None, *, single_attempt: bool = False) -> None:
        self._local.deadline = deadline
        self._local.single_attempt = single_attempt
        self._local.spent = False

    def time(self) -> float:
        return math.inf if getattr(self._local, "spent", False) else time.time()

    def sleep(self, seconds: float) -> None:
        if getattr(self._local, "single_attempt", False):
            self._local.spent = True  # no second attempt: the retry loop sees its deadline passed
            return
        deadline = getattr(self._local, "deadline", None)
        if deadline is not None:
            seconds = max(0.0, min(seconds, deadline - time.time()))
        time.sleep(seconds)


class DatabricksClient:
    """A thin, bounded, translated view of the workspace APIs the bot needs."""

    def __init__(
        self,
        config: Config,
        *,
        workspace: Workspace | None = None,
        retry_timeout_seconds: float | None = None,
        http_timeout_seconds: float | None = None,
    ) -> None:
        self.config = config
        self.workspace = workspace or config.workspace_list[0]
        self._resolved_host: str | None = None
        self.retry_timeout_seconds = float(retry_timeout_seconds or config.databricks_timeout)
        # One HTTP attempt may use at most half the budget, so a hung socket still leaves room to retry.
        self.http_timeout_seconds = float(http_timeout_seconds or max(1.0, min(30.0, self.retry_timeout_seconds / 2)))
        self._clock = _BoundedClock()
        self._clients: dict[bool, Any] = {}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # operations by name (a count: the client lives as long as the bot)

    # ------------------------------------------------------------ plumbing
    @property
    def name(self) -> str:
        """The workspace's name (DCS_WORKSPACES; "default" without it)."""
        return self.workspace.name

    @property
    def host(self) -> str:
        """The workspace URL; for a profile, what the SDK resolved from it (empty until the first call)."""
        if self.workspace.profile is not None:
            host = self._resolved_host or ""
        else:
            host = self.config.databricks_host or self.config.environ.get("DATABRICKS_HOST") or ""
        if host and "://" not in host:
            host = "https://" + host
        return host.rstrip("/")

    @property
    def label(self) -> str:
        """How messages name the workspace: its host, with its name when several are configured."""
        if not self.config.workspaces:
            return self.host
        return f"{self.name} ({self.host})" if self.host else f"workspace {self.name}"

    def cluster_url(self, cluster_id: str) -> str:
        if not self.host and self.workspace.profile is not None:
            self._workspace()  # resolves the profile's host (no API call)
        return f"{self.host}/#setting/clusters/{cluster_id}/configuration"

    def sdk_config_kwargs(self, single_attempt: bool = False) -> dict[str, Any]:
        """Keyword arguments for `databricks.sdk.core.Config` (secrets included: never log this)."""
        from databricks.sdk.core import Config as SdkConfig

        kwargs: dict[str, Any] = {}
        env = self.config.environ
        if self.workspace.profile is not None:
            # A named profile: its host and credentials come from the config file alone (bot/config.py refuses
            # auth variables in the environment, which the SDK would let win over the profile).
            kwargs["profile"] = self.workspace.profile
            if env.get("DATABRICKS_CONFIG_FILE"):
                kwargs["config_file"] = env["DATABRICKS_CONFIG_FILE"]
        else:
            for attr in SdkConfig.attributes():
                if attr.name in _PASSED_THROUGH and attr.env and env.get(attr.env):
                    kwargs[attr.name] = env[attr.env]
            if self.config.databricks_host:
                kwargs["host"] = self.config.databricks_host
            if self.config.databricks_token:
                kwargs["token"] = self.config.databricks_token
        kwargs["retry_timeout_seconds"] = max(1, int(self.retry_timeout_seconds))
        # A create that times out reading the answer may have created the cluster: with the HTTP timeout
        # as long as the whole budget, the SDK has no time left to send the POST a second time.
        kwargs["http_timeout_seconds"] = self.retry_timeout_seconds if single_attempt else self.http_timeout_seconds
        return kwargs

    def _workspace(self, single_attempt: bool = False) -> Any:
        with self._lock:
            if single_attempt not in self._clients:
                # At DEBUG the SDK logs whole request bodies, and a cluster body may carry a registry
                # password the registry entry allows in plaintext: its logger never goes below INFO.
                sdk_log = logging.getLogger("databricks.sdk")
                sdk_log.setLevel(max(logging.INFO, sdk_log.getEffectiveLevel()))
                from databricks.sdk import WorkspaceClient
                from databricks.sdk.core import Config as SdkConfig

                kwargs = self.sdk_config_kwargs(single_attempt)
                # Config() probes /.well-known/databricks-config with its own (unclocked) retry loop:
                # give that best-effort probe a quarter of the budget, then restore the full one.
                kwargs["retry_timeout_seconds"] = max(1, int(self.retry_timeout_seconds / 4))
                try:
                    # _BoundedClock has the SDK Clock's time()/sleep() (duck-typed, not a subclass).
                    sdk_config = SdkConfig(clock=self._clock, **kwargs)  # type: ignore[arg-type]
                except ValueError as exc:
                    if self.workspace.profile is not None:
                        raise ConfigError(
                            [
                                f"Databricks workspace {self.workspace.name!r}: profile {self.workspace.profile!r} "
                                "could not be used. Add it to ~/.databrickscfg (or the file DATABRICKS_CONFIG_FILE "
                                f"names) with host and credentials. The SDK said: {_first_line(str(exc))}"
                            ]
                        ) from None
                    raise ConfigError(
                        [
                            "Databricks authentication is not configured: set DATABRICKS_HOST and DATABRICKS_TOKEN "
                            "(or DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET, or DATABRICKS_CONFIG_PROFILE). "
                            f"The SDK said: {_first_line(str(exc))}"
                        ]
                    ) from None
                # The single-attempt client (clusters/create) gets the smallest retry budget the SDK takes (0
                # would mean its default of 300 s); the clock ends its retry loop anyway (_BoundedClock).
                sdk_config.retry_timeout_seconds = 1 if single_attempt else max(1, int(self.retry_timeout_seconds))
                self._clients[single_attempt] = WorkspaceClient(config=sdk_config)
                self._resolved_host = (sdk_config.host or "").rstrip("/") or None
            return self._clients[single_attempt]

    def run(self, action: str, fn: Callable[[Any], T]) -> T:
        """One SDK operation on the WorkspaceClient, bounded and translated (bot/clients/databricks_fleet.py)."""
        return self._call(action, fn)

    def _call(self, action: str, fn: Callable[[Any], T], single_attempt: bool = False) -> T:
        """Run one SDK operation inside the time budget and translate whatever it raises."""
        self.calls[action] += 1
        started = time.monotonic()
        self._clock.set_deadline(time.time() + self.retry_timeout_seconds, single_attempt=single_attempt)
        try:
            return fn(self._workspace(single_attempt))
        except Exception as exc:  # translated below; anything unknown is re-raised as is
            raise translate_error(exc, action, self.label, self.retry_timeout_seconds) from exc
        finally:
            self._clock.set_deadline(None)
            log.debug("databricks %s took %.2fs", action, time.monotonic() - started)

    # ------------------------------------------------------------ clusters
    def spark_versions(self) -> list[dict[str, str]]:
        def run(w: Any) -> list[dict[str, str]]:
            return [{"key": v.key or "", "name": v.name or ""} for v in (w.clusters.spark_versions().versions or [])]

        return self._call("list runtimes", run)

    def node_types(self) -> list[dict[str, Any]]:
        def run(w: Any) -> list[dict[str, Any]]:
            return [n.as_dict() for n in (w.clusters.list_node_types().node_types or [])]

        return self._call("list node types", run)

    def create_cluster(self, body: Mapping[str, Any]) -> str:
        """POST clusters/create with exactly `body`, sent at most once per call; the new cluster's id (PENDING).

        Raises CreateUnconfirmed when the cluster may exist although no id came back (no answer, a reset
        connection, a timeout, any 5xx): the caller must look for it by its tag, never create again. A clean
        refusal (4xx) raises the translated error; a 429 (refused, so nothing was created) is tried again within
        the time budget.
        """

        def run(w: Any) -> str:
            from databricks.sdk.service.compute import ClusterSpec

            spec = ClusterSpec.from_dict(dict(body))
            unknown = set(body) - set(spec.__dataclass_fields__)
            if unknown:
                raise ValueError(f"not cluster fields: {sorted(unknown)}")
            # Only the keys the body has: from_dict turns an absent list into [] and the request must
            # be exactly the body that was validated (and shown by --dry-run).
            kwargs = {name: getattr(spec, name) for name in body}
            # The waiter is dropped on purpose: tracking polls with the bot's own backoff and budget.
            waiter = w.clusters.create(**kwargs)
            return waiter.cluster_id

        deadline = time.monotonic() + self.retry_timeout_seconds
        while True:
            try:
                return self._call("create the cluster", run, single_attempt=True)
            except WorkspaceError as exc:
                raw = exc.__cause__
                if create_outcome_unknown(raw):
                    raise CreateUnconfirmed(exc.message) from raw
                wait = _refused_for_now(raw)
                if wait is None or time.monotonic() + wait > deadline:
                    raise
                time.sleep(wait)

    def terminate_cluster(self, cluster_id: str) -> None:
        """clusters/delete (= terminate; the cluster stays listed as TERMINATED). Idempotent, so retried."""
        self._call(f"terminate cluster {cluster_id}", lambda w: w.clusters.delete(cluster_id=cluster_id))

    def get_cluster(self, cluster_id: str) -> ClusterStatus:
        def run(w: Any) -> ClusterStatus:
            # The raw answer, because the SDK's enum turns termination codes it does not know into None.
            raw = w.api_client.do(
                "GET", "/api/2.1/clusters/get", query={"cluster_id": cluster_id}, headers={"Accept": "application/json"}
            )
            reason = raw.get("termination_reason") or {}
            return ClusterStatus(
                cluster_id=raw.get("cluster_id", cluster_id),
                state=raw.get("state") or "UNKNOWN",
                state_message=raw.get("state_message") or "",
                cluster_name=raw.get("cluster_name") or "",
                termination_code=reason.get("code"),
                termination_type=reason.get("type"),
                parameters=dict(reason.get("parameters") or {}),
            )

        return self._call(f"read cluster {cluster_id}", run)

    def list_clusters(self) -> list[dict[str, Any]]:
        """clusters/list as plain dicts (cluster_id, cluster_name, state, custom_tags, docker_image, ...)."""
        return self._call("list clusters", lambda w: [c.as_dict() for c in w.clusters.list()])

    def find_clusters_by_tag(self, key: str, value: str) -> list[dict[str, Any]]:
        """Every cluster carrying custom tag key=value, from every page of clusters/list (there is no server-side
        tag filter; terminated clusters of the last 30 days are listed too). Raises when any page fails: a
        lookup that did not see every page proves nothing."""

        def run(w: Any) -> list[dict[str, Any]]:
            found = []
            for cluster in w.clusters.list(page_size=LIST_PAGE_SIZE):  # the SDK follows next_page_token
                if (cluster.custom_tags or {}).get(key) == value:
                    found.append(cluster.as_dict())
            return found

        return self._call("look for clusters by tag", run)

    # ------------------------------------------------------------ command execution (API 1.2)
    def create_context(self, cluster_id: str, language: str) -> str:
        """contexts/create on a running cluster; the context id (not waited for: see `context_status`)."""

        def run(w: Any) -> str:
            from databricks.sdk.service.compute import Language

            waiter = w.command_execution.create(cluster_id=cluster_id, language=Language(language))
            return str(waiter.response.id)

        return self._call(f"open an execution context on {cluster_id}", run)

    def context_status(self, cluster_id: str, context_id: str) -> str:
        """Pending, Running or Error."""

        def run(w: Any) -> str:
            answer = w.command_execution.context_status(cluster_id=cluster_id, context_id=context_id)
            return answer.status.value if answer.status else "Pending"

        return self._call(f"read execution context {context_id}", run)

    def execute(self, cluster_id: str, context_id: str, command: str, language: str) -> str:
        """commands/execute; the command id (not waited for: see `command_status`)."""

        def run(w: Any) -> str:
            from databricks.sdk.service.compute import Language

            waiter = w.command_execution.execute(
                cluster_id=cluster_id, context_id=context_id, command=command, language=Language(language)
            )
            return str(waiter.response.id)

        return self._call(f"run a command on {cluster_id}", run)

    def command_status(self, cluster_id: str, context_id: str, command_id: str) -> CommandResult:
        def run(w: Any) -> CommandResult:
            answer = w.command_execution.command_status(
                cluster_id=cluster_id, context_id=context_id, command_id=command_id
            )
            results = answer.results
            return CommandResult(
                status=answer.status.value if answer.status else "Queued",
                result_type=results.result_type.value if results and results.result_type else None,
                data=str(results.data) if results and results.data is not None else "",
                cause=(results.cause or "") if results else "",
                summary=(results.summary or "") if results else "",
            )

        return self._call(f"read command {command_id}", run)

    def destroy_context(self, cluster_id: str, context_id: str) -> None:
        self._call(
            f"close execution context {context_id}",
            lambda w: w.command_execution.destroy(cluster_id=cluster_id, context_id=context_id),
        )

    # ------------------------------------------------------------ workspace settings and identity
    def workspace_conf(self, *keys: str) -> dict[str, str | None]:
        def run(w: Any) -> dict[str, str | None]:
            answer = w.workspace_conf.get_status(keys=",".join(keys)) or {}
            return {k: answer.get(k) for k in keys}

        return self._call("read the workspace settings", run)

    def set_workspace_conf(self, values: Mapping[str, str]) -> None:
        self._call("change the workspace settings", lambda w: w.workspace_conf.set_status(dict(values)))

    def me(self) -> Identity:
        def run(w: Any) -> Identity:
            user = w.current_user.me()
            groups = tuple(g.display for g in (user.groups or []) if g.display)
            return Identity(user_name=user.user_name or "", groups=groups)

        return self._call("read the bot's own identity", run)


# ---------------------------------------------------------------- error translation


def translate_error(exc: BaseException, action: str, host: str, budget: float) -> BaseException:
    """A DcsError for `exc` when it is a known Databricks/network failure; `exc` itself otherwise."""
    import requests
    from databricks.sdk import errors as sdk_errors

    if isinstance(exc, ConfigError | WorkspaceError | NotFound):
        return exc
    where = host or "the workspace"
    if isinstance(exc, TimeoutError | RuntimeError) and exc.__cause__ is not None:
        cause = exc.__cause__
        if isinstance(cause, sdk_errors.TemporarilyUnavailable):
            return _unavailable(action, where, cause, f" for {budget:.0f} s")
        if isinstance(cause, sdk_errors.TooManyRequests):
            return WorkspaceRateLimited(
                f"Databricks kept answering 'too many requests' to '{action}' for {budget:.0f} s "
                f"({_first_line(str(cause))}). Wait a minute and try again."
            )
        if isinstance(cause, requests.RequestException):
            return _unreachable(action, where, budget, cause)
        if isinstance(cause, sdk_errors.DatabricksError):
            exc = cause
    if isinstance(exc, requests.RequestException):
        return _unreachable(action, where, budget, exc)
    if isinstance(exc, ValueError) and "default auth" in str(exc):
        return ConfigError([f"Databricks authentication failed: {_first_line(str(exc))}"])
    if not isinstance(exc, sdk_errors.DatabricksError):
        return exc
    message = (_first_line(str(exc)) or type(exc).__name__).rstrip(".")
    code = str(getattr(exc, "error_code", "") or "")
    if code == "FEATURE_DISABLED" or any(m in message.lower() for m in DCS_OFF_MARKERS):
        return DcsDisabled(
            f"Custom containers (Databricks Container Services) are turned off in {where}: "
            f"Databricks refused to {action} ({message}). {ENABLE_HINT}"
        )
    if isinstance(exc, sdk_errors.TemporarilyUnavailable):
        return _unavailable(action, where, exc, "")
    if isinstance(exc, sdk_errors.TooManyRequests):
        return WorkspaceRateLimited(
            f"Databricks is rate-limiting the bot ('{action}': {message}). Wait a minute and try again."
        )
    if isinstance(exc, sdk_errors.Unauthenticated):
        return WorkspacePermissionDenied(
            f"Databricks did not accept the bot's credentials when trying to {action} ({message}). "
            "Check DATABRICKS_TOKEN (or the OAuth/profile settings): it may have expired."
        )
    if isinstance(exc, sdk_errors.PermissionDenied):
        return WorkspacePermissionDenied(
            f"Databricks refused to let the bot {action}: {message.rstrip('.')}. Give the bot's Databricks identity "
            "the permission (cluster creation, or workspace admin for settings), or check that its token is valid."
        )
    if isinstance(exc, sdk_errors.BadRequest):
        return WorkspaceRejected(
            f"Databricks rejected the request to {action}: {message}", databricks_message=message, error_code=code
        )
    if isinstance(exc, sdk_errors.ResourceDoesNotExist):
        return NotFound(f"Databricks says: {message.rstrip('.')}.")
    if isinstance(exc, sdk_errors.NotFound):
        return WorkspaceError(
            f"Databricks does not know the API used to {action} ({message}): check that "
            f"DATABRICKS_HOST ({where}) is a workspace URL."
        )
    return WorkspaceError(
        f"Databricks failed to {action}: {message} (error {code or type(exc).__name__}). "
        "Try again; if it keeps failing, check the workspace status page."
    )


def create_outcome_unknown(exc: BaseException | None) -> bool:
    """Whether a failed clusters/create may have created the cluster: no answer (connection error or reset,
    timeout) or a 5xx. A 4xx is a refusal: nothing was created."""
    import requests
    from databricks.sdk import errors as sdk_errors

    if isinstance(exc, TimeoutError | RuntimeError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the SDK's retry loop gave up: what it got last
    if isinstance(exc, requests.RequestException):
        return True
    refusals = (
        sdk_errors.BadRequest,
        sdk_errors.Unauthenticated,
        sdk_errors.PermissionDenied,
        sdk_errors.NotFound,
        sdk_errors.ResourceConflict,
        sdk_errors.TooManyRequests,
    )
    return isinstance(exc, sdk_errors.DatabricksError) and not isinstance(exc, refusals)


def _refused_for_now(exc: BaseException | None) -> float | None:
    """Seconds to wait before asking again after a 429 (a refusal: nothing was created); None otherwise."""
    from databricks.sdk import errors as sdk_errors

    if isinstance(exc, TimeoutError | RuntimeError) and exc.__cause__ is not None:
        exc = exc.__cause__
    if not isinstance(exc, sdk_errors.TooManyRequests):
        return None
    return float(min(max(getattr(exc, "retry_after_secs", None) or 1, 1), 30))


def _unavailable(action: str, where: str, cause: BaseException, during: str) -> WorkspaceUnavailable:
    return WorkspaceUnavailable(
        f"Databricks ({where}) is unavailable: it answered 503 'temporarily unavailable' to '{action}'{during} "
        f"({_first_line(str(cause)) or 'no details'}). Try again in a few minutes; if it persists, check the "
        "Databricks status page."
    )


def _unreachable(action: str, where: str, budget: float, cause: BaseException) -> WorkspaceUnreachable:
    kind = "timed out" if "timeout" in type(cause).__name__.lower() else "could not connect"
    return WorkspaceUnreachable(
        f"Could not reach the Databricks workspace {where} to {action}: {kind} for {budget:.0f} s. "
        "Check DATABRICKS_HOST and the network, then try again."
    )


_DEBUG_TAIL = re.compile(r"\.?\s*(Config|Env):.*$", re.DOTALL)


def _first_line(text: str) -> str:
    """The SDK appends its config dump to auth errors; users need the first sentence only."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return _DEBUG_TAIL.sub("", line).strip()
