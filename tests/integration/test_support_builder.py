"""What the engine's builder does with build settings, as docker-py drives it (the classic builder of moby 20.10).

These pin down facts the real-images work designs around: which build arguments reach `docker history`, and
which Dockerfile features the classic builder lacks.
"""

from __future__ import annotations

import pytest

from tests.support.python_base import BuildFailed
from tests.support.python_base import build_image as build_dockerfile


def history_text(engine, ref: str) -> str:
    return "\n".join(str(step.get("CreatedBy")) for step in engine.images.get(ref).history())


def test_docker_py_builds_use_the_classic_builder(engine, python_base, infra_namespace):
    log = build_dockerfile(engine, f"FROM {python_base}\nRUN true\n", infra_namespace.ref("builder-classic"))

    assert "Removing intermediate container" in "".join(log)  # BuildKit prints no such line


def test_a_declared_arg_used_by_run_is_recorded_in_history_a_predefined_proxy_arg_is_not(
    engine, python_base, build_image
):
    ref = build_image(
        "builder-args",
        f"FROM {python_base}\nARG PIP_INDEX_URL\nRUN echo using the index\n",
        buildargs={
            "PIP_INDEX_URL": "https://user:token@index.example/simple",
            "HTTPS_PROXY": "http://proxy.example:3128",
        },
        network_mode="none",
    )

    history = history_text(engine, ref)

    assert "PIP_INDEX_URL=https://user:token@index.example/simple" in history
    assert "proxy.example" not in history


def test_the_classic_builder_rejects_run_mount_secrets(python_base, build_image):
    with pytest.raises(BuildFailed, match="--mount"):
        build_image(
            "builder-secret",
            f"FROM {python_base}\nRUN --mount=type=secret,id=pip cat /run/secrets/pip\n",
            network_mode="none",
        )
