"""Cluster specs for custom-container launches: validated requests in, exact `clusters/create` bodies out.

Pure: no I/O. Facts (../shared/reference/databricks.md): DCS runs neither on ML (`-ml-`, `-gpu-ml-`),
Genomics (`-hls-`), Light (`apache-spark-`) nor Graviton (`-aarch64-` keys, `is_graviton` nodes);
only dedicated access mode (`SINGLE_USER` + `single_user_name`; AUTO would pick standard); Unity Catalog
volumes need `spark.databricks.unityCatalog.volumes.enabled=true`; images without the Python virtualenv
need `spark.databricks.driverNfs.enabled=false` on DBR >= 11; init scripts come from the image (`file:`),
workspace files, volumes, s3, abfss or gcs (dbfs is end-of-life), at most 10; at most 45 custom tags;
autotermination 0 (never) or 10..10000 minutes; autoscale max_workers strictly above min_workers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.config import DEFAULT_REGISTRY_SECRET_SCOPES
from bot.domain.bases import BaseInfo
from bot.domain.catalog import ImageSpec, RegistrySpec
from bot.domain.launch_request import (  # noqa: F401 - part of the launch API callers import from here
    LaunchRequest,
    init_script_entry,
    init_script_label,
    launch_request_from_dict,
    parse_launch_args,
    raise_all,
)
from bot.domain.parity import runtime_mismatch, target_for
from bot.domain.ratelimit import pulls_needed
from bot.domain.refs import is_sha256_digest
from bot.domain.runtimes import (  # noqa: F401 - idem
    NodeType,
    Runtime,
    dcs_node_types,
    dcs_runtimes,
    node_type_from_dict,
    parse_runtime,
    preferred_runtime,
    runtime_problem,
    usable_nodes,
)
from bot.domain.secret_refs import check_body, check_launch_value, check_registry_secret
from bot.errors import InvalidInput

MAX_INIT_SCRIPTS = 10
MAX_TAGS = 45
VOLUMES_CONF = "spark.databricks.unityCatalog.volumes.enabled"
DRIVER_NFS_CONF = "spark.databricks.driverNfs.enabled"
SINGLE_NODE_CONF = {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}
SINGLE_NODE_TAG = ("ResourceClass", "SingleNode")
TAG_LAUNCHED_BY, TAG_IMAGE, TAG_DIGEST, TAG_BUILD, TAG_REQUEST = (
    "dcs_launched_by",
    "dcs_image",
    "dcs_image_digest",
    "dcs_build",
    "dcs_request",
)
RESERVED_TAGS = {
    "Vendor",
    "Creator",
    "ClusterName",
    "ClusterId",
    "Name",
    SINGLE_NODE_TAG[0],
    TAG_LAUNCHED_BY,
    TAG_IMAGE,
    TAG_DIGEST,
    TAG_BUILD,
    TAG_REQUEST,
}
# Tag characters both AWS and Azure accept (Azure refuses < > % & \ ? / in keys).
_TAG_KEY = re.compile(r"^[A-Za-z0-9 +\-=._:@]{1,127}\Z")
_TAG_VALUE = re.compile(r"^[A-Za-z0-9 +\-=._:/@]{0,255}\Z")
_CONF_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ImageSource:
    """The image as the launch uses it: catalog entry, last good build, registry entry."""

    spec: ImageSpec
    build_id: int
    digest: str
    registry: RegistrySpec | None = None
    tag: str | None = None  # the build's immutable tag (never moved): what `pin = "tag"` registries launch

    @property
    def pinned_by_tag(self) -> bool:
        return self.registry is not None and self.registry.pin == "tag" and bool(self.tag)

    @property
    def public(self) -> bool:
        return self.spec.public or (self.registry is not None and self.registry.public)

    @property
    def url(self) -> str:
        """repo@sha256:… by default; repo:IMMUTABLE_TAG where the registry entry says pin = "tag"."""
        repository = self.spec.repository_ref.repository
        return f"{repository}:{self.tag}" if self.pinned_by_tag else f"{repository}@{self.digest}"


@dataclass(frozen=True)
class LaunchContext:
    """Facts from outside: who launches, what the workspace offers, the plaintext password if allowed."""

    user_email: str
    launched_by: str
    request_key: str
    runtimes: Sequence[Mapping[str, Any]] | None = None  # clusters/spark-versions; None = not checked
    node_types: Sequence[Mapping[str, Any]] | None = None  # clusters/list-node-types; None = not checked
    plaintext_password: str | None = field(default=None, repr=False)
    # secret scopes an operator allowed users to reference in Spark conf / env values (DCS_LAUNCH_SECRET_SCOPES)
    secret_scopes: frozenset[str] = frozenset()
    # scopes a registry's cluster_password_secret may name (DCS_REGISTRY_SECRET_SCOPES)
    registry_secret_scopes: frozenset[str] = DEFAULT_REGISTRY_SECRET_SCOPES


@dataclass(frozen=True)
class LaunchPlan:
    body: dict[str, Any] = field(repr=False)  # exactly what clusters/create gets (may hold a plaintext password)
    shown_body: dict[str, Any]  # the same with a plaintext password replaced by where it comes from
    warnings: tuple[str, ...]
    image_url: str
    runtime: Runtime
    pulls_at_start: int
    pulls_ceiling: int
    auth: str  # "none", "secret" or "plaintext"


def plan_launch(request: LaunchRequest, image: ImageSource, ctx: LaunchContext) -> LaunchPlan:
    """Apply every DCS rule; collect every problem (InvalidInputs) or return the exact body."""
    p: list[InvalidInput] = []
    warnings: list[str] = []
    base = image.spec.base_info
    if not is_sha256_digest(image.digest):
        p.append(
            InvalidInput(
                "image",
                image.digest,
                "is not a sha256 digest",
                "Push the image again (`dcs build NAME --push`) so its digest is known.",
            )
        )
    runtime = _check_runtime(request.runtime, ctx, p)
    nodes = {n.node_type_id: n for n in map(node_type_from_dict, ctx.node_types or [])}
    for key, value in (("node_type", request.node_type), ("driver_node_type", request.driver_node_type)):
        _check_node(key, value, nodes, ctx.node_types is not None, base.gpu, p, warnings)
    if not _EMAIL.match(ctx.user_email or ""):
        p.append(
            InvalidInput(
                "user",
                ctx.user_email,
                "is not an email address",
                (
                    "Dedicated access mode needs the launching user's Databricks login: allow the app the "
                    "users:read.email scope, or pass --user you@example.com on the CLI."
                ),
            )
        )
    if request.autotermination_minutes == 0:
        warnings.append("autotermination=0: the cluster never stops by itself; terminate it when you are done.")
    elif not 10 <= request.autotermination_minutes <= 10000:
        p.append(
            InvalidInput(
                "autotermination",
                request.autotermination_minutes,
                "is outside 10..10000 minutes",
                "Use 10 to 10000 minutes, or 0 to never terminate.",
            )
        )
    _check_secret_references(request, ctx.secret_scopes, p)
    # the image's own init scripts (baked in at build time) run first, on every launch; a launch adds its own
    baked = [f"file:{path}" for path in image.spec.content.init_script_paths()]
    scripts = _check_scripts(list(dict.fromkeys([*baked, *request.init_scripts])), p)
    conf = _spark_conf(request, runtime, base, p)
    env_vars = _env_vars(request, p)
    tags = _tags(request, image, ctx, p)
    auth, shown_auth = (None, None) if image.public else _basic_auth(image.registry, ctx, p)
    mismatch = runtime_mismatch(base, runtime.major, runtime.minor) if runtime is not None else None
    if mismatch and not request.allow_runtime_mismatch:
        p.append(_mismatch_problem(runtime, base, mismatch))
    name = request.cluster_name or f"dcs {image.spec.name} ({ctx.user_email.split('@')[0]})"
    if len(name) > 100:
        p.append(InvalidInput("name", name, "is longer than 100 characters", "Use a shorter cluster name."))
    raise_all(p)
    assert runtime is not None
    if mismatch:
        warnings.append(f"Runtime check overridden by an admin: {mismatch}.")
    body: dict[str, Any] = {"cluster_name": name, "spark_version": runtime.key, "node_type_id": request.node_type}
    if request.driver_node_type:
        body["driver_node_type_id"] = request.driver_node_type
    if request.autoscale:
        body["autoscale"] = {"min_workers": request.min_workers, "max_workers": request.max_workers}
    else:
        body["num_workers"] = request.num_workers
    body.update(
        {
            "autotermination_minutes": request.autotermination_minutes,
            "data_security_mode": "SINGLE_USER",
            "single_user_name": ctx.user_email,
            "spark_conf": conf,
            "custom_tags": tags,
        }
    )
    if env_vars:
        body["spark_env_vars"] = env_vars
    if scripts:
        body["init_scripts"] = scripts
    docker: dict[str, Any] = {"url": image.url}
    shown_docker = dict(docker)
    if auth:
        docker["basic_auth"], shown_docker["basic_auth"] = auth, shown_auth
    body["docker_image"], shown = docker, {**body, "docker_image": shown_docker}
    # once more over the finished body: no secret reference but the registry's own and allowed user values
    check_body(shown, ctx.secret_scopes, image.registry.cluster_password_secret if image.registry else None)
    at_start, ceiling = pulls_needed(
        request.num_workers if not request.autoscale else None, request.min_workers, request.max_workers
    )
    kind = "none" if not auth else ("plaintext" if auth != shown_auth else "secret")
    return LaunchPlan(body, shown, tuple(warnings), image.url, runtime, at_start, ceiling, kind)


def _mismatch_problem(runtime: Runtime | None, base: BaseInfo, mismatch: str) -> InvalidInput:
    """A runtime the image was not made for: users report NoSuchMethodError for exactly such pairs."""
    target = target_for(base)
    scala = target.scala[0] if target else "2.12"
    same = f"{base.runtime_label}.x-scala{scala}".replace(".x.x", ".x")
    asked = f"{runtime.major}.{runtime.minor}" if runtime else "?"
    return InvalidInput(
        "runtime",
        runtime.key if runtime else None,
        f"does not match the image: {mismatch}",
        (
            f"Pick a {base.runtime_label} runtime (e.g. {same}), or rebuild the image on the {asked}-LTS base; "
            "a bot admin can launch this pair anyway with allow_runtime_mismatch=yes "
            "(CLI: --allow-runtime-mismatch)."
        ),
    )


def _check_runtime(key: str | None, ctx: LaunchContext, p: list[InvalidInput]) -> Runtime | None:
    if not key:
        p.append(InvalidInput("runtime", key, "is missing", "Choose a runtime, e.g. runtime=15.4.x-scala2.12."))
        return None
    names = {str(v.get("key")): str(v.get("name", "")) for v in ctx.runtimes or []}
    runtime = parse_runtime(key, names.get(key, ""))
    problem = runtime_problem(runtime)
    if problem:
        p.append(InvalidInput("runtime", key, *problem))
        return None
    if ctx.runtimes is not None and key not in names:
        offered = ", ".join(r.key for r in dcs_runtimes(ctx.runtimes)[:6])
        p.append(InvalidInput("runtime", key, "is not offered by this workspace", f"Choose one of: {offered}."))
        return None
    return runtime


def _check_node(
    key: str,
    value: str | None,
    nodes: Mapping[str, NodeType],
    known: bool,
    gpu_image: bool,
    p: list[InvalidInput],
    warnings: list[str],
) -> None:
    if not value:
        if key == "node_type":
            p.append(InvalidInput(key, value, "is missing", "Choose a node type, e.g. node_type=m5d.large."))
        return
    if not known:
        return
    node = nodes.get(value)
    offered = ", ".join(n.node_type_id for n in usable_nodes(nodes.values(), gpu_image)[:8])
    if node is None:
        p.append(InvalidInput(key, value, "is not a node type of this workspace", f"Choose one of: {offered}."))
    elif node.is_graviton:
        p.append(
            InvalidInput(
                key,
                value,
                "is a Graviton (ARM) node; custom containers run on x86_64 only",
                f"Choose an x86_64 node type: {offered}.",
            )
        )
    elif node.is_deprecated:
        p.append(InvalidInput(key, value, "is deprecated", f"Choose a current node type: {offered}."))
    elif node.num_gpus and not gpu_image:
        p.append(
            InvalidInput(
                key,
                value,
                "is a GPU node type but the image is not a GPU image",
                f"Choose a CPU node type ({offered}) or build on a databricksruntime/gpu-* base.",
            )
        )
    elif gpu_image and not node.num_gpus:
        warnings.append(f"{key}={value} has no GPU: the GPU image will run, but without CUDA devices.")


def check_secret_references(request: LaunchRequest, scopes: frozenset[str]) -> None:
    """Raise for a secret reference anywhere in the request (cheap and pure: fit for a Slack ack)."""
    p: list[InvalidInput] = []
    _check_secret_references(request, scopes, p)
    raise_all(p)


def _check_secret_references(request: LaunchRequest, scopes: frozenset[str], p: list[InvalidInput]) -> None:
    """Every free text of the request; references resolve only in Spark conf and environment variable values."""
    texts: list[tuple[str, str | None, bool]] = [
        ("runtime", request.runtime, False),
        ("node_type", request.node_type, False),
        ("driver_node_type", request.driver_node_type, False),
        ("name", request.cluster_name, False),
        ("workspace", request.workspace, False),
        *((f"init_scripts[{i}]", s, False) for i, s in enumerate(request.init_scripts)),
    ]
    for group, pairs in (
        ("spark_conf", request.spark_conf),
        ("tags", request.tags),
        ("spark_env_vars", request.spark_env_vars),
    ):
        for key, value in pairs:
            texts += [(f"{group}.{key}", key, False), (f"{group}.{key}", value, group != "tags")]
    for field_name, text, resolved in texts:
        if text:
            try:
                check_launch_value(text, field_name, scopes, resolved=resolved)
            except InvalidInput as exc:
                p.append(exc)


def _env_vars(request: LaunchRequest, p: list[InvalidInput]) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in request.spark_env_vars:
        if not _ENV_NAME.match(key) or len(value) > 1000 or "\n" in value:
            p.append(
                InvalidInput(
                    f"spark_env_vars.{key}",
                    value,
                    "is not an environment variable name with a one-line value",
                    "Write NAME=value (letters, digits, '_'; not starting with a digit).",
                )
            )
        else:
            env[key] = value
    return env


def _check_scripts(scripts: Sequence[str], p: list[InvalidInput]) -> list[dict[str, Any]]:
    entries = []
    for script in scripts:
        try:
            entries.append(init_script_entry(script))
        except InvalidInput as exc:
            p.append(exc)
    if len(scripts) > MAX_INIT_SCRIPTS:
        p.append(
            InvalidInput(
                "init_scripts",
                len(scripts),
                f"is more than {MAX_INIT_SCRIPTS} scripts",
                f"Databricks runs at most {MAX_INIT_SCRIPTS}: merge some of them.",
            )
        )
    return entries


def _spark_conf(
    request: LaunchRequest, runtime: Runtime | None, base: BaseInfo, p: list[InvalidInput]
) -> dict[str, str]:
    enforced = {VOLUMES_CONF: "true"}
    if base.python != "venv" and runtime is not None and (runtime.major or 0) >= 11:
        enforced[DRIVER_NFS_CONF] = "false"
    if request.num_workers == 0 and not request.autoscale:
        enforced.update(SINGLE_NODE_CONF)
    conf = dict(enforced)
    for key, value in request.spark_conf:
        if not _CONF_KEY.match(key) or not value or len(value) > 1000 or "\n" in value:
            p.append(
                InvalidInput(
                    f"spark_conf.{key}",
                    value,
                    "is not a Spark conf key with a one-line value",
                    "Write spark.some.key=value (letters, digits, '.', '_', '-').",
                )
            )
        elif key in enforced and value != enforced[key]:
            why = {
                VOLUMES_CONF: "Unity Catalog volumes need it",
                DRIVER_NFS_CONF: "this image has no Python virtualenv and the driver NFS mount needs one",
            }.get(key, "a cluster with 0 workers is a single-node cluster")
            p.append(
                InvalidInput(
                    f"spark_conf.{key}",
                    value,
                    f"would override {enforced[key]!r}, set because {why}",
                    "Leave this key out.",
                )
            )
        else:
            conf[key] = value
    return conf


def _tags(request: LaunchRequest, image: ImageSource, ctx: LaunchContext, p: list[InvalidInput]) -> dict[str, str]:
    tags = {
        TAG_LAUNCHED_BY: ctx.launched_by,
        TAG_IMAGE: image.spec.name,
        TAG_DIGEST: image.digest,
        TAG_BUILD: str(image.build_id),
        TAG_REQUEST: ctx.request_key,
    }
    if request.num_workers == 0 and not request.autoscale:
        tags[SINGLE_NODE_TAG[0]] = SINGLE_NODE_TAG[1]
    for key, value in request.tags:
        if key in RESERVED_TAGS:
            p.append(
                InvalidInput(
                    f"tags.{key}", value, "is a tag the bot or Databricks sets itself", "Use another tag name."
                )
            )
        elif not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            p.append(
                InvalidInput(
                    f"tags.{key}",
                    value,
                    "has characters cloud tags do not allow",
                    "Use letters, digits, spaces and + - = . _ : @ (values may also use /).",
                )
            )
        else:
            tags[key] = value
    if len(tags) > MAX_TAGS:
        p.append(
            InvalidInput(
                "tags",
                len(request.tags),
                f"would make {len(tags)} custom tags (the limit is {MAX_TAGS}"
                f", {len(tags) - len(request.tags)} of them set by the bot)",
                "Drop some tags.",
            )
        )
    return tags


def _basic_auth(
    registry: RegistrySpec | None, ctx: LaunchContext, p: list[InvalidInput]
) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """(what is sent, what may be shown). Public images (no registry login) get no basic_auth."""
    if registry is None or not registry.username:
        return None, None
    username = registry.cluster_username or registry.username
    if registry.cluster_password_secret:
        try:
            check_registry_secret(
                registry.cluster_password_secret,
                f"registry[{registry.name}].cluster_password_secret",
                ctx.registry_secret_scopes,
            )
        except InvalidInput as exc:
            p.append(exc)
            return None, None
        auth = {"username": username, "password": registry.cluster_password_secret}
        return auth, auth
    field_name = f"registry[{registry.name}].cluster_password_secret"
    if not registry.allow_plaintext_password:
        p.append(
            InvalidInput(
                field_name,
                None,
                f"is not set, so the cluster could not log in to {registry.host}",
                (
                    "Store the password as a Databricks secret (`databricks secrets put-secret SCOPE KEY`) and set "
                    'cluster_password_secret = "{{secrets/SCOPE/KEY}}" on the registry entry.'
                ),
            )
        )
        return None, None
    if not ctx.plaintext_password:
        p.append(
            InvalidInput(
                f"registry[{registry.name}].password_env",
                registry.password_env,
                "names no value in the bot's environment",
                "Set that variable for the bot, or use cluster_password_secret instead.",
            )
        )
        return None, None
    shown = {"username": username, "password": f"<plaintext from ${registry.password_env}, not shown>"}
    return {"username": username, "password": ctx.plaintext_password}, shown
