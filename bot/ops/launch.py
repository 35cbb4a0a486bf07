"""Launching clusters on an image's pinned digest, and following them until they run (or say why not).

The launch service: the last good (pushed) build gives `repo@sha256:…`; `bot.domain.clusterspec` turns the
request into the exact `clusters/create` body; the Docker Hub pull budget of the account the cluster
pulls with is checked first (zero left blocks the launch until someone says "launch anyway"); one
`clusters/create` per request key (`store.claim`), sent once by the client (no SDK retry can repeat it);
every launch is a row in `launches`, so a restarted bot picks up the ones still pending. A `dcs_request` tag
on the cluster lets the bot find a cluster whose create answer it never saw (a crash, a timeout, a 5xx)
instead of creating a second one: bot/ops/launch_check.py.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.clients.databricks import ClusterStatus, DatabricksClient
from bot.domain.advice import Advice, advise
from bot.domain.catalog import registry_migration
from bot.domain.clock import parse_time, utcnow
from bot.domain.clusterspec import (
    TAG_REQUEST,
    ImageSource,
    LaunchContext,
    LaunchPlan,
    LaunchRequest,
    NodeType,
    Runtime,
    dcs_node_types,
    dcs_runtimes,
    init_script_label,
    plan_launch,
    preferred_runtime,
)
from bot.domain.records import ACTIVE_LAUNCH_STATES, Launch
from bot.errors import CreateUnconfirmed, CredentialsRefused, DcsError, NotAllowed, NotFound, WorkspaceError
from bot.ops.launch_budget import BudgetCheck, check_budget
from bot.ops.launch_check import CreateChecks
from bot.ops.launch_scripts import check_file_init_scripts
from bot.ops.release import promoted_build
from bot.services import Services, check_own_host

log = logging.getLogger(__name__)

OPTIONS_TTL_SECONDS = 3600  # runtimes and node types change a few times a year


# ---------------------------------------------------------------- results


class LaunchFollower(Protocol):
    """Follows a created launch until its cluster runs or stops (jobs/clusters.py's Tracker)."""

    def follow(self, launch_id: int) -> None: ...

    def stop(self) -> None: ...


@dataclass
class TrackState:
    """Backoff state of one launch being followed. `keep_checking`: a launch whose create is unconfirmed is
    looked up past the deadline too (the bot: it never gives up on finding out; the CLI stops waiting)."""

    delay: float
    deadline: float
    failures: int = 0
    keep_checking: bool = False


@dataclass(frozen=True)
class LaunchOptions:
    """What the launch form offers for one image."""

    source: ImageSource
    runtimes: list[Runtime]
    node_types: list[NodeType]
    preselected: Runtime | None
    default_node: NodeType | None


@dataclass(frozen=True)
class LaunchOutcome:
    launch: Launch | None
    plan: LaunchPlan | None = None
    budget: BudgetCheck | None = None
    duplicate: bool = False  # a retry or double click: nothing new was created


def request_tag(request_key: str) -> str:
    """The `dcs_request` tag value: short, tag-safe, and the same for every retry of one request."""
    return hashlib.sha256(request_key.encode()).hexdigest()[:20]


# ---------------------------------------------------------------- the service


class Launcher:
    def __init__(
        self,
        services: Services,
        *,
        poll_initial: float = 5.0,
        poll_max: float = 60.0,
        track_timeout: float = 3600.0,
        max_poll_failures: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        create_settle_seconds: float | None = None,
        lookup_attempts: int = 2,
        lookup_delay: float = 1.0,
    ) -> None:
        self.services = services
        self.store = services.store
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.track_timeout = track_timeout
        self.max_poll_failures = max_poll_failures
        self.sleep = sleep
        # An empty lookup right after the create proves nothing: allow it as long as one create may take.
        if create_settle_seconds is None:
            create_settle_seconds = services.databricks.retry_timeout_seconds
        self.checks = CreateChecks(
            services,
            settle_seconds=create_settle_seconds,
            attempts=lookup_attempts,
            delay=lookup_delay,
            sleep=sleep,
        )
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    @property
    def databricks(self) -> DatabricksClient:
        """The default workspace's client."""
        return self.services.databricks

    def client(self, workspace: str | None) -> DatabricksClient:
        """The client of a named workspace (None: the default); unknown names raise InvalidInput."""
        return self.services.workspace(workspace)

    def client_of(self, launch: Launch) -> DatabricksClient:
        """The client of the workspace a launch went to (launches made before workspaces: the default)."""
        return self.services.workspace(launch.workspace)

    # ------------------------------------------------------------ inputs
    def image_source(self, name: str, build_id: int | None = None) -> ImageSource:
        """The image at its promoted build (or the given build, a candidate too), pinned by digest."""
        spec = self.store.get_image(name)
        if build_id is not None:
            build = self.store.get_build(build_id)
            if build.image != name or build.status != "succeeded" or not build.pushed_digest:
                raise NotFound(
                    f"Build #{build_id} of {name} was not pushed, so no cluster can pull it. Push it "
                    f"with `/dcs build {name} push` and launch that build."
                )
        else:
            found = promoted_build(self.services, name)  # a candidate only when asked for by build id
            candidate = self.store.open_release(name) if found is None else None
            if candidate is not None:
                raise NotFound(
                    f"{name} has no promoted build yet: build #{candidate.build_id} is a candidate "
                    f"({candidate.status}). Launch it on purpose by its build id, or promote it first "
                    f"(`dcs promote {name} {candidate.build_id}`)."
                )
            if found is None:
                raise NotFound(
                    f"{name} has no pushed build yet, so no cluster can pull it. Build and push it "
                    f"first: `/dcs build {name} push` (or `dcs build {name} --push`)."
                )
            build = found
        assert build.pushed_digest is not None
        immutable = build.tags[0] if build.tags else None  # pushed first, never moved
        return ImageSource(spec, build.id, build.pushed_digest, self.services.push_registry(spec), immutable)

    def _cached(self, key: str, fetch: Callable[[], Any]) -> Any:
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < OPTIONS_TTL_SECONDS:
                return hit[1]
        value = fetch()
        with self._cache_lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def workspace_runtimes(self, workspace: str | None = None) -> list[dict[str, str]]:
        client = self.client(workspace)
        return self._cached(f"runtimes@{client.name}", client.spark_versions)

    def workspace_node_types(self, workspace: str | None = None) -> list[dict[str, Any]]:
        client = self.client(workspace)
        return self._cached(f"node_types@{client.name}", client.node_types)

    def options(self, name: str, build_id: int | None = None, workspace: str | None = None) -> LaunchOptions:
        source = self.image_source(name, build_id)
        runtimes = dcs_runtimes(self.workspace_runtimes(workspace))
        nodes = dcs_node_types(self.workspace_node_types(workspace), source.spec.base_info.gpu)
        return LaunchOptions(
            source, runtimes, nodes, preferred_runtime(runtimes, source.spec.base_info), nodes[0] if nodes else None
        )

    def context(
        self,
        source: ImageSource,
        *,
        requester: str,
        user_email: str,
        request_key: str,
        check_workspace: bool = True,
        workspace: str | None = None,
    ) -> LaunchContext:
        password = None
        registry = source.registry
        if registry is not None:
            # the cluster logs in to the image's host with what the entry holds: only if that is its own host
            check_own_host(registry, source.spec.repository_ref.domain)
        if (
            registry is not None
            and registry.allow_plaintext_password
            and not registry.cluster_password_secret
            and registry.password_env
        ):
            if registry.legacy_password_env:
                raise CredentialsRefused(registry_migration(registry))
            password = self.services.config.secret(registry.password_env)
        return LaunchContext(
            user_email=user_email,
            launched_by=requester,
            request_key=request_tag(request_key),
            runtimes=self.workspace_runtimes(workspace) if check_workspace else None,
            node_types=self.workspace_node_types(workspace) if check_workspace else None,
            plaintext_password=password,
            secret_scopes=self.services.config.launch_secret_scopes,
            registry_secret_scopes=self.services.config.registry_secret_scopes,
        )

    def plan(
        self,
        request: LaunchRequest,
        *,
        requester: str,
        user_email: str,
        request_key: str,
        build_id: int | None = None,
        check_workspace: bool = True,
    ) -> tuple[ImageSource, LaunchPlan]:
        """Validate everything (InvalidInputs lists each problem) and return the exact request."""
        self.services.config.workspace(request.workspace)  # an unknown workspace is refused before anything else
        source = self.image_source(request.image, build_id)
        ctx = self.context(
            source,
            requester=requester,
            user_email=user_email,
            request_key=request_key,
            check_workspace=check_workspace,
            workspace=request.workspace,
        )
        return source, plan_launch(request, source, ctx)

    def check_budget(self, source: ImageSource, plan: LaunchPlan) -> BudgetCheck:
        return check_budget(self.services, source, plan)

    # ------------------------------------------------------------ launching
    def launch(
        self,
        request: LaunchRequest,
        *,
        requester: str,
        user_email: str,
        request_key: str,
        build_id: int | None = None,
        slack_channel: str | None = None,
        force: bool = False,
    ) -> LaunchOutcome:
        """Validate, check the budget, create once. Raises InvalidInput(s) and translated Databricks errors."""
        source, plan = self.plan(
            request, requester=requester, user_email=user_email, request_key=request_key, build_id=build_id
        )
        untried = check_file_init_scripts(self.services, source, request)  # a failing one refuses the launch
        if untried:
            plan = replace(plan, warnings=(*plan.warnings, untried))
        store = self.store
        if not store.claim(f"launch:{request_key}", "launch"):
            ref = store.claim_ref(f"launch:{request_key}")
            return LaunchOutcome(store.get_launch(int(ref)) if ref else None, plan, duplicate=True)
        budget = self.check_budget(source, plan)
        meta = _meta(request, source, plan, budget, user_email, request_key)
        status = "blocked" if budget.blocked and not force else "creating"
        launch = store.insert_launch(
            image=source.spec.name,
            build_id=source.build_id,
            requester=requester,
            cluster_name=plan.body["cluster_name"],
            image_url=plan.image_url,
            request=meta,
            status=status,
            pulls_needed=plan.pulls_at_start,
            slack_channel=slack_channel,
        )
        store.set_claim_ref(f"launch:{request_key}", str(launch.id))
        if status == "blocked":
            store.audit(
                actor=requester,
                action="launch.request",
                target=f"{source.spec.name}#{launch.id}",
                outcome="blocked",
                detail=budget.message,
            )
            return LaunchOutcome(launch, plan, budget)
        store.audit(
            actor=requester,
            action="launch.request",
            target=f"{source.spec.name}#{launch.id}",
            outcome="creating",
            detail=f"{plan.runtime.key} {plan.image_url}" + (" (forced)" if force else ""),
        )
        return LaunchOutcome(self._create(launch, plan), plan, budget)

    def launch_anyway(self, launch_id: int, actor: str, *, is_admin: bool = False) -> LaunchOutcome:
        """The explicit "launch anyway" of a launch the pull budget blocked. Once, whoever clicks twice."""
        launch = self.store.get_launch(launch_id)
        if actor != launch.requester and not is_admin:
            raise NotAllowed("Only the person who asked for this launch (or a bot admin) can launch it anyway.")
        if not self.store.claim(f"launch-anyway:{launch_id}", "launch"):
            return LaunchOutcome(self.store.get_launch(launch_id), duplicate=True)
        if launch.status != "blocked":
            return LaunchOutcome(launch, duplicate=True)
        meta = launch.request
        request = request_from_dict(meta["request"])
        source = self.image_source(launch.image, launch.build_id)
        ctx = self.context(
            source,
            requester=launch.requester or actor,
            user_email=meta["user_email"],
            request_key=meta["request_key"],
            workspace=request.workspace,
        )
        plan = plan_launch(request, source, ctx)
        launch = self.store.update_launch(launch_id, status="creating")
        self.store.audit(
            actor=actor,
            action="launch.anyway",
            target=f"{launch.image}#{launch_id}",
            outcome="creating",
            detail="pull budget exhausted; launched on explicit request",
        )
        return LaunchOutcome(self._create(launch, plan), plan)

    def _create(self, launch: Launch, plan: LaunchPlan) -> Launch:
        store, target = self.store, f"{launch.image}#{launch.id}"
        launch = store.update_launch(launch.id, create_sent_at=utcnow())
        try:
            cluster_id = self.client_of(launch).create_cluster(plan.body)
        except CreateUnconfirmed as exc:
            # The POST may have created the cluster before the answer was lost: find it by its tag, never resend.
            return self.checks.unconfirmed(launch, exc.message)
        except DcsError as exc:
            self._fail(launch, exc.message)
            raise
        store.audit(actor=launch.requester, action="launch.create", target=target, outcome="created", detail=cluster_id)
        log.info("launch %s: cluster %s created", launch.id, cluster_id)
        return store.update_launch(
            launch.id,
            cluster_id=cluster_id,
            status="pending",
            state="PENDING",
            state_message="Starting: Databricks is acquiring the nodes.",
        )

    def _fail(self, launch: Launch, message: str) -> None:
        self.store.update_launch(
            launch.id, status="failed", state="NOT_CREATED", state_message=self.services.redactor(message)
        )
        self.store.audit(
            actor=launch.requester,
            action="launch.create",
            target=f"{launch.image}#{launch.id}",
            outcome="failed",
            detail=self.services.redactor(message),
        )

    def attach_message(self, launch_id: int, channel: str, ts: str) -> Launch:
        return self.store.update_launch(launch_id, slack_channel=channel, slack_ts=ts)

    # ------------------------------------------------------------ following
    def poll_once(self, launch: Launch) -> Launch:
        """One clusters/get; the row is updated when the state or message changed."""
        status: ClusterStatus = self.client_of(launch).get_cluster(launch.cluster_id or "")
        changes: dict[str, Any] = {}
        if (status.state, status.state_message) != (launch.state, launch.state_message):
            changes.update(state=status.state, state_message=self.services.redactor(status.state_message))
        if status.running:
            changes["status"] = "running"
        elif status.failed:
            changes.update(
                status="failed",
                termination_code=status.termination_code or "UNKNOWN",
                request={
                    **launch.request,
                    "termination_parameters": {k: self.services.redactor(str(v)) for k, v in status.parameters.items()},
                },
            )
        if not changes:
            return launch
        updated = self.store.update_launch(launch.id, **changes)
        if updated.finished:
            self.store.audit(
                actor=launch.requester,
                action="launch.finish",
                target=f"{launch.image}#{launch.id}",
                outcome=updated.status,
                detail=updated.termination_code or updated.cluster_id,
            )
        return updated

    def begin(self, *, keep_checking: bool = False) -> TrackState:
        return TrackState(
            delay=self.poll_initial, deadline=time.monotonic() + self.track_timeout, keep_checking=keep_checking
        )

    def step(self, launch_id: int, state: TrackState) -> tuple[Launch, bool, float | None]:
        """One tracking step: (launch, changed, seconds until the next step or None when done).

        The caller waits between steps — a sleep for the CLI, a timer for the bot, whose worker threads
        must not sit idle through a ten-minute cluster start.
        """
        launch = self.store.get_launch(launch_id)
        if launch.status == "creating":
            age = _age_seconds(launch.updated_at)
            grace = 2 * self.client_of(launch).retry_timeout_seconds + 10
            if age is not None and age < grace:
                return launch, False, grace - age  # another process may still be creating it: wait
            return self._checked(launch, self.recover_creating(launch), state)
        if launch.status == "checking":
            return self._checked(launch, self.checks.check(launch), state)
        if launch.status != "pending":
            return launch, False, None
        try:
            polled = self.poll_once(launch)
            state.failures = 0
        except NotFound:
            polled = self.store.update_launch(
                launch.id,
                status="unknown",
                state="GONE",
                state_message="The cluster no longer exists in the workspace.",
            )
        except WorkspaceError as exc:
            state.failures += 1
            log.warning("launch %s: poll %s failed: %s", launch.id, state.failures, exc.message)
            polled = launch
            if state.failures >= self.max_poll_failures:
                polled = self.store.update_launch(
                    launch.id,
                    status="unknown",
                    state_message=(f"The bot lost contact with Databricks ({exc.message}); check the cluster page."),
                )
        changed = polled != launch
        if polled.status != "pending":
            return polled, changed, None
        if time.monotonic() + state.delay > state.deadline:
            stopped = self.store.update_launch(
                launch.id,
                status="unknown",
                state_message=(
                    f"Still {polled.state} after {self.track_timeout / 60:.0f} min; the bot stopped following it. "
                    "Check the cluster page."
                ),
            )
            return stopped, True, None
        delay = state.delay
        state.delay = min(state.delay * 1.5, self.poll_max)
        return polled, changed, delay

    def _checked(self, before: Launch, after: Launch, state: TrackState) -> tuple[Launch, bool, float | None]:
        """The step after a lookup: follow an adopted cluster from now on, keep checking, or stop."""
        changed = after != before
        if after.status == "pending":
            state.deadline = time.monotonic() + self.track_timeout  # the cluster's start is followed from now
            state.delay = self.poll_initial
            return after, changed, state.delay
        if after.status != "checking":
            return after, changed, None
        if not state.keep_checking and time.monotonic() + state.delay > state.deadline:
            return after, changed, None  # the CLI stops waiting; the row stays `checking` for the bot
        delay = state.delay
        state.delay = min(state.delay * 1.5, self.poll_max)
        return after, changed, delay

    def track(self, launch_id: int, on_change: Callable[[Launch], None] | None = None) -> Launch:
        """Poll with backoff until RUNNING, TERMINATED/ERROR, or the tracking budget is spent (blocking)."""
        state = self.begin()
        while True:
            launch, changed, delay = self.step(launch_id, state)
            if changed and on_change is not None:
                on_change(launch)
            if delay is None:
                return launch
            self.sleep(delay)

    def recover_creating(self, launch: Launch) -> Launch:
        """A launch left in `creating` by a stop: its create may or may not have reached Databricks."""
        self.store.audit(
            actor=launch.requester,
            action="launch.resume",
            target=f"{launch.image}#{launch.id}",
            outcome="checking",
            detail="left creating by a stop",
        )
        return self.checks.unconfirmed(launch, "the bot stopped before Databricks answered the create")

    def pending(self) -> list[Launch]:
        return self.store.launches(statuses=ACTIVE_LAUNCH_STATES, limit=200)


def _age_seconds(stamp: str | None) -> float | None:
    moment = parse_time(stamp)
    return None if moment is None else (datetime.now(UTC) - moment).total_seconds()


def request_from_dict(data: dict[str, Any]) -> LaunchRequest:
    """A LaunchRequest back from its JSON form (lists become the tuples the dataclass holds)."""

    def tuples(value: Any) -> Any:
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value

    return LaunchRequest(**{k: tuples(v) for k, v in data.items()})


def _meta(
    request: LaunchRequest,
    source: ImageSource,
    plan: LaunchPlan,
    budget: BudgetCheck,
    user_email: str,
    request_key: str,
) -> dict[str, Any]:
    """What the launches row keeps: enough to explain and to re-plan, never a secret."""
    return {
        "body": plan.shown_body,
        "warnings": list(plan.warnings),
        "auth": plan.auth,
        "request": asdict(request),
        "user_email": user_email,
        "request_tag": plan.body["custom_tags"][TAG_REQUEST],
        "request_key": request_key,
        "on_docker_hub": source.spec.repository_ref.on_docker_hub,
        "init_scripts": [init_script_label(e) for e in plan.body.get("init_scripts", [])],
        "pulls_ceiling": plan.pulls_ceiling,
        "budget": asdict(budget),
        "runtime": plan.runtime.key,
        "workspace": request.workspace,
    }


def launch_advice(launch: Launch) -> Advice | None:
    """What to do about a launch that failed: its termination code in plain words."""
    if launch.status != "failed" or not launch.termination_code:
        return None
    meta = launch.request
    return advise(
        launch.termination_code,
        state_message=launch.state_message or "",
        parameters=meta.get("termination_parameters") or {},
        image=launch.image,
        image_url=launch.image_url or "",
        on_docker_hub=bool(meta.get("on_docker_hub")),
        auth=meta.get("auth", "none"),
        init_scripts=meta.get("init_scripts") or (),
    )


def launcher_for(services: Services) -> Launcher:
    """The process's launcher (its options cache lives as long as the process; tests put one with short
    polling intervals in `services.launcher`)."""
    if services.launcher is None:
        services.launcher = Launcher(services)
    return services.launcher
