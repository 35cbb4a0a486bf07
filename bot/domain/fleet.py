"""The fleet: every cluster, job, instance pool and cluster policy of a workspace that names a catalog image.

Pure. The input is what one inventory pass listed (plain dicts in the SDK's wire shape: `clusters/list`,
`jobs/list?expand_tasks=true` completed by `jobs/get` pages, `instance-pools/list`, `policies/clusters/list`);
the output is one `FleetItem` per place an image is named, whatever created it. One pass serves every image: each
`docker_image.url` is parsed once and looked up in a dict of repositories, so the cost is the number of items,
not items × images.

Where an image is named (SDK 0.162 dataclasses): `ClusterDetails.docker_image`; `JobSettings.tasks[].new_cluster`,
`tasks[].for_each_task.task.new_cluster`, `job_clusters[].new_cluster` (`compute.ClusterSpec.docker_image`);
`InstancePoolAndStats.preloaded_docker_images[]`; a policy `definition` (a JSON string) or
`policy_family_definition_overrides` rule on the path `docker_image.url` (`fixed` value or `allowlist` values).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bot.domain.rebuild import LIVE_STATES, StaleCluster
from bot.domain.refs import ImageRef, parse_ref
from bot.errors import InvalidInput

FleetKind = Literal["cluster", "job", "pool", "policy"]
KINDS: tuple[FleetKind, ...] = ("policy", "cluster", "job", "pool")  # the order a rollout changes them in
URL_PATH = "docker_image.url"
# Clusters a job, a pipeline or a serving endpoint made: they are changed through their owner, not listed here.
OWNED_SOURCES = frozenset({"JOB", "PIPELINE", "PIPELINE_MAINTENANCE", "MODELS", "SQL"})


@dataclass(frozen=True)
class FleetItem:
    """One place in one workspace item that names a catalog image.

    `location` says where inside the item (`docker_image`, `tasks[etl].new_cluster`,
    `job_clusters[main].new_cluster`, `tasks[loop].for_each_task.task.new_cluster`, `preloaded_docker_images[0]`,
    `definition` / `policy_family_definition_overrides` with the rule type). `digest_or_tag` is the sha256 digest
    the URL pins, else `:tag`. `stale`: pinned to another digest than the image's current one. `managed_by`: the
    tool that owns the item (a rollout does not edit it behind that tool's back).
    """

    workspace: str
    kind: FleetKind
    item_id: str
    name: str
    image: str
    url: str
    digest_or_tag: str
    location: str
    state: str | None = None
    stale: bool = False
    managed_by: str | None = None

    @property
    def pinned(self) -> bool:
        return self.digest_or_tag.startswith("sha256:")

    @property
    def key(self) -> str:
        """Unique within a scan: workspace, kind, id and location."""
        return f"{self.workspace}/{self.kind}/{self.item_id}/{self.location}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pinned": self.pinned}


@dataclass
class WorkspaceScan:
    """What one workspace's pass found, or why it could not be listed (the other workspaces still are)."""

    workspace: str
    items: list[FleetItem] = field(default_factory=list)
    error: str | None = None
    calls: int = 0  # SDK operations (each paginated list is one; its pages are HTTP requests)
    counts: dict[str, int] = field(default_factory=dict)  # listed per kind
    raw: Any = field(default=None, repr=False)  # what was listed (bot/clients/databricks_fleet.RawFleet)


def parsed_url(url: Any) -> ImageRef | None:
    """A `docker_image.url` as found in a workspace, parsed; None when it is not an image reference."""
    if not isinstance(url, str) or not url:
        return None
    try:
        return parse_ref(url, URL_PATH)
    except InvalidInput:
        return None


def repository_key(ref: ImageRef) -> tuple[str, str]:
    """What two references of the same repository share (registry hosts compare case-insensitively)."""
    return ref.domain.lower(), ref.path


class RepoIndex:
    """Repository (`domain/path`) → catalog image names, with each image's current digest."""

    def __init__(self, images: Mapping[str, ImageRef], current: Mapping[str, str | None]) -> None:
        self.by_repo: dict[tuple[str, str], list[str]] = {}
        for name, ref in images.items():
            self.by_repo.setdefault(repository_key(ref), []).append(name)
        self.current = dict(current)

    def match(self, url: Any) -> tuple[list[str], str] | None:
        """(image names, digest or `:tag`) when `url` names one of the repositories; None otherwise."""
        ref = parsed_url(url)
        names = self.by_repo.get(repository_key(ref)) if ref is not None else None
        if not names or ref is None:
            return None
        return names, ref.digest or f":{ref.tag or 'latest'}"

    def is_stale(self, image: str, digest_or_tag: str) -> bool:
        current = self.current.get(image)
        return bool(current) and digest_or_tag.startswith("sha256:") and digest_or_tag != current


def managed_by(tags: Mapping[str, Any] | None, managed_tags: Iterable[tuple[str, str | None]]) -> str | None:
    """The ownership tag an admin named (DCS_MANAGED_TAGS) that these tags carry, as `key=value`."""
    for key, value in managed_tags:
        if tags and key in tags and (value is None or str(tags[key]) == value):
            return f"tag {key}={tags[key]}"
    return None


def job_managed_by(settings: Mapping[str, Any], managed_tags: Iterable[tuple[str, str | None]]) -> str | None:
    deployment = settings.get("deployment") or {}
    if deployment.get("kind") == "BUNDLE":
        source = deployment.get("metadata_file_path")
        return "a Databricks Asset Bundle" + (f" ({source})" if source else "")
    if deployment.get("kind") == "SYSTEM_MANAGED":
        return "Databricks (system-managed job)"
    if settings.get("edit_mode") == "UI_LOCKED":
        return "its deployment (edit_mode UI_LOCKED)"
    return managed_by(settings.get("tags"), managed_tags)


def cluster_specs_of_job(settings: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(location, new_cluster) for every cluster spec a job defines."""
    for task in settings.get("tasks") or []:
        key = task.get("task_key", "?")
        if isinstance(task.get("new_cluster"), dict):
            yield f"tasks[{key}].new_cluster", task["new_cluster"]
        inner = (task.get("for_each_task") or {}).get("task") or {}
        if isinstance(inner.get("new_cluster"), dict):
            yield f"tasks[{key}].for_each_task.task.new_cluster", inner["new_cluster"]
    for entry in settings.get("job_clusters") or []:
        if isinstance(entry.get("new_cluster"), dict):
            yield f"job_clusters[{entry.get('job_cluster_key', '?')}].new_cluster", entry["new_cluster"]


def policy_url_rules(policy: Mapping[str, Any]) -> Iterator[tuple[str, str, list[str]]]:
    """(field, rule type, URLs) for the `docker_image.url` rule in a policy's definition and its family overrides.

    A family policy's `definition` is the effective one (family rules with the overrides merged); the rule is
    reported where it can be changed: the overrides when they hold it, else the definition (for a family policy,
    its family: an override is the way to change it)."""
    for source in ("policy_family_definition_overrides", "definition"):
        rule = _url_rule(policy.get(source))
        if rule is None:
            continue
        kind = str(rule.get("type") or "")
        if kind == "fixed":
            urls = [rule.get("value")]
        elif kind == "allowlist":
            urls = list(rule.get("values") or [])
        else:
            continue
        yield source, kind, [u for u in urls if isinstance(u, str)]
        return


def _url_rule(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    rule = parsed.get(URL_PATH) if isinstance(parsed, dict) else None
    return rule if isinstance(rule, dict) else None


def fleet_items(
    workspace: str,
    index: RepoIndex,
    *,
    clusters: Iterable[Mapping[str, Any]] = (),
    jobs: Iterable[Mapping[str, Any]] = (),
    pools: Iterable[Mapping[str, Any]] = (),
    policies: Iterable[Mapping[str, Any]] = (),
    managed_tags: Iterable[tuple[str, str | None]] = (),
) -> list[FleetItem]:
    """Every place these lists name a catalog image, policies first (the order a rollout changes them in)."""
    tags = tuple(managed_tags)
    items: list[FleetItem] = []

    def add(kind: FleetKind, item_id: Any, name: Any, url: Any, location: str, **extra: Any) -> None:
        found = index.match(url)
        if found is None:
            return
        names, ref = found
        for image in names:
            items.append(
                FleetItem(
                    workspace,
                    kind,
                    str(item_id),
                    str(name or ""),
                    image,
                    str(url),
                    ref,
                    location,
                    stale=index.is_stale(image, ref),
                    **extra,
                )
            )

    for policy in policies:
        for source, rule, urls in policy_url_rules(policy):
            for url in urls:
                add("policy", policy.get("policy_id"), policy.get("name"), url, f"{source} ({rule})")
    for cluster in clusters:
        if cluster.get("cluster_source") in OWNED_SOURCES:
            continue
        add(
            "cluster",
            cluster.get("cluster_id"),
            cluster.get("cluster_name"),
            (cluster.get("docker_image") or {}).get("url"),
            "docker_image",
            state=cluster.get("state"),
            managed_by=managed_by(cluster.get("custom_tags"), tags),
        )
    for job in jobs:
        settings = job.get("settings") or {}
        owner = job_managed_by(settings, tags)
        for location, spec in cluster_specs_of_job(settings):
            job_url = (spec.get("docker_image") or {}).get("url")
            add("job", job.get("job_id"), settings.get("name"), job_url, location, managed_by=owner)
    for pool in pools:
        owner = managed_by(pool.get("custom_tags"), tags)
        for i, preloaded in enumerate(pool.get("preloaded_docker_images") or []):
            add(
                "pool",
                pool.get("instance_pool_id"),
                pool.get("instance_pool_name"),
                (preloaded or {}).get("url"),
                f"preloaded_docker_images[{i}]",
                state=pool.get("state"),
                managed_by=owner,
            )
    return items


def still_on_older_digest(
    items: Iterable[FleetItem],
    new_digests: Mapping[str, str],
    moving_tags: Mapping[str, str],
    tag_digests: Mapping[tuple[str, str], str],
) -> list[StaleCluster]:
    """What a rebuild notice lists: items pinned to another digest than the image's new one (a tag the bot
    pushed counts as its digest), and live clusters on the moving tag (a restart picks the new digest up)."""
    found = []
    for item in items:
        new = new_digests.get(item.image)
        if not new:
            continue
        tag = item.digest_or_tag[1:] if not item.pinned else None
        moving = tag is not None and tag == moving_tags.get(item.image)
        if moving:
            if item.kind != "cluster" or item.state not in LIVE_STATES:
                continue  # it starts on the new digest anyway
            running = None
        else:
            running = item.digest_or_tag if item.pinned else tag_digests.get((item.image, tag or ""))
            if running is None or running == new:
                continue
        found.append(
            StaleCluster(
                cluster_id=item.item_id,
                cluster_name=item.name,
                image=item.image,
                state=item.state or "",
                running_digest=running,
                image_url=item.url,
                new_digest=new,
                moving=moving,
                kind=item.kind,
                workspace=item.workspace,
            )
        )
    return found
