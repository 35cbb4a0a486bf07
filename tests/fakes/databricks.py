"""A local Databricks workspace: the clusters, workspace-conf and SCIM Me REST APIs over real HTTP.

Use the real SDK against it: `WorkspaceClient(host=fake.url, token=DEFAULT_TOKEN, retry_timeout_seconds=5)`.
Cluster create bodies are checked with the SDK's own `ClusterSpec` and the DCS launch rules.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
import string
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from databricks.sdk.service.compute import ClusterSpec

from tests.fakes.http import FakeHTTPServer, FaultQueue, RecordedRequest, Response

DEFAULT_TOKEN = "dapi-test-token"
DEFAULT_USER = "alice@example.com"
DCS_OFF = (
    "Custom containers is turned off for your deployment. "
    "Please contact your workspace administrator to use this feature."
)
DCS_ACCESS_MODES = ("SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED")
PENDING_MESSAGE = "Finding instances for new nodes, acquiring more instances if necessary"


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


def _new_cluster_id() -> str:
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return f"{time.strftime('%m%d-%H%M%S', time.gmtime())}-{suffix}"


def _error(status: int, error_code: str | int, message: str, **headers: str) -> Response:
    return Response(status, {"error_code": error_code, "message": message}, dict(headers))


def _bad(message: str) -> Response:
    return _error(400, "INVALID_PARAMETER_VALUE", message)


class FakeDatabricks(FakeHTTPServer):
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
        self.cluster_page_size = cluster_page_size  # the server's cap for clusters/list pages
        self.clusters: dict[str, FakeCluster] = {}
        self._scripts: deque[ClusterScript] = deque()
        self._faults = FaultQueue()
        self._faults_after = FaultQueue()  # answered after the request took effect
        self._delays = FaultQueue()  # the real answer, late

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
        applied: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with this error; with `applied`, after the request took
        effect (an outcome the client cannot know: a 504 on create after the cluster was created)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._add_fault(_error(status, error_code, message, **headers), path_substring, times, method, applied)

    def reset_next(self, path_substring: str, times: int = 1, method: str | None = None, applied: bool = True) -> None:
        """Reset the connection (TCP RST) instead of answering; by default after the request took effect."""
        self._add_fault(Response(reset=True), path_substring, times, method, applied)

    def delay_next(self, path_substring: str, seconds: float, times: int = 1, method: str | None = None) -> None:
        """Answer the next matching requests normally, but only after `seconds` (the request takes effect)."""
        self._delays.add(
            lambda r: path_substring in r.path and (method is None or r.method == method.upper()),
            Response(delay=seconds),
            times,
        )

    def _add_fault(self, response: Response, path: str, times: int, method: str | None, applied: bool) -> None:
        def match(r: RecordedRequest) -> bool:
            return path in r.path and (method is None or r.method == method.upper())

        (self._faults_after if applied else self._faults).add(match, response, times)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._faults_after.clear()
        self._delays.clear()

    def add_cluster(
        self,
        spec: dict[str, Any] | None = None,
        *,
        state: str = "RUNNING",
        creator: str = DEFAULT_USER,
        cluster_id: str | None = None,
    ) -> str:
        """Put a cluster in the workspace as if someone had made it (the DCS rules are not applied)."""
        body = {"cluster_name": "seeded", "spark_version": "15.4.x-scala2.12", "node_type_id": "m5d.large"}
        body.update(copy.deepcopy(spec or {}))
        with self._lock:
            cid = cluster_id or _new_cluster_id()
            cluster = FakeCluster(cid, body, creator, ClusterScript(0, state), int(time.time() * 1000) - 3_600_000)
            self.clusters[cid] = cluster
            self._settle(cluster, state, None)
        return cid

    # inspection -----------------------------------------------------------------------------------
    def created_specs(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests_matching("POST", path_contains="/clusters/create")]

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
            return _error(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")
        user = self.tokens.get(token)
        if user is None:
            return _error(
                self.invalid_token_status,
                self.invalid_token_status,
                "Invalid access token.",
                **{"X-Databricks-Reason-Phrase": "Invalid access token."},
            )
        route = request.path
        for prefix in ("/api/2.0/clusters/", "/api/2.1/clusters/"):
            if route.startswith(prefix):
                route = "clusters/" + route.removeprefix(prefix)
        handler = {
            ("POST", "clusters/create"): self._create,
            ("GET", "clusters/get"): self._get,
            ("GET", "clusters/list"): self._list,
            ("POST", "clusters/delete"): self._delete,
            ("POST", "clusters/permanent-delete"): self._delete,
            ("GET", "clusters/spark-versions"): lambda r, u: Response(200, {"versions": self.spark_versions}),
            ("GET", "clusters/list-node-types"): lambda r, u: Response(200, {"node_types": self.node_types}),
            ("GET", "/api/2.0/workspace-conf"): self._conf_get,
            ("PATCH", "/api/2.0/workspace-conf"): self._conf_patch,
            ("GET", "/api/2.0/preview/scim/v2/Me"): self._me,
        }.get((request.method, route))
        if handler is None:
            return _error(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'")
        with self._lock:
            response = handler(request, user)
            after = self._faults_after.take(request) if response.status < 400 else None
            late = self._delays.take(request)
        if late is not None:
            response.delay = late.delay
        return copy.deepcopy(after) if after is not None else response

    # clusters -------------------------------------------------------------------------------------
    def _create(self, request: RecordedRequest, user: str) -> Response:
        body = request.body
        if not isinstance(body, dict):
            return _error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request")
        problem = self._spec_problem(body)
        if problem:
            return _bad(problem)
        cluster_id = _new_cluster_id()
        script = self._scripts.popleft() if self._scripts else ClusterScript(self.pending_polls)
        self.clusters[cluster_id] = FakeCluster(cluster_id, copy.deepcopy(body), user, script, int(time.time() * 1000))
        return Response(200, {"cluster_id": cluster_id})

    def _spec_problem(self, body: dict[str, Any]) -> str | None:
        try:
            drift = _first_difference(body, ClusterSpec.from_dict(body).as_dict())
        except (AttributeError, TypeError, ValueError) as exc:
            drift = f"{type(exc).__name__}: {exc}"
        if drift:
            return f"Invalid value or unknown field in request: {drift}"
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

    def _cluster_or_error(self, cluster_id: str | None) -> FakeCluster | Response:
        cluster = self.clusters.get(cluster_id or "")
        return cluster if cluster is not None else _bad(f"Cluster {cluster_id} does not exist")

    def _get(self, request: RecordedRequest, user: str) -> Response:
        cluster = self._cluster_or_error(request.query.get("cluster_id"))
        if isinstance(cluster, Response):
            return cluster
        cluster.gets += 1
        self._advance(cluster)
        return Response(200, self._details(cluster))

    def _list(self, request: RecordedRequest, user: str) -> Response:
        states = set(request.query_multi.get("filter_by.cluster_states", []))
        clusters = [c for c in reversed(self.clusters.values()) if not states or c.state in states]
        return self._list_page(request, clusters)

    def _list_page(self, request: RecordedRequest, clusters: list[FakeCluster]) -> Response:
        """One page of at most `page_size` (capped by `cluster_page_size`); the last page has no next_page_token."""
        token = request.query.get("page_token") or "0"
        if not token.isdigit():
            return _bad(f"Invalid page token: {token}")
        offset = int(token)
        size = max(1, min(int(request.query.get("page_size") or self.cluster_page_size), self.cluster_page_size))
        answer: dict[str, Any] = {"clusters": [self._details(c) for c in clusters[offset : offset + size]]}
        if offset + size < len(clusters):
            answer["next_page_token"] = str(offset + size)
        if offset > 0:
            answer["prev_page_token"] = str(max(offset - size, 0))
        return Response(200, answer)

    def _delete(self, request: RecordedRequest, user: str) -> Response:
        cluster_id = (request.body or {}).get("cluster_id")
        cluster = self._cluster_or_error(cluster_id)
        if isinstance(cluster, Response):
            return cluster
        if request.path.endswith("permanent-delete"):
            del self.clusters[cluster.cluster_id]
        else:
            cluster.script = ClusterScript(0, "TERMINATED", "USER_REQUEST", "SUCCESS", {"username": user})
            self._settle(cluster, "TERMINATED", "Termination requested by " + user)
        return Response(200, {})

    def _advance(self, c: FakeCluster) -> None:
        if c.state not in ("PENDING", "TERMINATING") or c.gets <= c.script.pending_polls:
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
            c.terminated_time = int(time.time() * 1000)
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
            "cluster_source": "API",
            "spec": copy.deepcopy(spec),
            "default_tags": {
                "Vendor": "Databricks",
                "Creator": c.creator,
                "ClusterName": spec.get("cluster_name", ""),
                "ClusterId": c.cluster_id,
            },
            "autotermination_minutes": spec.get("autotermination_minutes", 0),  # unset means never
        }
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

    # workspace-conf and SCIM ----------------------------------------------------------------------
    def _conf_get(self, request: RecordedRequest, user: str) -> Response:
        keys = [k for k in request.query.get("keys", "").split(",") if k]
        unknown = [k for k in keys if k not in self.workspace_conf]
        if not keys or unknown:
            return _bad(f"Invalid keys: {unknown or keys}")
        return Response(200, {k: self.workspace_conf[k] for k in keys})

    def _conf_patch(self, request: RecordedRequest, user: str) -> Response:
        if user not in self.admins:
            return _error(403, "PERMISSION_DENIED", "Only workspace admins can change workspace settings.")
        body = request.body
        if not isinstance(body, dict) or not body:
            return _error(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request")
        bad = [k for k, v in body.items() if k not in self.workspace_conf or not isinstance(v, str)]
        if bad:
            return _bad(f"Invalid keys or non-string values: {bad}")
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


def _first_difference(sent: Any, parsed: Any, path: str = "") -> str | None:
    """Where the SDK's ClusterSpec round trip lost something: an unknown field or an invalid enum value."""
    if isinstance(sent, dict) and isinstance(parsed, dict):
        for key, value in sent.items():
            where = f"{path}.{key}" if path else key
            if key not in parsed:
                if value in ([], {}, None):  # as_dict() drops empty values the API accepts
                    continue
                return where
            found = _first_difference(value, parsed[key], where)
            if found:
                return found
        return None
    if isinstance(sent, list) and isinstance(parsed, list) and len(sent) == len(parsed):
        return next(
            (
                d
                for i, (a, b) in enumerate(zip(sent, parsed, strict=True))
                if (d := _first_difference(a, b, f"{path}[{i}]"))
            ),
            None,
        )
    return None if sent == parsed else path
