"""The canary: a candidate proves itself on the real platform before the moving tag moves.

A small cluster — single node, short auto-termination, the configured canary spec (DCS_CANARY_*), dedicated
to the bot's own Databricks identity (on a dedicated cluster the command execution API refuses anyone else) —
starts on the candidate's digest through the SDK with every launch rule applied (bot/domain/clusterspec.py) and
the pull-budget check. RUNNING means the image was pulled and its init scripts passed; then the smoke commands
run through the command execution API (bot/domain/canary.py); a failed command comes back `Finished` with
`resultType: "error"`, so both are checked. The result is recorded on the release, and the cluster is
terminated whatever happened — and, should the bot die meanwhile, by the start-up sweep (`sweep_canaries`).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.clients.databricks import ClusterStatus, databricks_configured
from bot.domain.canary import CANARY_TAG, smoke_commands
from bot.domain.clock import utcnow
from bot.domain.clusterspec import plan_launch
from bot.domain.launch_request import LaunchRequest
from bot.domain.records import ProcessOwner, Release
from bot.domain.redact import Redactor
from bot.errors import CreateUnconfirmed, DcsError
from bot.ops.launch import launcher_for
from bot.ops.launch_budget import check_budget
from bot.ops.liveness import process_alive, this_process
from bot.services import Services

log = logging.getLogger(__name__)
PLACEHOLDER_EMAIL = "canary@dcs-bot.invalid"  # plan_launch wants an email; service principals have an id
MAX_TEXT = 1500


@dataclass
class CanaryOutcome:
    ok: bool
    why: str  # one line: what passed, or what failed first
    record: dict[str, Any] = field(default_factory=dict)  # stored on the release


class _Failed(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def run_canary(
    services: Services,
    release: Release,
    *,
    sleep: Callable[[float], None] | None = None,
    poll_seconds: float | None = None,
) -> CanaryOutcome:
    """Run the canary of an open candidate to its end; never leaves a cluster running. Never raises a DcsError.

    Polls like the launcher follows launches (its first interval, its sleep) unless told otherwise."""
    store, config = services.store, services.config
    launcher = launcher_for(services)
    sleep = sleep or launcher.sleep
    poll_seconds = launcher.poll_initial if poll_seconds is None else poll_seconds
    record: dict[str, Any] = {"started_at": utcnow(), "owner": _owner(this_process())}
    if not databricks_configured(config):
        return _end(services, release, False, "no Databricks workspace is configured (DATABRICKS_HOST)", record)
    if not store.move_release(release.build_id, to="canary", frm=("candidate",), canary=record):
        return CanaryOutcome(False, "another process is running this canary", record)
    cluster_id: str | None = None
    deadline = time.monotonic() + config.canary_timeout
    try:
        body = _cluster_body(services, release)
        record["spec"] = {k: body[k] for k in ("spark_version", "node_type_id", "autotermination_minutes")}
        try:
            cluster_id = services.databricks.create_cluster(body)
        except CreateUnconfirmed:
            found = services.databricks.find_clusters_by_tag(CANARY_TAG, str(release.build_id))
            cluster_id = str(found[0]["cluster_id"]) if found else None
            if cluster_id is None:
                raise _Failed("the cluster create got no answer and no cluster carries its tag") from None
        record["cluster_id"] = cluster_id
        store.record_canary(release.build_id, record)
        status = _wait_running(services, cluster_id, deadline, sleep, poll_seconds)
        record["state"] = status.state
        spec = store.get_image(release.image)
        done = []
        for smoke in smoke_commands(spec):
            output = _run_command(services, cluster_id, smoke.language, smoke.command, deadline, sleep, poll_seconds)
            done.append(smoke.language)
            record.setdefault("output", []).append(_cut(services.redactor, output))
        what = f"{len(done)} smoke command(s) passed" if done else "RUNNING (no smoke command for this image)"
        return _end(services, release, True, f"cluster {cluster_id} reached RUNNING; {what}", record)
    except _Failed as exc:
        return _end(services, release, False, exc.why, record)
    except DcsError as exc:
        return _end(services, release, False, services.redactor(exc.message), record)
    except Exception:
        log.exception("canary of build %s crashed", release.build_id)
        return _end(services, release, False, "internal error during the canary; see the bot's log", record)
    finally:
        if cluster_id is not None:
            record["terminated"] = _terminate(services, cluster_id, record)
            store.record_canary(release.build_id, record)


def _cluster_body(services: Services, release: Release) -> dict[str, Any]:
    config = services.config
    launcher = launcher_for(services)
    me = services.databricks.me().user_name
    options = launcher.options(release.image, release.build_id)
    runtime = config.canary_runtime or (options.preselected.key if options.preselected else None)
    node = config.canary_node_type or (options.default_node.node_type_id if options.default_node else None)
    request = LaunchRequest(
        image=release.image,
        runtime=runtime,
        node_type=node,
        num_workers=0,
        autotermination_minutes=config.canary_autotermination,
        tags=((CANARY_TAG, str(release.build_id)),),
        cluster_name=f"dcs canary {release.image} #{release.build_id}",
    )
    source = options.source
    ctx = launcher.context(
        source,
        requester="dcs-bot canary",
        user_email=me if "@" in me else PLACEHOLDER_EMAIL,
        request_key=f"canary-{release.build_id}-{uuid.uuid4().hex[:8]}",
    )
    plan = plan_launch(request, source, ctx)
    budget = check_budget(services, source, plan)
    if budget.blocked:
        raise _Failed(f"the Docker Hub pull budget is spent: {budget.message}")
    body = dict(plan.body)
    body["single_user_name"] = me  # dedicated to the bot's own identity (a user, or a service principal id)
    return body


def _wait_running(
    services: Services, cluster_id: str, deadline: float, sleep: Callable[[float], None], poll: float
) -> ClusterStatus:
    while True:
        status = services.databricks.get_cluster(cluster_id)
        if status.running:
            return status
        if status.failed:
            raise _Failed(f"the cluster stopped before RUNNING: {termination(status)}")
        if time.monotonic() > deadline:
            raise _Failed(f"the cluster was still {status.state} after {services.config.canary_timeout} s")
        sleep(poll)


def termination(status: ClusterStatus) -> str:
    """The cluster's own termination reason, e.g. `DOCKER_IMAGE_PULL_FAILURE (CLIENT_ERROR): …`."""
    code = status.termination_code or status.state
    kind = f" ({status.termination_type})" if status.termination_type else ""
    detail = status.parameters.get("databricks_error_message") or status.state_message
    return f"{code}{kind}" + (f": {detail}" if detail else "")


