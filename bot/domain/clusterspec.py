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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.domain.bases import BaseInfo
from bot.domain.catalog import ImageSpec, RegistrySpec
from bot.domain.ratelimit import pulls_needed
from bot.domain.refs import is_sha256_digest
from bot.errors import InvalidInput, InvalidInputs

DEFAULT_AUTOTERMINATION = 60
DEFAULT_WORKERS = 1
MAX_WORKERS = 1000
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
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_RUNTIME_KEY = re.compile(r"^(\d+)\.(\d+)\.x-(?:([a-z0-9-]+)-)?scala(\d+\.\d+)\Z")
_WORKSPACE_ROOTS = ("/Workspace/", "/Users/", "/Shared/", "/Repos/")
INIT_SCRIPT_FIX = (
    "Use file:/path/in/image.sh, a workspace file (/Workspace/Users/you/x.sh), a volume "
    "(/Volumes/catalog/schema/volume/x.sh), s3://bucket/x.sh?region=us-west-2, "
    "abfss://container@account.dfs.core.windows.net/x.sh or gs://bucket/x.sh."
)


# ---------------------------------------------------------------- runtimes


@dataclass(frozen=True)
class Runtime:
    key: str
    name: str = ""
    major: int | None = None
    minor: int | None = None
    scala: str | None = None
    markers: frozenset[str] = frozenset()

    @property
    def lts(self) -> bool:
        return "LTS" in self.name.split() or " LTS" in self.name

    @property
    def beta(self) -> bool:
        return "beta" in self.name.lower()

    @property
    def photon(self) -> bool:
        return "photon" in self.markers

    @property
    def label(self) -> str:
        return self.name or self.key


def parse_runtime(key: str, name: str = "") -> Runtime:
    match = _RUNTIME_KEY.match(key or "")
    if not match:
        return Runtime(key=key, name=name)
    markers = frozenset(part for part in (match.group(3) or "").split("-") if part)
    return Runtime(key, name, int(match.group(1)), int(match.group(2)), match.group(4), markers)


def runtime_problem(runtime: Runtime) -> tuple[str, str] | None:
    """(reason, fix) when DCS cannot run on this runtime, else None."""
    key = runtime.key
    pick = "Pick a standard runtime such as 15.4.x-scala2.12 or 17.3.x-scala2.13 (`/dcs launch` lists them)."
    if key.startswith("apache-spark-"):
        return "is a Light runtime, which is not Databricks Runtime and cannot run custom containers", pick
    if "-ml-" in key or "ml" in runtime.markers:
        return "is a Databricks Runtime for Machine Learning, which custom containers do not support", (
            "Pick the standard runtime of the same version and install the ML libraries in the image."
        )
    if "-hls-" in key or "hls" in runtime.markers:
        return "is a Genomics runtime, which custom containers do not support", pick
    if "-aarch64-" in key or "aarch64" in runtime.markers:
        return "is an aarch64 (Graviton) runtime; custom containers run on x86_64 only", pick
    if runtime.major is None:
        return "is not a Databricks Runtime version key", pick
    return None


def _preferred_scala(major: int | None) -> str:
    return "2.13" if (major or 0) >= 17 else "2.12"


def _runtime_order(r: Runtime) -> tuple[Any, ...]:
    return (not r.lts, r.beta, -(r.major or 0), -(r.minor or 0), r.photon, r.scala != _preferred_scala(r.major), r.key)


def dcs_runtimes(versions: Iterable[Mapping[str, Any]]) -> list[Runtime]:
    """The runtimes of a `clusters/spark-versions` answer that DCS accepts: LTS first, newest first.

    Filtered here rather than with the SDK's `select_spark_version`, which skips DBR 17's scala2.13 keys.
    """
    runtimes = [parse_runtime(str(v.get("key", "")), str(v.get("name", ""))) for v in versions]
    return sorted((r for r in runtimes if runtime_problem(r) is None), key=_runtime_order)


