"""Databricks runtimes and node types as DCS sees them: which a custom container can run on, in what order.

Pure. Facts (../shared/reference/databricks.md): DCS runs neither on ML (`-ml-`, `-gpu-ml-`), Genomics
(`-hls-`), Light (`apache-spark-`) nor Graviton (`-aarch64-` keys, `is_graviton` nodes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.bases import BaseInfo

_RUNTIME_KEY = re.compile(r"^(\d+)\.(\d+)\.x-(?:([a-z0-9-]+)-)?scala(\d+\.\d+)\Z")


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
