"""Launch requests: what a person asked for (form, `key=value` words, CLI flags), shapes checked, and init
script destinations. The DCS rules that need the image and the workspace are bot/domain/clusterspec.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bot.errors import InvalidInput, InvalidInputs

DEFAULT_AUTOTERMINATION = 60
DEFAULT_WORKERS = 1
MAX_WORKERS = 1000
_WORKSPACE_ROOTS = ("/Workspace/", "/Users/", "/Shared/", "/Repos/")
INIT_SCRIPT_FIX = (
    "Use file:/path/in/image.sh, a workspace file (/Workspace/Users/you/x.sh), a volume "
    "(/Volumes/catalog/schema/volume/x.sh), s3://bucket/x.sh?region=us-west-2, "
    "abfss://container@account.dfs.core.windows.net/x.sh or gs://bucket/x.sh."
)


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
    spark_env_vars: tuple[tuple[str, str], ...] = ()
    cluster_name: str | None = None
    allow_runtime_mismatch: bool = False  # an admin's override: run an image made for another runtime
    workspace: str | None = None  # a DCS_WORKSPACES name; None: the default workspace

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
    "allow_runtime_mismatch",
    "workspace",
}
ARG_ALIASES = {
    "node": "node_type",
    "driver_node": "driver_node_type",
    "num_workers": "workers",
    "autotermination_minutes": "autotermination",
    "spark_version": "runtime",
}


def parse_launch_args(image: str, tokens: Sequence[str]) -> LaunchRequest:
    """`runtime=15.4.x-scala2.12 node_type=m5d.large workers=2 init_script=file:/x.sh spark.x=y tag.team=z
    env.NAME=value`."""
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
        elif key.startswith("env."):
            data.setdefault("spark_env_vars", []).append((key[4:], value))
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
                    (
                        f"Use {', '.join(sorted(ARG_KEYS - {'init_scripts'}))}, spark.<conf>=value, "
                        "tag.<name>=value or env.<NAME>=value."
                    ),
                )
            )
    try:
        request = launch_request_from_dict(data)
    except InvalidInputs as exc:
        problems.extend(exc.problems)
    except InvalidInput as exc:
        problems.append(exc)
    raise_all(problems)
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
    override = _flag(data, "allow_runtime_mismatch", p)

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
    for key in ("spark_conf", "tags", "spark_env_vars"):
        raw = data.get(key) or ()
        items = list(raw.items()) if isinstance(raw, Mapping) else list(raw)
        pairs[key] = tuple((str(k).strip(), str(v).strip()) for k, v in items)
    raise_all(p)
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
        spark_env_vars=pairs["spark_env_vars"],
        cluster_name=text("name"),
        allow_runtime_mismatch=override,
        workspace=text("workspace"),
    )


def _flag(data: Mapping[str, Any], key: str, problems: list[InvalidInput]) -> bool:
    raw = data.get(key)
    if raw is None or isinstance(raw, bool):
        return bool(raw)
    word = str(raw).strip().lower()
    if word in ("yes", "true", "1", "on"):
        return True
    if word in ("no", "false", "0", "off", ""):
        return False
    problems.append(InvalidInput(key, raw, "is not yes or no", f"Write {key}=yes (or leave it out)."))
    return False


def raise_all(problems: list[InvalidInput]) -> None:
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