def _run_command(
    services: Services,
    cluster_id: str,
    language: str,
    command: str,
    deadline: float,
    sleep: Callable[[float], None],
    poll: float,
) -> str:
    db = services.databricks
    context_id = db.create_context(cluster_id, language)
    try:
        while (state := db.context_status(cluster_id, context_id)) != "Running":
            if state == "Error":
                raise _Failed(f"the {language} execution context did not start (status Error)")
            if time.monotonic() > deadline:
                raise _Failed(f"the {language} execution context was not ready in time")
            sleep(min(poll, 2.0))
        command_id = db.execute(cluster_id, context_id, command, language)
        while not (result := db.command_status(cluster_id, context_id, command_id)).done:
            if time.monotonic() > deadline:
                raise _Failed(f"the {language} smoke command did not finish within {services.config.canary_timeout} s")
            sleep(min(poll, 2.0))
        if not result.ok:
            detail = result.summary or result.cause or result.data or "no detail"
            why = f"the {language} smoke command failed ({result.status}, resultType {result.result_type}): "
            raise _Failed(why + _cut(services.redactor, _last_line(detail)))
        return result.data
    finally:
        try:
            db.destroy_context(cluster_id, context_id)
        except DcsError:
            log.warning(
                "canary context %s on %s not destroyed (the cluster is terminated anyway)", context_id, cluster_id
            )


def _terminate(services: Services, cluster_id: str, record: dict[str, Any]) -> bool:
    try:
        services.databricks.terminate_cluster(cluster_id)
        return True
    except DcsError as exc:
        record["terminate_error"] = exc.message
        log.warning(
            "canary cluster %s not terminated yet (%s); the start-up sweep tries again", cluster_id, exc.message
        )
        return False


def _end(services: Services, release: Release, ok: bool, why: str, record: dict[str, Any]) -> CanaryOutcome:
    record.update({"ok": ok, "why": why, "finished_at": utcnow()})
    store = services.store
    store.move_release(
        release.build_id,
        to="candidate" if ok else "canary_failed",
        frm=("canary", "candidate"),
        reason=None if ok else f"canary failed: {why}",
        canary=record,
    )
    store.audit(
        actor="dcs-bot",
        action="canary",
        target=f"{release.image}#{release.build_id}",
        outcome="passed" if ok else "failed",
        detail=why,
    )
    return CanaryOutcome(ok, why, record)


# ---------------------------------------------------------------- after a restart


def sweep_canaries(services: Services) -> list[int]:
    """At start-up: canaries whose process is gone get their cluster terminated and fail. Returns their builds."""
    ended = []
    for release in services.store.releases_in("canary"):
        owner = release.canary.get("owner") or {}
        if (
            owner
            and process_alive(ProcessOwner(owner.get("host", ""), int(owner.get("pid", 0)), owner.get("started")))
            is not False
        ):
            continue  # still running (here, or on another host whose own sweep decides)
        record = dict(release.canary)
        cluster_ids = [record["cluster_id"]] if record.get("cluster_id") else []
        if databricks_configured(services.config):
            try:
                found = services.databricks.find_clusters_by_tag(CANARY_TAG, str(release.build_id))
                cluster_ids += [str(c["cluster_id"]) for c in found if str(c["cluster_id"]) not in cluster_ids]
            except DcsError as exc:
                log.warning("canary sweep: clusters of build %s not listed: %s", release.build_id, exc.message)
            record["terminated"] = all([_terminate(services, c, record) for c in cluster_ids])
        why = "the bot stopped while the canary ran; its cluster was terminated after the restart"
        _end(services, release, False, why, record)
        ended.append(release.build_id)
    return ended


def _owner(owner: ProcessOwner) -> dict[str, Any]:
    return {"host": owner.host, "pid": owner.pid, "started": owner.started}


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _cut(redact: Redactor, text: str) -> str:
    text = redact(str(text))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