def preferred_runtime(runtimes: Sequence[Runtime], base: BaseInfo | None) -> Runtime | None:
    """The runtime matching the image's base (15.4-LTS → 15.4.x-scala2.12), else the first offered."""
    target = base.runtime if base is not None else None
    if base is not None and target is None and base.gpu:
        target = (14, None)  # the CUDA 11.8 venv GPU images pair with DBR 14.x (databricks/containers)
    if target is not None:
        major, minor = target
        same = [r for r in runtimes if r.major == major and (minor is None or r.minor == minor) and not r.photon]
        if same:
            return min(same, key=_runtime_order)
    return runtimes[0] if runtimes else None


# ---------------------------------------------------------------- node types


@dataclass(frozen=True)
class NodeType:
    node_type_id: str
    num_cores: float = 0
    memory_mb: int = 0
    num_gpus: int = 0
    category: str = ""
    is_deprecated: bool = False
    is_graviton: bool = False
    is_hidden: bool = False

    @property
    def label(self) -> str:
        gpus = f", {self.num_gpus} GPU" if self.num_gpus else ""
        return f"{self.node_type_id} ({self.num_cores:g} cores, {self.memory_mb / 1024:g} GB{gpus})"


def node_type_from_dict(data: Mapping[str, Any]) -> NodeType:
    return NodeType(
        node_type_id=str(data.get("node_type_id", "")),
        num_cores=float(data.get("num_cores") or 0),
        memory_mb=int(data.get("memory_mb") or 0),
        num_gpus=int(data.get("num_gpus") or 0),
        category=str(data.get("category") or ""),
        is_deprecated=bool(data.get("is_deprecated")),
        is_graviton=bool(data.get("is_graviton")),
        is_hidden=bool(data.get("is_hidden")),
    )


def dcs_node_types(node_types: Iterable[Mapping[str, Any]], gpu_image: bool) -> list[NodeType]:
    """Node types to offer: current, x86_64, visible; GPU ones for GPU images only (and only those)."""
    return usable_nodes(map(node_type_from_dict, node_types), gpu_image)


def usable_nodes(nodes: Iterable[NodeType], gpu_image: bool) -> list[NodeType]:
    usable = [
        n for n in nodes if not (n.is_deprecated or n.is_graviton or n.is_hidden) and (n.num_gpus > 0) == gpu_image
    ]
    return sorted(usable, key=lambda n: (n.category, n.num_cores, n.memory_mb, n.node_type_id))


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class LaunchRequest:
    """What a person asked for (modal, `key=value` arguments or CLI flags), types already checked."""

    image: str
    runtime: str | None = None
    node_type: str | None = None
    driver_node_type: str | None = None
    num_workers: int | None = None
    min_workers: int | None = None
    max_workers: int | None = None
    autotermination_minutes: int = DEFAULT_AUTOTERMINATION
    init_scripts: tuple[str, ...] = ()
    spark_conf: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    cluster_name: str | None = None

    @property
    def autoscale(self) -> bool:
        return self.min_workers is not None or self.max_workers is not None


ARG_KEYS = {
    "runtime",
    "node_type",
    "driver_node_type",
    "workers",
    "min_workers",
    "max_workers",
    "autotermination",
    "init_script",
    "init_scripts",
    "name",
}
ARG_ALIASES = {
    "node": "node_type",
    "driver_node": "driver_node_type",
    "num_workers": "workers",
    "autotermination_minutes": "autotermination",
    "spark_version": "runtime",
}


def parse_launch_args(image: str, tokens: Sequence[str]) -> LaunchRequest:
    """`runtime=15.4.x-scala2.12 node_type=m5d.large workers=2 init_script=file:/x.sh spark.x=y tag.team=z`."""
    data: dict[str, Any] = {"image": image}
    problems: list[InvalidInput] = []
    for token in tokens:
        key, sep, value = token.partition("=")
        key = ARG_ALIASES.get(key.strip(), key.strip())
        if not sep or not key:
            problems.append(
                InvalidInput(
                    "arguments",
                    token,
                    "is not key=value",
                    "Write options as key=value, e.g. workers=2 (or leave them out).",
                )
            )
        elif key.startswith("spark."):
            data.setdefault("spark_conf", []).append((key, value))
        elif key.startswith("tag."):
            data.setdefault("tags", []).append((key[4:], value))
        elif key in ("init_script", "init_scripts"):
            data.setdefault("init_scripts", []).extend(v for v in value.split(",") if v.strip())
        elif key in ARG_KEYS:
            data[key] = value
        else:
            problems.append(
                InvalidInput(
                    key,
                    value,
                    "is not a launch option",
                    (f"Use {', '.join(sorted(ARG_KEYS - {'init_scripts'}))}, spark.<conf>=value or tag.<name>=value."),
                )
            )
    try:
        request = launch_request_from_dict(data)
    except InvalidInputs as exc:
        problems.extend(exc.problems)
    except InvalidInput as exc:
        problems.append(exc)
    _raise(problems)
    return request


