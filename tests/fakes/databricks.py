"""A local Databricks workspace over real HTTP: clusters, jobs (2.2), instance pools, cluster policies, the
command execution API 1.2, workspace-conf and SCIM Me. One server is one workspace: start two for two.

Use the real SDK against it: `WorkspaceClient(host=fake.url, token=DEFAULT_TOKEN, retry_timeout_seconds=5)`.
Request bodies are checked through the SDK's own dataclasses (`ClusterSpec`, `UpdateClusterResource`,
`JobSettings`, the parameters of `InstancePoolsAPI.edit`/`ClusterPoliciesAPI.edit`) and, for clusters, the DCS
launch rules and the named cluster policy; answers and errors use the real wire format
(`{"error_code": ..., "message": ...}` with the real HTTP status; API 1.2 uses `{"error": ...}`).

What each API speaks, and how to seed it, is in its module: databricks_clusters.py (`add_cluster`,
`script_next_cluster`, `set_cluster_state`), databricks_jobs.py (`add_job`), databricks_pools.py
(`add_instance_pool`), databricks_policies.py (`add_policy`, `add_policy_family`), databricks_commands.py
(`script_command`, `commands()`).

Records: `fake.requests` (every HTTP request), `fake.writes` / `fake.writes_to(kind, id)` (every write applied,
with before/after — proves exactly-once edits and exact rollbacks), `created_specs()`.

Faults (matched by a path substring, optionally the HTTP method and the item id in the body or query):
- `fail_next(path, status, error_code, message, retry_after=, times=, item=, applied=False)` answers an error
  instead; with `applied=True` the request takes effect first (outcome unknown to the client: e.g. a 504 on
  create after the cluster was created).
- `reset_next(path, applied=True)` drops the connection with a TCP RST (after applying, by default).
- `delay_next(path, seconds)` answers late (read timeouts).
- `go_down()` / `come_up()`: the workspace refuses connections (state kept, same URL).
"""

from __future__ import annotations

import copy
import itertools
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config

from tests.fakes.databricks_clusters import (
    DCS_ACCESS_MODES,
    DCS_OFF,
    DEFAULT_USER,
    PENDING_MESSAGE,
    ClusterScript,
    ClustersMixin,
    FakeCluster,
    dcs_spec,
)
from tests.fakes.databricks_commands import CommandScript, CommandsMixin, ExecutedCommand, ExecutionContext
from tests.fakes.databricks_jobs import FakeJob, JobsMixin
from tests.fakes.databricks_policies import PoliciesMixin
from tests.fakes.databricks_pools import PoolsMixin
from tests.fakes.databricks_wire import ResourceWrite, WriteLog, bad, error
from tests.fakes.http import FakeHTTPServer, FaultQueue, RecordedRequest, Response

__all__ = [
    "DCS_ACCESS_MODES",
    "DCS_OFF",
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "NODE_TYPES",
    "PENDING_MESSAGE",
    "SPARK_VERSIONS",
    "ClusterScript",
    "CommandScript",
    "ExecutedCommand",
    "ExecutionContext",
    "FakeCluster",
    "FakeDatabricks",
    "FakeJob",
    "ResourceWrite",
    "dcs_spec",
]

DEFAULT_TOKEN = "dapi-test-token"
_ITEM_KEYS = ("cluster_id", "job_id", "policy_id", "instance_pool_id", "clusterId")
_PREFIXES = (
    ("/api/2.0/clusters/", "clusters/"),
    ("/api/2.1/clusters/", "clusters/"),
    ("/api/2.1/jobs/", "jobs/"),
    ("/api/2.2/jobs/", "jobs/"),
    ("/api/2.0/instance-pools/", "instance-pools/"),
    ("/api/2.0/policies/clusters/", "policies/"),
    ("/api/2.0/policy-families", "policy-families"),
    ("/api/1.2/", "1.2/"),
)


def _v(key: str, name: str) -> dict[str, str]:
    return {"key": key, "name": name}


