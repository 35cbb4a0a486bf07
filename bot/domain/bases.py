"""What a base image is: Databricks flavour, runtime version, where pip lives.

Facts (../shared/reference/databricks.md): DBR >= 9 bases keep a virtualenv at /databricks/python3;
DBR <= 8.x bases are conda images with pip at /databricks/conda/envs/dcs-minimal/bin/pip; minimal and
rbase have no Python. Only -LTS tags receive patches. A mirror of a Databricks image
(`myacr.azurecr.io/databricksruntime/standard:15.4-LTS`) is recognised by its path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.refs import ImageRef

VENV_PIP = "/databricks/python3/bin/pip"
CONDA_PIP = "/databricks/conda/envs/dcs-minimal/bin/pip"
VENV_PYTHON = "/databricks/python3/bin/python"
CONDA_PYTHON = "/databricks/conda/envs/dcs-minimal/bin/python"

NO_PYTHON_FLAVOURS = {"minimal", "rbase", "gpu-base"}
CONDA_FLAVOURS = {"python-conda", "gpu-conda"}
KNOWN_FLAVOURS = {
    "minimal",
    "python",
    "dbfsfuse",
    "standard",
    "rbase",
    "python-conda",
    "gpu-base",
    "gpu-venv",
    "gpu-pytorch",
    "gpu-tensorflow",
    "gpu-conda",
}
LTS_RUNTIMES = ("9.1", "10.4", "11.3", "12.2", "13.3", "14.3", "15.4", "16.4", "17.3")

_VERSION_TAG = re.compile(r"^(\d+)\.(\d+|x)(?:-LTS)?\Z")


@dataclass(frozen=True)
class BaseInfo:
    flavour: str  # a Databricks flavour, or "custom" for an own base
    runtime: tuple[int, int | None] | None  # (15, 4), (8, None) for "8.x", None when the tag says nothing
    lts: bool
    python: str  # "venv", "conda" or "none"
    cuda: bool = False  # an own base on NVIDIA's CUDA images (nvidia/cuda:…), as databricksruntime/gpu-* are

    @property
    def is_databricks(self) -> bool:
        return self.flavour != "custom"

    @property
    def gpu(self) -> bool:
        return self.flavour.startswith("gpu-") or self.cuda

    @property
    def pip_path(self) -> str | None:
        return {"venv": VENV_PIP, "conda": CONDA_PIP}.get(self.python)

    @property
    def python_path(self) -> str | None:
        return {"venv": VENV_PYTHON, "conda": CONDA_PYTHON}.get(self.python)

    @property
    def runtime_label(self) -> str | None:
        if self.runtime is None:
            return None
        major, minor = self.runtime
        return f"{major}.{'x' if minor is None else minor}"


def classify_base(ref: ImageRef) -> BaseInfo:
    parts = ref.path.split("/")
    flavour = "custom"
    if len(parts) >= 2 and parts[-2] == "databricksruntime":
        flavour = parts[-1]
    runtime: tuple[int, int | None] | None = None
    tag = ref.tag or ""
    match = _VERSION_TAG.match(tag)
    if match and flavour != "custom":
        runtime = (int(match.group(1)), None if match.group(2) == "x" else int(match.group(2)))
    lts = tag.endswith("-LTS") and flavour != "custom"  # only Databricks patches its own -LTS tags
    if flavour in NO_PYTHON_FLAVOURS:
        python = "none"
    elif flavour in CONDA_FLAVOURS or (runtime is not None and runtime[0] <= 8):
        python = "conda"
    else:
        python = "venv"
    # databricks/containers' GPU images start FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04; an own base
    # on NVIDIA's images (Docker Hub or a mirror keeping the path) is a GPU image too
    cuda = flavour == "custom" and len(parts) >= 2 and parts[-2:] == ["nvidia", "cuda"]
    return BaseInfo(flavour=flavour, runtime=runtime, lts=lts, python=python, cuda=cuda)
