"""Rollouts: the exact change that moves one workspace item to an image's new digest, and back. Pure.

Each function takes the item as the API returned it (wire-format dict) and answers a `Change`: the request to
send (exactly what `--dry-run` prints and what is recorded), what to send to restore the item afterwards (its
previous value, taken from the same read), or why it is not edited (`manual`, with the way forward).

How each kind changes (SDK 0.162): policies through `policies/clusters/edit` with every editable field sent
back (`definition` is a JSON string; a family policy keeps its rules in `policy_family_definition_overrides`);
clusters through `clusters/update` with `update_mask = "docker_image"` (plus `spark_conf` when the volumes
setting must be added), which only RUNNING or TERMINATED clusters accept; jobs through `jobs/update`, whose
array entries replace the stored ones whole, so each changed task or job cluster is sent complete and the others
are not sent at all. Instance pools cannot change `preloaded_docker_images`: they get the way forward.
Everything written passes the launch rules: dedicated access mode, no ML/Genomics/aarch64 runtime, a pinned
sha256 digest, Unity Catalog volumes switched on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.domain.clusterspec import VOLUMES_CONF
from bot.domain.fleet import URL_PATH, cluster_specs_of_job, parsed_url, repository_key
from bot.domain.refs import ImageRef, is_sha256_digest, parse_ref
from bot.errors import InvalidInput

Action = Literal["policy_edit", "cluster_update", "job_update", "manual", "unchanged"]
DEDICATED = ("SINGLE_USER", "DATA_SECURITY_MODE_DEDICATED")
_UNSUPPORTED_RUNTIME = ("-ml-", "-hls-", "-aarch64-", "apache-spark-")


@dataclass(frozen=True)
class Change:
    """What a rollout does to one item. `request`: the body sent; `restore`: the body that puts it back."""

    action: Action
    request: dict[str, Any] | None = None
    restore: dict[str, Any] | None = None
    locations: tuple[str, ...] = ()
    note: str = ""  # for `manual`: the way forward; otherwise e.g. "a running cluster restarts"
    problems: tuple[str, ...] = ()  # DCS rules the resulting spec would break: the item is not edited


@dataclass(frozen=True)
class Target:
    """The URL every changed place gets, and the docker_image written with it (auth from the registry entry)."""

    repository: ImageRef
    url: str
    basic_auth: Mapping[str, str] | None = field(default=None, repr=False)  # a {{secrets/...}} reference only

    def __post_init__(self) -> None:
        digest = parse_ref(self.url, "target").digest or ""
        if not is_sha256_digest(digest):
            raise InvalidInput("--to", self.url, "is not pinned to a sha256 digest", "Roll out a pushed build.")

    def names(self, url: Any) -> bool:
        """Whether `url` is an image of this repository (any tag or digest)."""
        ref = parsed_url(url)
        return ref is not None and repository_key(ref) == repository_key(self.repository)

    def docker_image(self, url: str | None = None) -> dict[str, Any]:
        image: dict[str, Any] = {"url": url or self.url}
        if self.basic_auth:
            image["basic_auth"] = dict(self.basic_auth)
        return image


def spec_problems(spec: Mapping[str, Any]) -> list[str]:
    """The launch rules a cluster spec breaks (the rollout would otherwise write an image onto it)."""
    problems = []
    mode = spec.get("data_security_mode")
    if mode not in DEDICATED:
        problems.append(
            f"data_security_mode is {mode or 'unset'}: custom images need dedicated access mode "
            "(SINGLE_USER with single_user_name); change it first"
        )
    runtime = str(spec.get("spark_version") or "")
    if any(marker in runtime for marker in _UNSUPPORTED_RUNTIME):
        problems.append(f"spark_version {runtime} is an ML, Genomics, aarch64 or Light runtime, which DCS does not run")
    return problems


def _with_volumes(conf: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**dict(conf or {}), VOLUMES_CONF: "true"}


def _moved_spec(spec: Mapping[str, Any], target: Target, url: str | None = None) -> dict[str, Any]:
    new = copy.deepcopy(dict(spec))
    new["docker_image"] = target.docker_image(url)
    if url is None:  # a rollout switches volumes on; a restore puts back exactly what was there
        new["spark_conf"] = _with_volumes(new.get("spark_conf"))
    return new


# ---------------------------------------------------------------- clusters


def cluster_change(cluster: Mapping[str, Any], target: Target) -> Change:
    """clusters/update of docker_image (and spark_conf when the volumes setting is missing)."""
    current = (cluster.get("docker_image") or {}).get("url")
    if current == target.url and (cluster.get("spark_conf") or {}).get(VOLUMES_CONF) == "true":
        return Change("unchanged", locations=("docker_image",))
    problems = spec_problems(cluster)
    fields = ["docker_image"]
    new: dict[str, Any] = {"docker_image": target.docker_image()}
    old: dict[str, Any] = {"docker_image": target.docker_image(current)}
    if (cluster.get("spark_conf") or {}).get(VOLUMES_CONF) != "true":
        fields.append("spark_conf")
        new["spark_conf"] = _with_volumes(cluster.get("spark_conf"))
        old["spark_conf"] = dict(cluster.get("spark_conf") or {})
    cid = str(cluster.get("cluster_id"))
    mask = ",".join(fields)
    state = cluster.get("state")
    note = "running: it restarts on the new image" if state == "RUNNING" else f"{state}: starts on it next time"
    return Change(
        "cluster_update",
        {"cluster_id": cid, "update_mask": mask, "cluster": new},
        {"cluster_id": cid, "update_mask": mask, "cluster": old},
        ("docker_image",),
        note,
        tuple(problems),
    )


# ---------------------------------------------------------------- jobs


def job_change(job: Mapping[str, Any], target: Target) -> Change:
    """jobs/update with each task or job cluster that names the image, complete, and nothing else."""
    settings = job.get("settings") or {}
    tasks, clusters, old_tasks, old_clusters = [], [], [], []
    locations: list[str] = []
    problems: list[str] = []
    for entry in settings.get("tasks") or []:
        moved = _move_entry(entry, target, locations, problems, f"tasks[{entry.get('task_key')}]")
        if moved is not None:
            tasks.append(moved)
            old_tasks.append(copy.deepcopy(entry))
    for entry in settings.get("job_clusters") or []:
        moved = _move_entry(entry, target, locations, problems, f"job_clusters[{entry.get('job_cluster_key')}]")
        if moved is not None:
            clusters.append(moved)
            old_clusters.append(copy.deepcopy(entry))
    if not tasks and not clusters:
        return Change("unchanged", locations=tuple(locations))
    job_id = job.get("job_id")
    new: dict[str, Any] = {}
    old: dict[str, Any] = {}
    if tasks:
        new["tasks"], old["tasks"] = tasks, old_tasks
    if clusters:
        new["job_clusters"], old["job_clusters"] = clusters, old_clusters
    return Change(
        "job_update",
        {"job_id": job_id, "new_settings": new},
        {"job_id": job_id, "new_settings": old},
        tuple(locations),
        "future runs use the new image (runs under way keep theirs)",
        tuple(problems),
    )


def _move_entry(
    entry: Mapping[str, Any], target: Target, locations: list[str], problems: list[str], where: str
) -> dict[str, Any] | None:
    """The entry with every cluster spec naming the image moved (None: nothing in it to change)."""
    moved = copy.deepcopy(dict(entry))
    changed = False
    for path, holder in (("new_cluster", moved), ("for_each_task.task.new_cluster", _inner(moved))):
        spec = holder.get("new_cluster") if holder is not None else None
        if not isinstance(spec, dict) or not target.names((spec.get("docker_image") or {}).get("url")):
            continue
        if (spec.get("docker_image") or {}).get("url") == target.url and (spec.get("spark_conf") or {}).get(
            VOLUMES_CONF
        ) == "true":
            continue
        locations.append(f"{where}.{path}")
        problems.extend(f"{where}.{path}: {p}" for p in spec_problems(spec))
        assert holder is not None
        holder["new_cluster"] = _moved_spec(spec, target)
        changed = True
    return moved if changed else None


def _inner(entry: dict[str, Any]) -> dict[str, Any] | None:
    inner = (entry.get("for_each_task") or {}).get("task")
    return inner if isinstance(inner, dict) else None


# ---------------------------------------------------------------- policies

POLICY_EDIT_FIELDS = (
    "name",
    "definition",
    "description",
    "max_clusters_per_user",
    "policy_family_id",
    "policy_family_definition_overrides",
    "libraries",
)


def policy_change(policy: Mapping[str, Any], target: Target) -> Change:
    """policies/clusters/edit with the `docker_image.url` rule naming the new URL, every other field as it was."""
    family = bool(policy.get("policy_family_id"))
    source = "policy_family_definition_overrides" if family else "definition"
    rules = _json_object(policy.get(source))
    rule = rules.get(URL_PATH) if isinstance(rules.get(URL_PATH), dict) else None
    if family and rule is None:
        # the family itself fixes or allows the URL: an override is how a family policy changes it
        effective = _json_object(policy.get("definition")).get(URL_PATH)
        rule = copy.deepcopy(effective) if isinstance(effective, dict) else None
    if rule is None:
        return Change("unchanged")
    moved = _moved_rule(rule, target)
    if moved == rule:
        return Change("unchanged", locations=(f"{source} ({rule.get('type')})",))
    new_rules = {**rules, URL_PATH: moved}
    base = {k: copy.deepcopy(policy[k]) for k in POLICY_EDIT_FIELDS if policy.get(k) not in (None, "", [])}
    if family:
        base.pop("definition", None)  # a family policy's definition is the effective one: never sent back
    request = {"policy_id": policy.get("policy_id"), **base, source: json.dumps(new_rules, sort_keys=True)}
    restore = {"policy_id": policy.get("policy_id"), **base}
    return Change(
        "policy_edit",
        request,
        restore,
        (f"{source} ({rule.get('type')})",),
        "changed first: clusters under it may then move",
    )


def _moved_rule(rule: Mapping[str, Any], target: Target) -> dict[str, Any]:
    moved = copy.deepcopy(dict(rule))
    if rule.get("type") == "fixed" and target.names(rule.get("value")):
        moved["value"] = target.url
    elif rule.get("type") == "allowlist":
        values: list[Any] = []
        for value in rule.get("values") or []:
            new = target.url if target.names(value) else value
            if new not in values:
                values.append(new)
        moved["values"] = values
        if "defaultValue" in moved and target.names(moved["defaultValue"]):
            moved["defaultValue"] = target.url
    return moved


def _json_object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


# ---------------------------------------------------------------- pools and items managed elsewhere


def pool_way_forward(pool: Mapping[str, Any], target: Target, users: Mapping[str, list[str]]) -> Change:
    """A pool cannot change its preloaded images (not editable; Terraform: force-new): what to do instead."""
    pool_id = str(pool.get("instance_pool_id"))
    pointing = "; ".join(f"{kind}: {', '.join(ids)}" for kind, ids in users.items() if ids) or "nothing else"
    note = (
        f"preloaded_docker_images cannot be changed on an existing pool. Create a new pool like "
        f'{pool.get("instance_pool_name") or pool_id} with preloaded_docker_images = [{{"url": "{target.url}"}}], '
        f"then point what uses {pool_id} at it (instance_pool_id) — {pointing} — and delete the old pool."
    )
    return Change("manual", locations=("preloaded_docker_images",), note=note)


def managed_elsewhere(owner: str, change: Change, target: Target) -> Change:
    """An item another tool deploys: the change to make in its source, not behind its back."""
    places = ", ".join(change.locations) or "docker_image"
    note = (
        f"Managed by {owner}: a direct edit would be undone by its next deploy. In its source, set "
        f'{places}{"" if places.endswith("docker_image") else ".docker_image"}.url = "{target.url}".'
    )
    if change.action == "policy_edit":
        note = f'Managed by {owner}: in its source, set the {places} rule for docker_image.url to "{target.url}".'
    return Change("manual", change.request, change.restore, change.locations, note, change.problems)


def pool_users(
    pool_id: str,
    clusters: list[Mapping[str, Any]],
    jobs: list[Mapping[str, Any]],
    policies: list[Mapping[str, Any]],
) -> dict[str, list[str]]:
    """What points at an instance pool: clusters, jobs (any cluster spec) and policies (a fixed pool id)."""

    def uses(spec: Mapping[str, Any]) -> bool:
        return pool_id in (spec.get("instance_pool_id"), spec.get("driver_instance_pool_id"))

    found: dict[str, list[str]] = {"clusters": [], "jobs": [], "policies": []}
    found["clusters"] = [str(c.get("cluster_id")) for c in clusters if uses(c)]
    found["jobs"] = [
        str(j.get("job_id")) for j in jobs if any(uses(s) for _, s in cluster_specs_of_job(j.get("settings") or {}))
    ]
    for policy in policies:
        rule = _json_object(policy.get("definition")).get("instance_pool_id") or {}
        if isinstance(rule, dict) and pool_id in (rule.get("value"), *(rule.get("values") or [])):
            found["policies"].append(str(policy.get("policy_id")))
    return found


PLANNERS: dict[str, Callable[[Mapping[str, Any], Target], Change]] = {
    "cluster": cluster_change,
    "job": job_change,
    "policy": policy_change,
}
