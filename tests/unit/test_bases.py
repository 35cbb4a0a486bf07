"""What a base image is: Databricks flavour, runtime, LTS, and where pip lives."""

from __future__ import annotations

import pytest

from bot.domain.bases import CONDA_PIP, VENV_PIP, BaseInfo, classify_base
from bot.domain.refs import parse_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("base", "flavour", "runtime", "lts", "python", "pip", "label", "gpu", "databricks"),
    [
        # the Databricks layering: minimal → python → dbfsfuse → standard
        ("databricksruntime/standard:15.4-LTS", "standard", (15, 4), True, "venv", VENV_PIP, "15.4", False, True),
        ("databricksruntime/standard:16.4-LTS", "standard", (16, 4), True, "venv", VENV_PIP, "16.4", False, True),
        ("databricksruntime/standard:9.1-LTS", "standard", (9, 1), True, "venv", VENV_PIP, "9.1", False, True),
        ("databricksruntime/python:13.3-LTS", "python", (13, 3), True, "venv", VENV_PIP, "13.3", False, True),
        ("databricksruntime/dbfsfuse:14.3-LTS", "dbfsfuse", (14, 3), True, "venv", VENV_PIP, "14.3", False, True),
        ("databricksruntime/minimal:15.4-LTS", "minimal", (15, 4), True, "none", None, "15.4", False, True),
        ("databricksruntime/rbase:15.4-LTS", "rbase", (15, 4), True, "none", None, "15.4", False, True),
        # old tags: 9.x is a venv base, 8.x and older are conda bases
        ("databricksruntime/standard:9.x", "standard", (9, None), False, "venv", VENV_PIP, "9.x", False, True),
        ("databricksruntime/standard:8.x", "standard", (8, None), False, "conda", CONDA_PIP, "8.x", False, True),
        ("databricksruntime/python:8.x", "python", (8, None), False, "conda", CONDA_PIP, "8.x", False, True),
        ("databricksruntime/standard:7.3", "standard", (7, 3), False, "conda", CONDA_PIP, "7.3", False, True),
        (
            "databricksruntime/python-conda:9.x",
            "python-conda",
            (9, None),
            False,
            "conda",
            CONDA_PIP,
            "9.x",
            False,
            True,
        ),
        # moving tags say nothing about the runtime
        ("databricksruntime/standard:latest", "standard", None, False, "venv", VENV_PIP, None, False, True),
        ("databricksruntime/standard:experimental", "standard", None, False, "venv", VENV_PIP, None, False, True),
        ("databricksruntime/standard", "standard", None, False, "venv", VENV_PIP, None, False, True),
        ("databricksruntime/standard:15.4", "standard", (15, 4), False, "venv", VENV_PIP, "15.4", False, True),
        (f"databricksruntime/standard@{DIGEST}", "standard", None, False, "venv", VENV_PIP, None, False, True),
        # GPU images
        ("databricksruntime/gpu-base:cuda11.8", "gpu-base", None, False, "none", None, None, True, True),
        ("databricksruntime/gpu-venv:cuda11.8", "gpu-venv", None, False, "venv", VENV_PIP, None, True, True),
        ("databricksruntime/gpu-pytorch:cuda11.8", "gpu-pytorch", None, False, "venv", VENV_PIP, None, True, True),
        (
            "databricksruntime/gpu-tensorflow:cuda11.8",
            "gpu-tensorflow",
            None,
            False,
            "venv",
            VENV_PIP,
            None,
            True,
            True,
        ),
        ("databricksruntime/gpu-conda:cuda11", "gpu-conda", None, False, "conda", CONDA_PIP, None, True, True),
        # mirrors keep the Databricks path
        (
            "myacr.azurecr.io/databricksruntime/standard:15.4-LTS",
            "standard",
            (15, 4),
            True,
            "venv",
            VENV_PIP,
            "15.4",
            False,
            True,
        ),
        (
            "127.0.0.1:5000/mirror/databricksruntime/minimal:15.4-LTS",
            "minimal",
            (15, 4),
            True,
            "none",
            None,
            "15.4",
            False,
            True,
        ),
        (
            "myacr.azurecr.io/databricksruntime/standard:8.x",
            "standard",
            (8, None),
            False,
            "conda",
            CONDA_PIP,
            "8.x",
            False,
            True,
        ),
        # own bases: assumed to follow the /databricks/python3 layout; the tag is not a runtime
        ("ubuntu:22.04", "custom", None, False, "venv", VENV_PIP, None, False, False),
        # An own base is not patched by Databricks, whatever its tag says.
        ("myacr.azurecr.io/team/base:15.4-LTS", "custom", None, False, "venv", VENV_PIP, None, False, False),
        ("myacr.azurecr.io/team/base:8.x", "custom", None, False, "venv", VENV_PIP, None, False, False),
        ("team/databricksruntime-standard:15.4-LTS", "custom", None, False, "venv", VENV_PIP, None, False, False),
    ],
)
def test_classify_base(
    base: str,
    flavour: str,
    runtime: tuple[int, int | None] | None,
    lts: bool,
    python: str,
    pip: str | None,
    label: str | None,
    gpu: bool,
    databricks: bool,
) -> None:
    info = classify_base(parse_ref(base))
    assert info == BaseInfo(flavour=flavour, runtime=runtime, lts=lts, python=python)
    assert info.pip_path == pip
    assert info.runtime_label == label
    assert info.gpu is gpu
    assert info.is_databricks is databricks


def test_pip_paths_are_the_documented_ones() -> None:
    assert VENV_PIP == "/databricks/python3/bin/pip"
    assert CONDA_PIP == "/databricks/conda/envs/dcs-minimal/bin/pip"
