"""The real Python base: a Debian rootfs with CPython and pip in /databricks/python3, loaded reproducibly."""

from __future__ import annotations

import json

import pytest

from tests.support.containers import run_script
from tests.support.layers import ImageConfig, Layer, derive_image
from tests.support.namespace import Namespace
from tests.support.python_base import PATH, Face, overlay_layer
from tests.support.python_base import build_image as build_dockerfile


def test_the_base_has_a_working_python_and_pip_in_the_databricks_venv(engine, python_base):
    result = run_script(
        engine,
        python_base,
        "/databricks/python3/bin/python -c 'import sys, ssl, sqlite3; print(sys.version_info[:2], sys.prefix)'"
        " && /databricks/python3/bin/pip --version && /databricks/python3/bin/python -m pip list --format=json",
    )

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "(3, 11) /databricks/python3"
    assert lines[1].startswith("pip ") and "/databricks/python3/lib/python3.11/site-packages/pip" in lines[1]
    assert {p["name"] for p in json.loads(lines[2])} >= {"pip", "setuptools"}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("bash -c 'echo $BASH_VERSION' | cut -d. -f1", "5\n", id="real-bash"),
        pytest.param("sudo -n true && sudo -n id -u", "0\n", id="sudo"),
        pytest.param("ip -V | cut -d, -f1", "ip utility\n", id="iproute2"),
        pytest.param("ps -p 1 -o comm=", "sh\n", id="procps"),
        pytest.param("which setfacl curl", "/usr/bin/setfacl\n/usr/bin/curl\n", id="acl-curl"),
        pytest.param("java -version 2>&1 | head -1", 'openjdk version "1.8.0_392"\n', id="java-stub"),
        pytest.param(
            ". /etc/os-release; echo $ID $VERSION_ID; cut -d. -f1 /etc/debian_version", "ubuntu 22.04\n12\n", id="os"
        ),
        pytest.param("echo $LC_ALL $PYSPARK_PYTHON", "C.UTF-8 /databricks/python3/bin/python3\n", id="env"),
        pytest.param("id -un libraries && passwd -S libraries | cut -d' ' -f2", "libraries\nL\n", id="libraries-user"),
        pytest.param("grep -c . /etc/apt/sources.list", "1\n", id="apt-sources"),
    ],
)  # fmt: skip
def test_the_base_has_what_databricks_images_have(engine, python_base, script, expected):
    result = run_script(engine, python_base, script)

    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


def test_dpkg_query_lists_the_os_packages_the_cache_recorded(engine, python_base, python_rootfs):
    result = run_script(engine, python_base, "dpkg-query -W -f '${Package}\\t${Version}\\n'")

    assert result.exit_code == 0, result.stderr
    listed = dict(line.split("\t") for line in result.stdout.splitlines())
    assert listed == python_rootfs.packages
    assert {"python3.11", "python3-venv", "sudo", "iproute2", "procps", "bash", "coreutils"} <= listed.keys()


def test_the_image_id_is_a_function_of_the_cached_rootfs_and_the_face(engine, python_base, python_rootfs):
    face = Face()
    config = ImageConfig(
        arch=engine.version()["Arch"],
        diff_ids=(python_rootfs.layer.diff_id, Layer.of_bytes(face.layer()).diff_id),
        env=(f"PATH={PATH}", *(f"{k}={v}" for k, v in face.env)),
        cmd=("/bin/bash",),
        comment="dcs-bot tests python base",
    )

    image = engine.images.get(python_base)

    assert image.id == config.image_id
    assert image.attrs["RootFS"]["Layers"] == list(config.diff_ids)
    assert image.attrs["Created"].startswith("2024-01-01T00:00:00")


def test_the_cached_layer_is_what_its_diff_id_says(python_rootfs):
    assert Layer.of_file(python_rootfs.layer.source).diff_id == python_rootfs.layer.diff_id


def test_a_variant_is_one_thin_layer_with_files_env_and_removals(engine, python_base, python_variant):
    change = {
        "files": {"/opt/team/hello.sh": ("#!/bin/sh\necho hello from the variant\n", 0o755)},
        "remove": ["/usr/bin/java"],
        "env": {"TEAM": "data"},
        "os_release": ("debian", "12"),
    }
    variant = python_variant("variant-debian", **change)

    result = run_script(
        engine, variant, "/opt/team/hello.sh; echo $TEAM; . /etc/os-release; echo $ID; which java || echo no java"
    )

    assert result.stdout == "hello from the variant\ndata\ndebian\nno java\n"
    base_layers = engine.images.get(python_base).attrs["RootFS"]["Layers"]
    assert engine.images.get(variant).attrs["RootFS"]["Layers"][:-1] == base_layers
    same = python_variant("variant-debian-again", **change)
    assert engine.images.get(same).id == engine.images.get(variant).id


def test_images_are_named_under_the_runs_namespace(python_base, infra_namespace):
    assert python_base.startswith(f"dcs-test-{infra_namespace.run}/")


def test_cleanup_removes_the_namespaces_images_and_labelled_containers(engine, python_base, infra_namespace):
    own = Namespace(f"{infra_namespace.run}-cleanup")
    thin = own.ref("thin")
    derive_image(engine, python_base, overlay_layer({"/x": "1"}), thin)
    built = own.ref("built")
    build_dockerfile(engine, f"FROM {thin}\nRUN echo 2 > /y\n", built, labels=own.labels, network_mode="none")
    container = engine.containers.create(built, command=["true"], labels=own.labels)
    assert len(engine.images.list(name=f"{own.prefix}/*")) == 2

    own.cleanup(engine)

    assert not engine.images.list(name=f"{own.prefix}/*")
    assert not engine.containers.list(all=True, filters={"id": container.id})
    assert engine.images.get(python_base)  # what it did not create stays
