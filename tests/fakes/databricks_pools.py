"""Instance pools (API 2.0) of the fake workspace: list, get, edit, plus seeding.

- `instance-pools/list` is one unpaginated call answering `instance_pools` (`InstancePoolAndStats`: stats,
  state ACTIVE, `preloaded_docker_images`); `get` answers `GetInstancePool` by `instance_pool_id`.
- `instance-pools/edit` takes exactly the fields of the SDK's `InstancePoolsAPI.edit` (`instance_pool_id`,
  `instance_pool_name`, `node_type_id`, `custom_tags`, `idle_instance_autotermination_minutes`, `max_capacity`,
  `min_idle_instances`, `remote_disk_throughput`, `total_initial_remote_disk_size`); omitted optional fields are
  cleared (full replacement, UNVERIFIED). `preloaded_docker_images` cannot be edited (no such parameter in the
  SDK; Terraform marks it force-new): a body that tries to change them gets 400 INVALID_PARAMETER_VALUE. The
  wording of that error is UNVERIFIED (the real service may instead ignore the unknown field).
- Docker basic-auth passwords of preloaded images are kept but never echoed (as for clusters; UNVERIFIED).
- Every applied edit is recorded in `fake.writes` (kind "instance_pool") with the pool before and after.
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from databricks.sdk.service.compute import GetInstancePool, InstancePoolAndStats, InstancePoolsAPI

from tests.fakes.databricks_wire import (
    WriteLog,
    bad,
    error,
    malformed,
    method_parameters,
    roundtrip_problem,
    unknown_field,
)
from tests.fakes.http import RecordedRequest, Response

_EDIT_FIELDS = method_parameters(InstancePoolsAPI.edit)
_EDIT_OPTIONAL = _EDIT_FIELDS - {"instance_pool_id", "instance_pool_name", "node_type_id"}
PRELOADED_NOT_EDITABLE = (
    "preloaded_docker_images cannot be changed on an existing instance pool; "
    "create a new instance pool with the new images."
)


class PoolsMixin:
    """Instance pool endpoints of `FakeDatabricks`; state lives on the fake (`instance_pools`, `writes`)."""

    instance_pools: dict[str, dict[str, Any]]
    writes: WriteLog
    node_types: list[dict[str, Any]]

    def _pool_routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "instance-pools/list"): self._pools_list,
            ("GET", "instance-pools/get"): self._pools_get,
            ("POST", "instance-pools/edit"): self._pools_edit,
        }

    def add_instance_pool(
        self,
        instance_pool_name: str,
        *,
        node_type_id: str = "i3.xlarge",
        preloaded_docker_images: list[dict[str, Any]] | None = None,
        preloaded_spark_versions: list[str] | None = None,
        creator: str = "alice@example.com",
        **fields: Any,
    ) -> str:
        """Add a pool (any other `GetInstancePool` field through `fields`); returns its id."""
        pool_id = f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**6):06d}-pool-{secrets.token_hex(4)}"
        pool: dict[str, Any] = {
            "instance_pool_id": pool_id,
            "instance_pool_name": instance_pool_name,
            "node_type_id": node_type_id,
            "idle_instance_autotermination_minutes": 60,
            "min_idle_instances": 0,
            "enable_elastic_disk": True,
            **copy.deepcopy(fields),
        }
        if preloaded_docker_images is not None:
            pool["preloaded_docker_images"] = copy.deepcopy(preloaded_docker_images)
        if preloaded_spark_versions is not None:
            pool["preloaded_spark_versions"] = list(preloaded_spark_versions)
        problem = roundtrip_problem(GetInstancePool, pool, "seeded instance pool")
        if problem:
            raise ValueError(problem)
        pool["default_tags"] = {
            "Vendor": "Databricks",
            "DatabricksInstancePoolCreatorId": creator,
            "DatabricksInstancePoolId": pool_id,
        }
        with self._lock:  # type: ignore[attr-defined]
            self.instance_pools[pool_id] = pool
        return pool_id

    def _pool_json(self, pool: dict[str, Any]) -> dict[str, Any]:
        answer = copy.deepcopy(pool)
        for image in answer.get("preloaded_docker_images") or []:
            (image.get("basic_auth") or {}).pop("password", None)
        answer.update(
            {
                "state": "ACTIVE",
                "stats": {"used_count": 0, "idle_count": 0, "pending_used_count": 0, "pending_idle_count": 0},
                "status": {},
            }
        )
        return answer

    def _pools_list(self, request: RecordedRequest, user: str) -> Response:
        pools = [self._pool_json(p) for p in self.instance_pools.values()]
        for pool in pools:
            assert roundtrip_problem(InstancePoolAndStats, pool) is None, pool  # what the SDK can read
        return Response(200, {"instance_pools": pools})

    def _pool_or_error(self, pool_id: Any) -> dict[str, Any] | Response:
        pool = self.instance_pools.get(pool_id or "")
        if pool is None:
            return error(400, "RESOURCE_DOES_NOT_EXIST", f"Can't find an instance pool with id: {pool_id}.")
        return pool

    def _pools_get(self, request: RecordedRequest, user: str) -> Response:
        pool = self._pool_or_error(request.query.get("instance_pool_id"))
        return pool if isinstance(pool, Response) else Response(200, self._pool_json(pool))

    def _pools_edit(self, request: RecordedRequest, user: str) -> Response:
        body = request.body
        if not isinstance(body, dict):
            return malformed()
        pool = self._pool_or_error(body.get("instance_pool_id"))
        if isinstance(pool, Response):
            return pool
        if "preloaded_docker_images" in body and body["preloaded_docker_images"] != self._pool_json(pool).get(
            "preloaded_docker_images"
        ):
            return bad(PRELOADED_NOT_EDITABLE)
        body = {k: v for k, v in body.items() if k != "preloaded_docker_images"}
        problem = unknown_field(body, _EDIT_FIELDS) or roundtrip_problem(GetInstancePool, body)
        for required in ("instance_pool_name", "node_type_id"):
            if not problem and not body.get(required):
                problem = f"Missing required field: {required}"
        if problem:
            return bad(problem)
        if body["node_type_id"] not in {n["node_type_id"] for n in self.node_types}:
            return bad(f"Node type {body['node_type_id']} is not supported.")
        new = {k: v for k, v in pool.items() if k not in _EDIT_OPTIONAL}
        new.update(copy.deepcopy(body))
        self.writes.add("instance_pool", pool["instance_pool_id"], "edit", request.body, pool, new, user)
        self.instance_pools[pool["instance_pool_id"]] = new
        return Response(200, {})