SPARK_VERSIONS: list[dict[str, str]] = [
    _v("17.3.x-scala2.13", "17.3 LTS (includes Apache Spark 4.0.0, Scala 2.13)"),
    _v("17.3.x-photon-scala2.13", "17.3 LTS Photon (includes Apache Spark 4.0.0, Scala 2.13)"),
    _v("17.3.x-cpu-ml-scala2.13", "17.3 LTS ML (includes Apache Spark 4.0.0, Scala 2.13)"),
    _v("17.3.x-gpu-ml-scala2.13", "17.3 LTS ML (includes Apache Spark 4.0.0, GPU, Scala 2.13)"),
    _v("17.2.x-scala2.13", "17.2 (includes Apache Spark 4.0.0, Scala 2.13)"),
    _v("18.0.x-scala2.13", "18.0 Beta (includes Apache Spark 4.1.0, Scala 2.13)"),
    _v("16.4.x-scala2.12", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.12)"),
    _v("16.4.x-scala2.13", "16.4 LTS (includes Apache Spark 3.5.2, Scala 2.13)"),
    _v("16.4.x-photon-scala2.12", "16.4 LTS Photon (includes Apache Spark 3.5.2, Scala 2.12)"),
    _v("16.4.x-cpu-ml-scala2.12", "16.4 LTS ML (includes Apache Spark 3.5.2, Scala 2.12)"),
    _v("16.4.x-gpu-ml-scala2.12", "16.4 LTS ML (includes Apache Spark 3.5.2, GPU, Scala 2.12)"),
    _v("16.4.x-aarch64-scala2.12", "16.4 LTS aarch64 (includes Apache Spark 3.5.2, Scala 2.12)"),
    _v("15.4.x-scala2.12", "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)"),
    _v("15.4.x-photon-scala2.12", "15.4 LTS Photon (includes Apache Spark 3.5.0, Scala 2.12)"),
    _v("15.4.x-cpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, Scala 2.12)"),
    _v("15.4.x-gpu-ml-scala2.12", "15.4 LTS ML (includes Apache Spark 3.5.0, GPU, Scala 2.12)"),
    _v("15.4.x-aarch64-scala2.12", "15.4 LTS aarch64 (includes Apache Spark 3.5.0, Scala 2.12)"),
    _v("14.3.x-scala2.12", "14.3 LTS (includes Apache Spark 3.5.0, Scala 2.12)"),
    _v("13.3.x-scala2.12", "13.3 LTS (includes Apache Spark 3.4.1, Scala 2.12)"),
    _v("10.4.x-hls-scala2.12", "10.4 LTS Genomics (includes Apache Spark 3.2.1, Scala 2.12)"),
    _v("apache-spark-2.4.x-scala2.11", "Light 2.4 (includes Apache Spark 2.4, Scala 2.11)"),
]


def _node(
    node_type_id: str,
    cores: int,
    memory_mb: int,
    category: str,
    gpus: int = 0,
    deprecated: bool = False,
    graviton: bool = False,
) -> dict[str, Any]:
    return {
        "node_type_id": node_type_id,
        "instance_type_id": node_type_id,
        "num_cores": float(cores),
        "memory_mb": memory_mb,
        "num_gpus": gpus,
        "category": category,
        "is_deprecated": deprecated,
        "is_graviton": graviton,
        "is_hidden": False,
        "is_io_cache_enabled": node_type_id.startswith("i3"),
        "support_ebs_volumes": True,
        "support_cluster_tags": True,
        "support_port_forwarding": True,
        "photon_driver_capable": not gpus,
        "photon_worker_capable": not gpus,
        "display_order": 0,
        "description": node_type_id,
        "node_instance_type": {"instance_type_id": node_type_id},
    }


NODE_TYPES: list[dict[str, Any]] = [
    _node("m5d.large", 2, 8192, "General Purpose"),
    _node("m5d.xlarge", 4, 16384, "General Purpose"),
    _node("i3.xlarge", 4, 31232, "Storage Optimized"),
    _node("r5d.large", 2, 16384, "Memory Optimized"),
    _node("c5d.2xlarge", 8, 16384, "Compute Optimized"),
    _node("m4.large", 2, 8192, "General Purpose", deprecated=True),
    _node("m6gd.large", 2, 8192, "General Purpose", graviton=True),
    _node("g4dn.xlarge", 4, 16384, "GPU Accelerated", gpus=1),
    _node("g5.xlarge", 4, 16384, "GPU Accelerated", gpus=1),
    _node("p3.2xlarge", 8, 62464, "GPU Accelerated", gpus=1),
]