def _integer(
    data: Mapping[str, Any], key: str, problems: list[InvalidInput], low: int, high: int, fix: str
) -> int | None:
    raw = data.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = int(str(raw).strip()) if not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        problems.append(InvalidInput(key, raw, f"is not a whole number from {low} to {high}", fix))
        return None
    return value


def launch_request_from_dict(data: Mapping[str, Any]) -> LaunchRequest:
    """Check the shape of every field (numbers are numbers, pairs are pairs); rules come in `plan_launch`."""
    p: list[InvalidInput] = []
    workers = _integer(data, "workers", p, 0, MAX_WORKERS, "Give the number of workers, e.g. workers=2.")
    low = _integer(data, "min_workers", p, 0, MAX_WORKERS, "Give the smallest number of workers, e.g. 1.")
    high = _integer(data, "max_workers", p, 1, MAX_WORKERS, "Give the largest number of workers, e.g. 4.")
    minutes = _integer(
        data, "autotermination", p, 0, 10000, "Use 10 to 10000 minutes (0 = never), e.g. autotermination=60."
    )
    if workers is not None and (low is not None or high is not None):
        p.append(
            InvalidInput(
                "workers",
                workers,
                "was given together with min_workers/max_workers",
                "Give a fixed number of workers or an autoscale range, not both.",
            )
        )
    elif (low is None) != (high is None):
        missing = "max_workers" if high is None else "min_workers"
        p.append(
            InvalidInput(
                missing,
                None,
                "is missing for autoscaling",
                "Give both min_workers and max_workers, e.g. min_workers=1 max_workers=4.",
            )
        )
    elif low is not None and high is not None and high <= low:
        p.append(
            InvalidInput(
                "max_workers",
                high,
                f"is not above min_workers ({low})",
                f"Databricks needs max_workers > min_workers: use max_workers={low + 1} or more.",
            )
        )
    if workers is None and low is None and high is None:
        workers = DEFAULT_WORKERS

    def text(key: str) -> str | None:
        value = data.get(key)
        if isinstance(value, str):
            return value.strip() or None
        return None if value is None else str(value)

    scripts = data.get("init_scripts") or []
    if isinstance(scripts, str):
        scripts = re.split(r"[\n,]", scripts)
    scripts = tuple(s.strip() for s in scripts if isinstance(s, str) and s.strip())
    pairs = {}
    for key in ("spark_conf", "tags"):
        raw = data.get(key) or ()
        items = list(raw.items()) if isinstance(raw, Mapping) else list(raw)
        pairs[key] = tuple((str(k).strip(), str(v).strip()) for k, v in items)
    _raise(p)
    return LaunchRequest(
        image=str(data.get("image") or ""),
        runtime=text("runtime"),
        node_type=text("node_type"),
        driver_node_type=text("driver_node_type"),
        num_workers=workers,
        min_workers=low,
        max_workers=high,
        autotermination_minutes=DEFAULT_AUTOTERMINATION if minutes is None else minutes,
        init_scripts=scripts,
        spark_conf=pairs["spark_conf"],
        tags=pairs["tags"],
        cluster_name=text("name"),
    )


def _raise(problems: list[InvalidInput]) -> None:
    if problems:
        raise problems[0] if len(problems) == 1 else InvalidInputs(problems)


# ---------------------------------------------------------------- init scripts


