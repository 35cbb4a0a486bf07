"""The fleet's reads and writes in one workspace, through the SDK: one inventory pass (every kind listed once,
paginated) and the edits a rollout makes. Each function is one bounded, translated SDK operation
(`DatabricksClient.run`); what the SDK pages through (clusters/list `page_size`, jobs/list `limit` with
`expand_tasks`, jobs/get `page_token` for jobs with more than 100 tasks or job clusters) is one operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.clients.databricks import LIST_PAGE_SIZE, DatabricksClient

JOBS_PAGE_SIZE = 100  # jobs/list `limit` is 1..100


@dataclass
class RawFleet:
    """What one pass listed, as wire-format dicts."""

    clusters: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0


def list_fleet(client: DatabricksClient) -> RawFleet:
    """Clusters (running and terminated), jobs with their tasks, instance pools and cluster policies: each once."""
    raw = RawFleet()
    raw.policies = client.run("list cluster policies", lambda w: [p.as_dict() for p in w.cluster_policies.list()])
    raw.clusters = client.run(
        "list clusters", lambda w: [c.as_dict() for c in w.clusters.list(page_size=LIST_PAGE_SIZE)]
    )
    # The SDK's JobsExt.list completes a job whose arrays have more than 100 entries with jobs/get pages.
    raw.jobs = client.run(
        "list jobs", lambda w: [j.as_dict() for j in w.jobs.list(expand_tasks=True, limit=JOBS_PAGE_SIZE)]
    )
    raw.pools = client.run("list instance pools", lambda w: [p.as_dict() for p in w.instance_pools.list()])
    raw.calls = 4
    return raw


def get_cluster_spec(client: DatabricksClient, cluster_id: str) -> dict[str, Any]:
    return client.run(f"read cluster {cluster_id}", lambda w: w.clusters.get(cluster_id=cluster_id).as_dict())


def get_job(client: DatabricksClient, job_id: str) -> dict[str, Any]:
    return client.run(f"read job {job_id}", lambda w: w.jobs.get(job_id=int(job_id)).as_dict())


def get_policy(client: DatabricksClient, policy_id: str) -> dict[str, Any]:
    return client.run(f"read policy {policy_id}", lambda w: w.cluster_policies.get(policy_id=policy_id).as_dict())


def update_cluster(client: DatabricksClient, body: Mapping[str, Any]) -> None:
    """clusters/update (`cluster_id`, `update_mask`, `cluster`: API 2.1): only the masked fields change. The SDK's
    waiter is dropped (it raises on a TERMINATED cluster even when the update worked)."""

    def run(w: Any) -> None:
        from databricks.sdk.service.compute import UpdateClusterResource

        w.clusters.update(
            cluster_id=body["cluster_id"],
            update_mask=body["update_mask"],
            cluster=UpdateClusterResource.from_dict(dict(body["cluster"])),
        )

    client.run(f"update cluster {body['cluster_id']}", run)


def update_job(client: DatabricksClient, body: Mapping[str, Any]) -> None:
    """jobs/update: each array entry sent replaces the stored one whole (send complete tasks/job clusters)."""

    def run(w: Any) -> None:
        from databricks.sdk.service.jobs import JobSettings

        w.jobs.update(job_id=int(body["job_id"]), new_settings=JobSettings.from_dict(dict(body["new_settings"])))

    client.run(f"update job {body['job_id']}", run)


def edit_policy(client: DatabricksClient, body: Mapping[str, Any]) -> None:
    """policies/clusters/edit with the body's fields (every editable field: an omitted one would be cleared)."""

    def run(w: Any) -> None:
        from databricks.sdk.service.compute import Library

        kwargs = {k: v for k, v in body.items() if k not in ("policy_id", "libraries")}
        if body.get("libraries"):
            kwargs["libraries"] = [Library.from_dict(x) for x in body["libraries"]]
        w.cluster_policies.edit(policy_id=body["policy_id"], **kwargs)

    client.run(f"edit policy {body.get('policy_id')}", run)


READERS = {"cluster": get_cluster_spec, "job": get_job, "policy": get_policy}
WRITERS = {"cluster_update": update_cluster, "job_update": update_job, "policy_edit": edit_policy}