class FakeDatabricks(ClustersMixin, JobsMixin, PoolsMixin, PoliciesMixin, CommandsMixin, FakeHTTPServer):
    def __init__(
        self,
        tokens: dict[str, str] | None = None,
        admins: Iterable[str] = (DEFAULT_USER,),
        enable_dcs: str | None = "true",
        pending_polls: int = 2,
        spark_versions: list[dict[str, str]] | None = None,
        node_types: list[dict[str, Any]] | None = None,
        invalid_token_status: int = 403,
        workspace_id: str = "1234567890123456",
        restart_polls: int = 1,
        cluster_page_size: int = 100,
    ) -> None:
        super().__init__()
        self.tokens = dict(tokens) if tokens is not None else {DEFAULT_TOKEN: DEFAULT_USER}
        self.admins = set(admins)
        self.workspace_conf: dict[str, str | None] = {"enableDcs": enable_dcs}
        self.pending_polls = pending_polls
        self.spark_versions = copy.deepcopy(spark_versions if spark_versions is not None else SPARK_VERSIONS)
        self.node_types = copy.deepcopy(node_types if node_types is not None else NODE_TYPES)
        self.invalid_token_status = invalid_token_status
        self.workspace_id = workspace_id
        self.restart_polls = restart_polls
        self.cluster_page_size = cluster_page_size  # the server's cap for clusters/list pages
        self.job_array_page_size = 100  # jobs/get pages tasks, job_clusters, environments, parameters at 100
        self.clusters: dict[str, FakeCluster] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.instance_pools: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, dict[str, Any]] = {}
        self.policy_families: dict[str, dict[str, Any]] = {}
        self.contexts: dict[str, ExecutionContext] = {}
        self.writes = WriteLog()
        self._commands: dict[str, ExecutedCommand] = {}
        self._command_scripts: dict[str, list[CommandScript]] = {}
        self._scripts: deque[ClusterScript] = deque()
        self._job_ids: itertools.count[int] = self._new_job_ids()
        self._faults = FaultQueue()
        self._faults_after = FaultQueue()  # answered after the request took effect
        self._delays = FaultQueue()  # the real answer, late
        self._routes = {
            **self._cluster_routes(),
            **self._job_routes(),
            **self._pool_routes(),
            **self._policy_routes(),
            **self._command_routes(),
            ("GET", "/api/2.0/workspace-conf"): self._conf_get,
            ("PATCH", "/api/2.0/workspace-conf"): self._conf_patch,
            ("GET", "/api/2.0/preview/scim/v2/Me"): self._me,
        }

    # configuration --------------------------------------------------------------------------------
    def script_next_cluster(
        self,
        final: str = "RUNNING",
        termination_code: str | None = None,
        termination_type: str | None = None,
        parameters: dict[str, str] | None = None,
        state_message: str | None = None,
        pending_polls: int | None = None,
    ) -> None:
        polls = self.pending_polls if pending_polls is None else pending_polls
        script = ClusterScript(polls, final, termination_code, termination_type, parameters or {})
        script.state_message = state_message
        with self._lock:
            self._scripts.append(script)

    def set_cluster_state(
        self,
        cluster_id: str,
        state: str,
        state_message: str = "",
        termination_code: str | None = None,
        termination_type: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        """Move an existing cluster now (e.g. auto-termination); later gets keep this state."""
        with self._lock:
            c = self.clusters[cluster_id]
            c.script = ClusterScript(0, state, termination_code, termination_type, parameters or {})
            self._settle(c, state, state_message)

    def fail_next(
        self,
        path_substring: str,
        status: int = 500,
        error_code: str = "INTERNAL_ERROR",
        message: str = "Internal error",
        retry_after: int | None = None,
        times: int = 1,
        method: str | None = None,
        item: Any = None,
        applied: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with this error (after applying them if `applied`)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._add_fault(error(status, error_code, message, **headers), path_substring, times, method, item, applied)

    def reset_next(
        self, path_substring: str, times: int = 1, method: str | None = None, item: Any = None, applied: bool = True
    ) -> None:
        """Reset the connection (TCP RST) instead of answering; by default after the request took effect."""
        self._add_fault(Response(reset=True), path_substring, times, method, item, applied)

    def delay_next(self, path_substring: str, seconds: float, times: int = 1, method: str | None = None) -> None:
        """Answer the next matching requests normally, but only after `seconds` (the request takes effect)."""
        self._delays.add(_matcher(path_substring, method, None), Response(delay=seconds), times)

    def _add_fault(
        self, response: Response, path: str, times: int, method: str | None, item: Any, applied: bool
    ) -> None:
        (self._faults_after if applied else self._faults).add(_matcher(path, method, item), response, times)

    def clear_faults(self) -> None:
        for queue in (self._faults, self._faults_after, self._delays):
            queue.clear()

    def client(
        self, token: str = DEFAULT_TOKEN, retry_timeout_seconds: int = 5, http_timeout_seconds: int = 5
    ) -> WorkspaceClient:
        """A real SDK client for this workspace, with short retry/HTTP timeouts (the SDK defaults are 300/60 s)."""
        config = Config(
            host=self.url,
            token=token,
            retry_timeout_seconds=retry_timeout_seconds,
            http_timeout_seconds=http_timeout_seconds,
        )
        return WorkspaceClient(config=config)

    # inspection -----------------------------------------------------------------------------------
    def created_specs(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests_matching("POST", path_contains="/clusters/create")]

    def writes_to(
        self, kind: str | None = None, resource_id: Any = None, action: str | None = None
    ) -> list[ResourceWrite]:
        """Applied writes, oldest first, filtered by kind (cluster/job/policy/instance_pool), id and action."""
        with self._lock:
            return self.writes.select(kind, resource_id, action)

    @property
    def workspace_conf_patches(self) -> int:
        return len(self.requests_matching("PATCH", path="/api/2.0/workspace-conf"))

    # HTTP -----------------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Response:
        response = self._respond(request)
        response.headers.setdefault("X-Databricks-Org-Id", self.workspace_id)
        return response

    def _respond(self, request: RecordedRequest) -> Response:
        fault = self._faults.take(request)
        if fault is not None:
            return copy.deepcopy(fault)
        if request.path == "/.well-known/databricks-config":
            return Response(
                200, {"oidc_endpoint": f"{self.url}/oidc", "workspace_id": self.workspace_id, "cloud": "aws"}
            )
        token = request.bearer_token
        if not token:
            return error(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        user = self.tokens.get(token)
        if user is None:
            return error(
                self.invalid_token_status,
                self.invalid_token_status,
                "Invalid access token.",
                **{"X-Databricks-Reason-Phrase": "Invalid access token."},
            )
        route = request.path
        for prefix, short in _PREFIXES:
            if route.startswith(prefix):
                route = short + route.removeprefix(prefix)
                break
        handler = self._routes.get((request.method, route))
        if handler is None and request.method == "GET" and route.startswith("policy-families/"):
            family_id = route.removeprefix("policy-families/")
            handler = lambda r, u: self._family_get(r, u, family_id)  # noqa: E731
        if handler is None:
            return error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'")
        with self._lock:
            response = handler(request, user)
            after = self._faults_after.take(request) if response.status < 400 else None
            late = self._delays.take(request)
        if late is not None:
            response.delay = late.delay
        return copy.deepcopy(after) if after is not None else response

    # workspace-conf and SCIM ----------------------------------------------------------------------
    def _conf_get(self, request: RecordedRequest, user: str) -> Response:
        keys = [k for k in request.query.get("keys", "").split(",") if k]
        unknown = [k for k in keys if k not in self.workspace_conf]
        if not keys or unknown:
            return bad(f"Invalid keys: {unknown or keys}")
        return Response(200, {k: self.workspace_conf[k] for k in keys})

    def _conf_patch(self, request: RecordedRequest, user: str) -> Response:
        if user not in self.admins:
            return error(403, "PERMISSION_DENIED", "Only workspace admins can change workspace settings.")
        body = request.body
        if not isinstance(body, dict) or not body:
            return error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request")
        wrong = [k for k, v in body.items() if k not in self.workspace_conf or not isinstance(v, str)]
        if wrong:
            return bad(f"Invalid keys or non-string values: {wrong}")
        self.workspace_conf.update(body)
        return Response(204)

    def _me(self, request: RecordedRequest, user: str) -> Response:
        names = ["users", "admins"] if user in self.admins else ["users"]
        ids = [f"7{i:014d}" for i in range(1, len(names) + 1)]
        groups = [
            {"display": name, "type": "direct", "value": gid, "$ref": f"Groups/{gid}"}
            for name, gid in zip(names, ids, strict=True)
        ]
        uid = str(10**15 + zlib.crc32(user.encode()))
        return Response(
            200,
            {
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
                ],
                "id": uid,
                "userName": user,
                "displayName": user.split("@")[0].title(),
                "active": True,
                "emails": [{"type": "work", "value": user, "primary": True}],
                "groups": groups,
                "entitlements": [{"value": "allow-cluster-create"}, {"value": "workspace-access"}],
            },
        )


def _matcher(path: str, method: str | None, item: Any) -> Callable[[RecordedRequest], bool]:
    def match(r: RecordedRequest) -> bool:
        return path in r.path and (method is None or r.method == method.upper()) and _names_item(r, item)

    return match


def _names_item(request: RecordedRequest, item: Any) -> bool:
    if item is None:
        return True
    sources = [request.query, request.body if isinstance(request.body, dict) else {}]
    return any(str(source.get(key)) == str(item) for source in sources for key in _ITEM_KEYS if key in source)
