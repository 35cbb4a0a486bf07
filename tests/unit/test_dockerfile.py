"""Dockerfile rendering: deterministic text, cache-friendly layer order, pip path by runtime, pinned FROM."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.domain.bases import CONDA_PIP, CONDA_PYTHON, VENV_PIP, VENV_PYTHON
from bot.domain.catalog import image_from_dict
from bot.domain.dockerfile import (
    LABEL_BASE,
    LABEL_IMAGE,
    LABEL_INSTALL_STAGE,
    LABEL_SPEC,
    count_steps,
    render_build,
    render_dockerfile,
    spec_hash,
)
from bot.domain.ship import APPLY_SCRIPT, SHIP_SCRIPT
from bot.errors import InvalidInput

DIGEST = "sha256:" + "b" * 64
OTHER_DIGEST = "sha256:" + "c" * 64
PIP_INSTALL = ["install", "--no-cache-dir", "--disable-pip-version-check", "-r", "/dcs-install/requirements.txt"]
SPEC: dict[str, Any] = {
    "name": "team-pandas",
    "base": "databricksruntime/standard:15.4-LTS",
    "repository": "myacr.azurecr.io/team/pandas",
    "pip": ["requests>=2", "Pandas==2.2.2", "numpy"],
    "apt": ["zlib1g", "libgomp1", "g++"],
    "env": {"TZ": "UTC", "A_FLAG": "x y"},
}


def spec_of(**changes: Any):
    return image_from_dict(SPEC | changes)


def test_full_rendering_is_exactly_this_text() -> None:
    spec = spec_of()
    expected = (
        "# Rendered by dcs-bot for image team-pandas. Do not edit: change the catalog entry instead.\n"
        "# Stage 1 (discarded): pip with the build settings; only what it installed is copied on.\n"
        f"FROM databricksruntime/standard:15.4-LTS@{DIGEST} AS dcs-install\n"
        f'LABEL {LABEL_INSTALL_STAGE}="shared"\n'
        "COPY dcs-install/ /dcs-install/\n"
        "ENV PIP_CONFIG_FILE=/dcs-install/pip.conf\n"
        'RUN ["/databricks/python3/bin/python", "/dcs-install/ship.py", "snapshot"]\n'
        'RUN ["/databricks/python3/bin/pip", "install", "--no-cache-dir", "--disable-pip-version-check", '
        '"-r", "/dcs-install/requirements.txt"]\n'
        'RUN ["/databricks/python3/bin/python", "/dcs-install/ship.py", "collect"]\n'
        "\n"
        "# The image: the base, apt, what stage 1 installed.\n"
        f"FROM databricksruntime/standard:15.4-LTS@{DIGEST}\n"
        "RUN set -e \\\n"
        " && apt-get update \\\n"
        " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ libgomp1 zlib1g \\\n"
        " && apt-get clean \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "COPY --from=dcs-install /dcs-ship/ /\n"
        f"RUN {json.dumps(['/databricks/python3/bin/python', '-c', APPLY_SCRIPT])}\n"
        'ENV A_FLAG="x y"\n'
        'ENV TZ="UTC"\n'
        f'LABEL {LABEL_IMAGE}="team-pandas" {LABEL_SPEC}="{spec_hash(spec)}" {LABEL_BASE}="{DIGEST}"\n'
    )
    plan = render_build(spec, DIGEST)
    assert plan.dockerfile == expected
    assert plan.context["dcs-install/requirements.txt"] == b"Pandas==2.2.2\nnumpy\nrequests>=2\n"
    assert (
        plan.context["dcs-install/pip.conf"]
        == b"[global]\ndisable-pip-version-check = true\nprogress-bar = off\nno-input = true\n"
    )
    assert plan.context["dcs-install/ship.py"] == SHIP_SCRIPT.encode()
    assert (plan.buildargs, plan.network, plan.install_stage) == ({}, "bridge", None)


def test_same_spec_gives_byte_identical_output() -> None:
    first = render_dockerfile(spec_of(), DIGEST)
    # a spec built separately, with the lists in another order, renders the same bytes
    shuffled = spec_of(
        pip=["numpy", "requests>=2", "Pandas==2.2.2"],
        apt=["g++", "zlib1g", "libgomp1"],
        env={"A_FLAG": "x y", "TZ": "UTC"},
    )
    assert render_dockerfile(shuffled, DIGEST).encode() == first.encode()
    assert render_dockerfile(spec_of(), DIGEST) == first


def test_packages_are_sorted_and_apt_comes_before_the_installed_packages() -> None:
    plan = render_build(spec_of(pip=["zzz", "aaa", "mmm"], apt=["zlib1g", "curl", "make"]))
    lines = plan.dockerfile.splitlines()
    final = lines.index("FROM databricksruntime/standard:15.4-LTS")
    apt_line = next(i for i, line in enumerate(lines) if "apt-get install" in line)
    copy_line = lines.index("COPY --from=dcs-install /dcs-ship/ /")
    assert final < apt_line < copy_line
    assert lines[apt_line].endswith("--no-install-recommends curl make zlib1g \\")
    assert plan.context["dcs-install/requirements.txt"] == b"aaa\nmmm\nzzz\n"


def test_an_own_base_runs_pip_with_its_declared_python() -> None:
    text = render_dockerfile(spec_of(base="ubuntu:22.04", python="/usr/bin/python3", apt=[], env={}, pip=["a==1"]))
    run = [line for line in text.splitlines() if line.startswith(("RUN ", "ENV "))]
    assert run == [
        "ENV PIP_CONFIG_FILE=/dcs-install/pip.conf",
        "ENV PIP_BREAK_SYSTEM_PACKAGES=1",  # Debian's own python3 refuses pip otherwise (PEP 668); stage 1 only
        "RUN " + json.dumps(["/usr/bin/python3", "/dcs-install/ship.py", "snapshot"]),
        "RUN " + json.dumps(["/usr/bin/python3", "-m", "pip", *PIP_INSTALL]),
        "RUN " + json.dumps(["/usr/bin/python3", "/dcs-install/ship.py", "collect"]),
        "RUN " + json.dumps(["/usr/bin/python3", "-c", APPLY_SCRIPT]),
    ]


@pytest.mark.parametrize(
    ("base", "pip", "python"),
    [
        ("databricksruntime/standard:15.4-LTS", VENV_PIP, VENV_PYTHON),
        ("databricksruntime/python:9.1-LTS", VENV_PIP, VENV_PYTHON),
        ("databricksruntime/standard:9.x", VENV_PIP, VENV_PYTHON),
        ("databricksruntime/standard:latest", VENV_PIP, VENV_PYTHON),
        ("databricksruntime/standard:experimental", VENV_PIP, VENV_PYTHON),
        ("myacr.azurecr.io/databricksruntime/standard:16.4-LTS", VENV_PIP, VENV_PYTHON),
        ("databricksruntime/standard:8.x", CONDA_PIP, CONDA_PYTHON),
        ("databricksruntime/python:7.3", CONDA_PIP, CONDA_PYTHON),
        ("databricksruntime/python-conda:9.x", CONDA_PIP, CONDA_PYTHON),
    ],
)
def test_pip_and_python_paths_by_runtime(base: str, pip: str, python: str) -> None:
    text = render_dockerfile(spec_of(base=base, apt=[], env={}, pip=["pandas==2.2.2"]))
    run = [line for line in text.splitlines() if line.startswith("RUN ")]
    assert run == [
        "RUN " + json.dumps([python, "/dcs-install/ship.py", "snapshot"]),
        "RUN " + json.dumps([pip, *PIP_INSTALL]),
        "RUN " + json.dumps([python, "/dcs-install/ship.py", "collect"]),
        "RUN " + json.dumps([python, "-c", APPLY_SCRIPT]),
    ]


@pytest.mark.parametrize("base", ["databricksruntime/minimal:15.4-LTS", "databricksruntime/rbase:15.4-LTS"])
def test_bases_without_python_render_without_pip(base: str) -> None:
    text = render_dockerfile(spec_of(base=base, pip=[]))
    assert "pip" not in text
    assert "apt-get install" in text


@pytest.mark.parametrize(
    "base",
    ["databricksruntime/minimal:15.4-LTS", "databricksruntime/rbase:15.4-LTS", "databricksruntime/gpu-base:cuda11.8"],
)
def test_rendering_refuses_pip_on_a_base_without_python(base: str) -> None:
    # image_from_dict refuses this already; the renderer guards specs built any other way too
    spec = replace(spec_of(base="databricksruntime/standard:15.4-LTS"), base=base)
    with pytest.raises(InvalidInput) as caught:
        render_dockerfile(spec)
    assert caught.value.field == "pip"
    assert caught.value.reason == f"cannot be installed: {base} has no Python"
    assert "Use a Python base" in caught.value.fix


@pytest.mark.parametrize(
    ("base", "digest", "from_line", "label"),
    [
        ("databricksruntime/standard:15.4-LTS", DIGEST, f"FROM databricksruntime/standard:15.4-LTS@{DIGEST}", DIGEST),
        ("databricksruntime/standard:15.4-LTS", None, "FROM databricksruntime/standard:15.4-LTS", "unknown"),
        ("docker.io/library/ubuntu:22.04", None, "FROM ubuntu:22.04", "unknown"),
        ("docker.io/library/ubuntu:22.04", DIGEST, f"FROM ubuntu:22.04@{DIGEST}", DIGEST),
        (
            "127.0.0.1:5000/mirror/standard:15.4-LTS",
            DIGEST,
            f"FROM 127.0.0.1:5000/mirror/standard:15.4-LTS@{DIGEST}",
            DIGEST,
        ),
        (
            f"databricksruntime/standard:15.4-LTS@{DIGEST}",
            None,
            f"FROM databricksruntime/standard:15.4-LTS@{DIGEST}",
            DIGEST,
        ),
        (
            f"databricksruntime/standard:15.4-LTS@{DIGEST}",
            DIGEST,
            f"FROM databricksruntime/standard:15.4-LTS@{DIGEST}",
            DIGEST,
        ),
        (f"databricksruntime/standard@{DIGEST}", None, f"FROM databricksruntime/standard@{DIGEST}", DIGEST),
    ],
)
def test_from_is_pinned_by_digest_when_known(base: str, digest: str | None, from_line: str, label: str) -> None:
    text = render_dockerfile(spec_of(base=base, pip=[]), digest)
    assert [line for line in text.splitlines() if line.startswith("FROM")] == [from_line]
    assert f'{LABEL_BASE}="{label}"' in text
    # the install stage starts from exactly the same base
    own = {} if "databricksruntime/" in base else {"python": "/usr/bin/python3"}
    text = render_dockerfile(spec_of(base=base, **own), digest)
    froms = [line for line in text.splitlines() if line.startswith("FROM")]
    assert froms == [f"{from_line} AS dcs-install", from_line]


def test_a_pinned_base_that_resolves_to_another_digest_is_refused() -> None:
    spec = spec_of(base=f"databricksruntime/standard:15.4-LTS@{DIGEST}")
    with pytest.raises(InvalidInput) as caught:
        render_dockerfile(spec, OTHER_DIGEST)
    assert caught.value.field == "base"
    assert caught.value.reason == f"is pinned to {DIGEST} but {OTHER_DIGEST} was resolved"
    assert caught.value.fix == "Remove the digest from the base or resolve the same one."


def test_labels_carry_spec_hash_and_base_digest_and_no_time() -> None:
    spec = spec_of()
    text = render_dockerfile(spec, DIGEST)
    label = [line for line in text.splitlines() if line.startswith("LABEL ")]
    stage = f'LABEL {LABEL_INSTALL_STAGE}="shared"'
    image = f'LABEL {LABEL_IMAGE}="team-pandas" {LABEL_SPEC}="{spec_hash(spec)}" {LABEL_BASE}="{DIGEST}"'
    assert label == [stage, image]
    # nothing that changes between two builds of the same spec (a timestamp would defeat the layer cache)
    assert "LABEL" not in text.replace(stage, "").replace(image, "")


def test_spec_hash_is_a_sha256_hex_and_stable() -> None:
    value = spec_hash(spec_of())
    assert len(value) == 64 and int(value, 16) >= 0
    assert spec_hash(spec_of()) == value
    assert spec_hash(spec_of(pip=["numpy", "Pandas==2.2.2", "requests>=2"])) == value  # order does not matter


@pytest.mark.parametrize(
    "changes",
    [
        {"schedule": "0 3 * * 1"},
        {"owner": "U012AB3CD"},
        {"notify_channel": "#data-platform"},
        {"description": "new words"},
        {"tag": "stable"},
        {"immutable_tag": "{tag}-{spec}"},
        {"registry": "acr"},
        {"repository": "ghcr.io/team/pandas"},
        {"name": "another-name"},
    ],
)
def test_spec_hash_ignores_what_does_not_change_the_image(changes: dict[str, Any]) -> None:
    assert spec_hash(spec_of(**changes)) == spec_hash(spec_of())


@pytest.mark.parametrize(
    "changes",
    [
        {"pip": ["requests>=2", "Pandas==2.2.3", "numpy"]},
        {"pip": ["requests>=2", "Pandas==2.2.2"]},
        {"pip": ["requests>=2", "Pandas==2.2.2", "numpy", "polars"]},
        {"apt": ["zlib1g", "libgomp1"]},
        {"apt": ["zlib1g", "libgomp1", "g++", "curl"]},
        {"env": {"TZ": "Europe/Paris", "A_FLAG": "x y"}},
        {"env": {"TZ": "UTC"}},
        {"base": "databricksruntime/standard:16.4-LTS"},
        {"base": "databricksruntime/python:15.4-LTS"},
    ],
)
def test_spec_hash_changes_with_what_gets_built(changes: dict[str, Any]) -> None:
    assert spec_hash(spec_of(**changes)) != spec_hash(spec_of())


def test_apt_arguments_are_shell_quoted_names() -> None:
    text = render_dockerfile(spec_of(apt=["libc6:amd64=2.35-0ubuntu3", "g++", "openssh-server=1:8.9p1-3"], pip=[]))
    assert (
        " apt-get install -y --no-install-recommends g++ libc6:amd64=2.35-0ubuntu3 openssh-server=1:8.9p1-3 \\" in text
    )


@pytest.mark.parametrize(
    ("changes", "steps"),
    [
        ({}, 14),  # install stage: FROM, LABEL, COPY, ENV, 3 RUN; FROM, apt RUN, COPY, RUN, 2 ENV, LABEL
        ({"pip": []}, 5),
        ({"apt": []}, 13),
        ({"pip": [], "apt": [], "env": {}}, 2),
        ({"env": {"A": "1", "B": "2", "C": "3"}}, 15),
    ],
)
def test_count_steps_counts_instructions_not_lines(changes: dict[str, Any], steps: int) -> None:
    assert count_steps(render_dockerfile(spec_of(**changes))) == steps


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("", 0),
        ("# only a comment\n", 0),
        ("FROM a\n", 1),
        ("FROM a\n\n# c\nRUN x \\\n  && y \\\n  && z\nLABEL a=b\n", 3),
    ],
)
def test_count_steps_table(text: str, steps: int) -> None:
    assert count_steps(text) == steps