def init_script_entry(text: str, field: str = "init_scripts") -> dict[str, Any]:
    """One `init_scripts[]` item for a destination a person typed."""
    value = text.strip()
    if value.lower().startswith("dbfs:") or value.startswith("/dbfs/"):
        raise InvalidInput(
            field,
            value,
            "is on DBFS, and init scripts on DBFS are end-of-life",
            "Move the script to a workspace file or a Unity Catalog volume (/Volumes/...) and "
            "give that path, or bake it into the image and use file:/path.",
        )
    if value.startswith("file:/"):
        return {"file": {"destination": value}}
    if value.startswith("workspace:/"):
        return {"workspace": {"destination": value.removeprefix("workspace:")}}
    if value.startswith("/Volumes/"):
        return {"volumes": {"destination": value}}
    if value.startswith(_WORKSPACE_ROOTS):
        return {"workspace": {"destination": value}}
    if value.startswith("s3://"):
        parts = urlsplit(value)
        region = (parse_qs(parts.query).get("region") or [""])[0]
        if not parts.netloc or not region:
            raise InvalidInput(
                field,
                value,
                "is an S3 location without a region",
                "Databricks needs the bucket's region: add ?region=us-west-2 (your region).",
            )
        return {"s3": {"destination": f"s3://{parts.netloc}{parts.path}", "region": region}}
    if value.startswith("abfss://") and "@" in value:
        return {"abfss": {"destination": value}}
    if value.startswith("gs://"):
        return {"gcs": {"destination": value}}
    raise InvalidInput(field, value, "is not an init script location Databricks accepts", INIT_SCRIPT_FIX)


def init_script_label(entry: Mapping[str, Any]) -> str:
    kind, info = next(iter(entry.items()))
    return str(info.get("destination", kind))


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class ImageSource:
    """The image as the launch uses it: catalog entry, last good build, registry entry."""

    spec: ImageSpec
    build_id: int
    digest: str
    registry: RegistrySpec | None = None

    @property
    def url(self) -> str:
        return f"{self.spec.repository_ref.repository}@{self.digest}"


@dataclass(frozen=True)
class LaunchContext:
    """Facts from outside: who launches, what the workspace offers, the plaintext password if allowed."""

    user_email: str
    launched_by: str
    request_key: str
    runtimes: Sequence[Mapping[str, Any]] | None = None  # clusters/spark-versions; None = not checked
    node_types: Sequence[Mapping[str, Any]] | None = None  # clusters/list-node-types; None = not checked
    plaintext_password: str | None = field(default=None, repr=False)


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
    scripts = _check_scripts(request.init_scripts, p)
    conf = _spark_conf(request, runtime, base, p)
    tags = _tags(request, image, ctx, p)
    auth, shown_auth = _basic_auth(image.registry, ctx, p)
    name = request.cluster_name or f"dcs {image.spec.name} ({ctx.user_email.split('@')[0]})"
    if len(name) > 100:
        p.append(InvalidInput("name", name, "is longer than 100 characters", "Use a shorter cluster name."))
    _raise(p)
    assert runtime is not None
    if base.runtime is not None and (base.runtime[0] != runtime.major or base.runtime[1] not in (None, runtime.minor)):
        warnings.append(
            f"The image's base is {base.runtime_label}, the runtime is {runtime.major}.{runtime.minor}: "
            f"its OS, Java and Python were made for {base.runtime_label}. Prefer a "
            f"{base.runtime_label} runtime unless you have tested this pair."
        )
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
    if scripts:
        body["init_scripts"] = scripts
    docker: dict[str, Any] = {"url": image.url}
    shown_docker = dict(docker)
    if auth:
        docker["basic_auth"], shown_docker["basic_auth"] = auth, shown_auth
    body["docker_image"], shown = docker, {**body, "docker_image": shown_docker}
    at_start, ceiling = pulls_needed(
        request.num_workers if not request.autoscale else None, request.min_workers, request.max_workers
    )
    kind = "none" if not auth else ("plaintext" if auth != shown_auth else "secret")
    return LaunchPlan(body, shown, tuple(warnings), image.url, runtime, at_start, ceiling, kind)


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
