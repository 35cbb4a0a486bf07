"""Clusters API 2.1 of the fake workspace: create, get, list (paginated, filtered), edit, update, delete
(terminate), permanent-delete and start, plus seeding of clusters the bot never created.

Semantics follow the SDK 0.162 docstrings (see /work/notes/databricks-api.md (b)):
- `list` pages with `page_size`/`page_token`; `next_page_token` is omitted on the last page; `prev_page_token`
  is set after the first. Terminated clusters are listed for 30 days (pinned ones always), job clusters too.
- `update` (`update_mask` + `cluster`) and `edit` (full replacement) only on RUNNING or TERMINATED clusters
  (others: 400 INVALID_STATE); a RUNNING cluster restarts (RESTARTING for `restart_polls` gets), a TERMINATED
  one stays TERMINATED; clusters with `cluster_source` JOB refuse both.
- Create/edit/update bodies are checked through the SDK's `ClusterSpec`/`UpdateClusterResource` round trip,
  the DCS launch rules, and the cluster policy named by `policy_id` (see databricks_policies.py).
- Every applied write is recorded in `fake.writes` (kind "cluster"), with the spec before and after.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import secrets
import string
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from databricks.sdk.service.compute import ClusterSpec, UpdateClusterResource

from tests.fakes.databricks_wire import WriteLog, bad, error, malformed, page_offset, page_token, roundtrip_problem
from tests.fakes.http import RecordedRequest, Response

DEFAULT_USER = "alice@example.com"
DCS_OFF = (
    "Custom containers is turned off for your deployment. "
    "Please contact your workspace administrator to use this feature."
)
DCS_ACCESS_MODES = ("SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED")
PENDING_MESSAGE = "Finding instances for new nodes, acquiring more instances if necessary"
CLUSTER_SOURCES = ("API", "JOB", "MODELS", "PIPELINE", "PIPELINE_MAINTENANCE", "SQL", "UI")
_DAY_MS = 86_400_000
_UPDATABLE = {f.name for f in dataclasses.fields(UpdateClusterResource)}
_SEED_DEFAULTS = {"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 1}


@dataclass
class ClusterScript:
    """How the next created cluster behaves: `pending_polls` gets in PENDING, then `final`.

    A TERMINATED/ERROR final passes through one TERMINATING get first, as a failed launch does.
    """

    pending_polls: int
    final: str = "RUNNING"
    termination_code: str | None = None
    termination_type: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    state_message: str | None = None


@dataclass
class FakeCluster:
    cluster_id: str
    spec: dict[str, Any]  # as submitted, docker basic_auth password included (never echoed by `get`)
    creator: str
    script: ClusterScript
    start_time: int
    gets: int = 0
    state: str = "PENDING"
    state_message: str = PENDING_MESSAGE
    termination_reason: dict[str, Any] | None = None
    terminated_time: int | None = None
    cluster_source: str = "API"
    pinned: bool = False
    last_restarted_time: int | None = None


def dcs_spec(url: str = "registry.example.com/team/img:1", **overrides: Any) -> dict[str, Any]:
    """A cluster spec the fake (and the DCS rules) accept, running `url`; `overrides` replace top-level fields."""
    spec: dict[str, Any] = {
        "cluster_name": "dcs-test",
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "i3.xlarge",
        "num_workers": 1,
        "autotermination_minutes": 30,
        "data_security_mode": "SINGLE_USER",
        "single_user_name": DEFAULT_USER,
        "docker_image": {"url": url},
    }
    spec.update(copy.deepcopy(overrides))
    return spec


def new_cluster_id() -> str:
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return f"{time.strftime('%m%d-%H%M%S', time.gmtime())}-{suffix}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class ClustersMixin:
    """Cluster endpoints of `FakeDatabricks`; state lives on the fake (`clusters`, `writes`)."""

    clusters: dict[str, FakeCluster]
    writes: WriteLog
    pending_polls: int
    restart_polls: int
    cluster_page_size: int
    spark_versions: list[dict[str, str]]
    node_types: list[dict[str, Any]]
    workspace_conf: dict[str, str | None]
    _scripts: deque[ClusterScript]
    _apply_policy: Callable[[dict[str, Any]], tuple[dict[str, Any], str | None]]  # from PoliciesMixin

    def _cluster_routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("POST", "clusters/create"): self._create,
            ("GET", "clusters/get"): self._get,
            ("GET", "clusters/list"): self._list,
            ("POST", "clusters/edit"): self._edit,
            ("POST", "clusters/update"): self._update,
            ("POST", "clusters/delete"): self._delete,
            ("POST", "clusters/permanent-delete"): self._permanent_delete,
            ("POST", "clusters/start"): self._start,
            ("GET", "clusters/spark-versions"): lambda r, u: Response(200, {"versions": self.spark_versions}),
            ("GET", "clusters/list-node-types"): lambda r, u: Response(200, {"node_types": self.node_types}),
        }

    # seeding --------------------------------------------------------------------------------------
    def add_cluster(
        self,
        spec: dict[str, Any] | None = None,
        *,
        state: str = "RUNNING",
        creator: str = DEFAULT_USER,
        cluster_source: str = "UI",
        cluster_id: str | None = None,
        termination_code: str | None = None,
        termination_type: str | None = None,
        parameters: dict[str, str] | None = None,
        state_message: str | None = None,
        terminated_days_ago: float = 0,
        pinned: bool = False,
    ) -> str:
        """Put a cluster in the workspace as if someone had made it (UI, Terraform, a job); returns its id.

        `spec` is merged onto a minimal valid spec and must survive the SDK's `ClusterSpec` round trip (the DCS
        rules are not applied: the cluster may predate them). A TERMINATED cluster gets an INACTIVITY reason
        unless `termination_code` is given.
        """
        body = {**_SEED_DEFAULTS, **copy.deepcopy(spec or {})}
        problem = roundtrip_problem(ClusterSpec, body, "seeded cluster spec")
        if problem or cluster_source not in CLUSTER_SOURCES:
            raise ValueError(problem or f"cluster_source must be one of {CLUSTER_SOURCES}")
        with self._lock:  # type: ignore[attr-defined]
            cid = cluster_id or new_cluster_id()
            cluster = FakeCluster(cid, body, creator, ClusterScript(0, state), _now_ms() - 3_600_000)
            cluster.cluster_source, cluster.pinned = cluster_source, pinned
            self.clusters[cid] = cluster
            if state in ("TERMINATED", "ERROR"):
                cluster.script = ClusterScript(
                    0,
                    state,
                    termination_code or "INACTIVITY",
                    termination_type or "SUCCESS",
                    parameters if parameters is not None else {"inactivity_duration_min": "120"},
                )
            self._settle(cluster, state, state_message)
            if cluster.terminated_time is not None:
                cluster.terminated_time -= int(terminated_days_ago * _DAY_MS)
        return cid

    # create ---------------------------------------------------------------------------------------
    def _create(self, request: RecordedRequest, user: str) -> Response:
        body = request.body
        if not isinstance(body, dict):
            return malformed()
        spec, problem = self._checked_spec(body)
        if problem:
            return bad(problem)
        script = self._scripts.popleft() if self._scripts else ClusterScript(self.pending_polls)
        cluster_id = new_cluster_id()
        self.clusters[cluster_id] = FakeCluster(cluster_id, spec, user, script, _now_ms())
        self.writes.add("cluster", cluster_id, "create", body, None, spec, user)
        return Response(200, {"cluster_id": cluster_id})

    def _checked_spec(self, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The spec as stored (policy values applied) and the first problem the API would report."""
        problem = self._spec_problem(body)
        if problem:
            return body, problem
        spec, problem = self._apply_policy(copy.deepcopy(body))
        return spec, problem or self._spec_problem(spec)  # values the policy filled in obey the rules too

    def _spec_problem(self, body: dict[str, Any]) -> str | None:
        drift = roundtrip_problem(ClusterSpec, body)
        if drift:
            return drift
        version = body.get("spark_version")
        if not version:
            return "Missing required field: spark_version"
        if version not in {v["key"] for v in self.spark_versions}:
            return f"Invalid spark version {version}."
        nodes = {n["node_type_id"]: n for n in self.node_types}
        if not body.get("node_type_id") and not body.get("instance_pool_id"):
            return "Missing required field: node_type_id"
        for key in ("node_type_id", "driver_node_type_id"):
            if body.get(key) and body[key] not in nodes:
                return f"Node type {body[key]} is not supported. Supported node types: {', '.join(nodes)}"
        minutes = body.get("autotermination_minutes", 0)
        if not isinstance(minutes, int) or minutes != 0 and not 10 <= minutes <= 10000:
            return "Automatic termination minutes must be 0 or between 10 and 10000."
        if len(body.get("custom_tags") or {}) > 45:
            return "Custom tags exceed the maximum of 45 tags per cluster."
        if len(body.get("init_scripts") or []) > 10:
            return "At most 10 init scripts can be specified."
        if any("dbfs" in script for script in body.get("init_scripts") or []):
            return "Init scripts stored on DBFS are end-of-life and cannot be used."
        mode = body.get("data_security_mode")
        if mode in DCS_ACCESS_MODES and not body.get("single_user_name"):
            return f"Missing required field: single_user_name (required for data_security_mode {mode})"
        if "docker_image" in body:
            return self._dcs_problem(body, version, mode, nodes)
        return None

    def _dcs_problem(
        self, body: dict[str, Any], version: str, mode: str | None, nodes: dict[str, dict[str, Any]]
    ) -> str | None:
        if not (body["docker_image"] or {}).get("url"):
            return "Missing required field: docker_image.url"
        if self.workspace_conf.get("enableDcs") != "true":
            return DCS_OFF
        unsupported = "Custom containers are not supported on"
        if "-ml-" in version:
            return f"{unsupported} Databricks Runtime for Machine Learning ({version})."
        if "-hls-" in version:
            return f"{unsupported} Databricks Runtime for Genomics ({version})."
        if version.startswith("apache-spark-"):
            return f"{unsupported} Light runtimes ({version})."
        graviton = any(
            nodes[body[k]].get("is_graviton") for k in ("node_type_id", "driver_node_type_id") if body.get(k) in nodes
        )
        if "-aarch64-" in version or graviton:
            return "Custom containers are not supported on AWS Graviton instances or aarch64 runtimes."
        if mode not in DCS_ACCESS_MODES:
            return (
                f"Custom containers are not supported with data_security_mode {mode or 'unset'}; "
                "use dedicated access mode (SINGLE_USER) with single_user_name."
            )
        return None

    # reads ----------------------------------------------------------------------------------------
    def _cluster_or_error(self, cluster_id: str | None) -> FakeCluster | Response:
        cluster = self.clusters.get(cluster_id or "")
        if cluster is None or cluster.terminated_time and cluster.terminated_time < _now_ms() - 60 * _DAY_MS:
            return bad(f"Cluster {cluster_id} does not exist")  # `get` answers for 60 days after termination
        return cluster

    def _get(self, request: RecordedRequest, user: str) -> Response:
        cluster = self._cluster_or_error(request.query.get("cluster_id"))
        if isinstance(cluster, Response):
            return cluster
        cluster.gets += 1
        self._advance(cluster)
        return Response(200, self._details(cluster))

    def _list(self, request: RecordedRequest, user: str) -> Response:
        q, multi = request.query, request.query_multi
        states = set(multi.get("filter_by.cluster_states", []))
        sources = set(multi.get("filter_by.cluster_sources", []))
        pinned = q.get("filter_by.is_pinned")
        policy = q.get("filter_by.policy_id")
        cutoff = _now_ms() - 30 * _DAY_MS
        found = [
            c
            for c in reversed(self.clusters.values())  # newest first
            if (c.pinned or not c.terminated_time or c.terminated_time >= cutoff)
            and (not states or c.state in states)
            and (not sources or c.cluster_source in sources)
            and (pinned is None or c.pinned == (pinned == "true"))
            and (policy is None or c.spec.get("policy_id") == policy)
        ]
        if q.get("sort_by.field") == "CLUSTER_NAME":
            found.sort(key=lambda c: c.spec.get("cluster_name", ""), reverse=q.get("sort_by.direction") == "DESC")
        offset = page_offset(q.get("page_token"))
        if offset is None:
            return bad(f"Invalid page token: {q.get('page_token')}")
        try:
            size = min(int(q.get("page_size") or self.cluster_page_size), self.cluster_page_size)
        except ValueError:
            return bad(f"Invalid page_size: {q.get('page_size')}")
        size = max(size, 1)
        answer: dict[str, Any] = {"clusters": [self._details(c) for c in found[offset : offset + size]]}
        if offset + size < len(found):
            answer["next_page_token"] = page_token(offset + size)
        if offset > 0:
            answer["prev_page_token"] = page_token(max(offset - size, 0))
        return Response(200, answer)

    # writes ---------------------------------------------------------------------------------------
    def _changeable(self, cluster: FakeCluster, verb: str) -> Response | None:
        if cluster.cluster_source == "JOB":
            return bad(f"Clusters created by the Databricks Jobs service cannot be {verb}.")
        if cluster.state not in ("RUNNING", "TERMINATED"):
            return error(400, "INVALID_STATE", f"Cluster {cluster.cluster_id} is in unexpected state {cluster.state}.")
        return None

    def _cluster_target(self, request: RecordedRequest) -> tuple[dict[str, Any], FakeCluster] | Response:
        """The JSON body of a write and the cluster it names, or the API's error."""
        body = request.body
        if not isinstance(body, dict):
            return malformed()
        cluster = self._cluster_or_error(body.get("cluster_id"))
        return cluster if isinstance(cluster, Response) else (body, cluster)

    def _edit(self, request: RecordedRequest, user: str) -> Response:
        target = self._cluster_target(request)
        if isinstance(target, Response):
            return target
        body, cluster = target
        refused = self._changeable(cluster, "edited")
        if refused:
            return refused
        spec, problem = self._checked_spec({k: v for k, v in body.items() if k != "cluster_id"})
        if problem:
            return bad(problem)
        self._replace_spec(cluster, spec, "edit", body, user)
        return Response(200, {})

    def _update(self, request: RecordedRequest, user: str) -> Response:
        target = self._cluster_target(request)
        if isinstance(target, Response):
            return target
        body, cluster = target
        mask = body.get("update_mask")
        paths = mask.split(",") if isinstance(mask, str) and mask else []
        wrong = [p for p in paths if p != "*" and (p.split(".")[0] not in _UPDATABLE or p != p.strip())]
        if not paths or wrong:
            return bad(f"Invalid update_mask: {mask!r} (unknown field {wrong[0] if wrong else '(empty)'})")
        problem = roundtrip_problem(UpdateClusterResource, body.get("cluster") or {})
        if problem:
            return bad(problem)
        refused = self._changeable(cluster, "updated")
        if refused:
            return refused
        spec, problem = self._checked_spec(_masked(cluster.spec, body.get("cluster") or {}, paths))
        if problem:
            return bad(problem)
        self._replace_spec(cluster, spec, "update", body, user)
        return Response(200, {})

    def _replace_spec(self, cluster: FakeCluster, spec: dict[str, Any], action: str, body: Any, user: str) -> None:
        before = cluster.spec
        cluster.spec = spec
        if cluster.state == "RUNNING":  # the new attributes take effect through a restart
            cluster.state, cluster.state_message, cluster.gets = "RESTARTING", "Restarting the cluster", 0
            cluster.script = ClusterScript(self.restart_polls, "RUNNING")
            cluster.last_restarted_time = _now_ms()
        self.writes.add("cluster", cluster.cluster_id, action, body, before, spec, user)

    def _delete(self, request: RecordedRequest, user: str) -> Response:
        target = self._cluster_target(request)
        if isinstance(target, Response):
            return target
        cluster = target[1]
        if cluster.state not in ("TERMINATING", "TERMINATED"):  # "nothing will happen" otherwise
            cluster.script = ClusterScript(0, "TERMINATED", "USER_REQUEST", "SUCCESS", {"username": user})
            self._settle(cluster, "TERMINATED", "Termination requested by " + user)
            self.writes.add("cluster", cluster.cluster_id, "delete", request.body, None, None, user)
        return Response(200, {})

    def _permanent_delete(self, request: RecordedRequest, user: str) -> Response:
        target = self._cluster_target(request)
        if isinstance(target, Response):
            return target
        cluster = target[1]
        del self.clusters[cluster.cluster_id]
        self.writes.add("cluster", cluster.cluster_id, "permanent-delete", request.body, cluster.spec, None, user)
        return Response(200, {})

    def _start(self, request: RecordedRequest, user: str) -> Response:
        target = self._cluster_target(request)
        if isinstance(target, Response):
            return target
        cluster = target[1]
        if cluster.state != "TERMINATED":
            return error(400, "INVALID_STATE", f"Cluster {cluster.cluster_id} is in unexpected state {cluster.state}.")
        cluster.script, cluster.gets = ClusterScript(self.pending_polls), 0
        cluster.state, cluster.state_message = "PENDING", PENDING_MESSAGE
        cluster.termination_reason = cluster.terminated_time = None
        self.writes.add("cluster", cluster.cluster_id, "start", request.body, None, None, user)
        return Response(200, {})

    # state machine --------------------------------------------------------------------------------
    def _advance(self, c: FakeCluster) -> None:
        if c.state not in ("PENDING", "RESTARTING", "TERMINATING") or c.gets <= c.script.pending_polls:
            return
        final = c.script.final
        if final in ("TERMINATED", "ERROR") and c.state == "PENDING":
            c.state, c.state_message = "TERMINATING", c.script.state_message or "Terminating the cluster"
            return
        self._settle(c, final, c.script.state_message)

    def _settle(self, c: FakeCluster, state: str, state_message: str | None) -> None:
        c.state = state
        s = c.script
        if state in ("TERMINATED", "ERROR"):
            code = s.termination_code or "UNKNOWN"
            c.termination_reason = {
                "code": code,
                "type": s.termination_type or "SERVICE_FAULT",
                "parameters": s.parameters,
            }
            c.terminated_time = _now_ms()
            default = s.parameters.get("databricks_error_message") or f"{code}: the cluster terminated."
            c.state_message = state_message or default
        else:
            c.state_message = state_message or ""
            c.termination_reason = c.terminated_time = None

    def _details(self, c: FakeCluster) -> dict[str, Any]:
        spec = copy.deepcopy(c.spec)
        auth = (spec.get("docker_image") or {}).get("basic_auth")
        if isinstance(auth, dict):
            auth.pop("password", None)
        details = {
            **spec,
            "cluster_id": c.cluster_id,
            "cluster_name": spec.get("cluster_name", ""),
            "driver_node_type_id": spec.get("driver_node_type_id", spec.get("node_type_id")),
            "state": c.state,
            "state_message": c.state_message,
            "start_time": c.start_time,
            "creator_user_name": c.creator,
            "cluster_source": c.cluster_source,
            "spec": copy.deepcopy(spec),
            "default_tags": {
                "Vendor": "Databricks",
                "Creator": c.creator,
                "ClusterName": spec.get("cluster_name", ""),
                "ClusterId": c.cluster_id,
            },
            "autotermination_minutes": spec.get("autotermination_minutes", 0),  # unset means never
        }
        if c.last_restarted_time:
            details["last_restarted_time"] = c.last_restarted_time
        if c.state == "RUNNING":
            driver_type = details["driver_node_type_id"]
            node = next((n for n in self.node_types if n["node_type_id"] == driver_type), {})
            seed = hashlib.sha256(c.cluster_id.encode()).hexdigest()  # stable across gets
            driver = {
                "private_ip": "10.0.1.23",
                "host_private_ip": "10.0.1.23",
                "node_id": seed[:32],
                "instance_id": "i-0" + seed[32:48],
                "start_timestamp": c.start_time,
            }
            details.update(
                {
                    "spark_context_id": int(seed[:15], 16),
                    "jdbc_port": 10000,
                    "cluster_memory_mb": node.get("memory_mb", 0),
                    "cluster_cores": node.get("num_cores", 0),
                    "driver": driver,
                }
            )
        if c.termination_reason:
            details["termination_reason"] = c.termination_reason
            details["terminated_time"] = c.terminated_time
        return details


def _masked(spec: dict[str, Any], changes: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`spec` with the masked paths taken from `changes` (AIP-161: a masked path absent there is cleared).

    Dotted sub-paths (`docker_image.url`) are applied as such; whether the service accepts them is UNVERIFIED
    (databricks-api.md (b)), the SDK docstring allows them.
    """
    new = copy.deepcopy(spec)
    if "*" in paths:
        new = {k: v for k, v in new.items() if k not in _UPDATABLE}
        new.update(copy.deepcopy(changes))
        return new
    for path in paths:
        keys = path.split(".")
        source: Any = changes
        for key in keys:
            source = source.get(key) if isinstance(source, dict) else None
        target = new
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if source is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = copy.deepcopy(source)
    return new
