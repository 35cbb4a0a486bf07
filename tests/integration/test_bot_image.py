"""The bot's own container image (Dockerfile): built by the real engine on a base the tests make (the real Python
base: no image can be pulled here), pip going through a local HTTPS index that only the test CA vouches for, then
started until `/healthz` answers and Docker itself reports it healthy, running as a non-root user and reaching
the engine through DOCKER_HOST on a mounted socket.

The wheelhouse (the bot's dependencies, as the host's pip resolves them) is cached per pyproject.toml, so only
the first run downloads anything.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from tests.fakes.slack import FakeSlack
from tests.support.namespace import Namespace
from tests.support.python_base import build_image, default_cache
from tests.support.servers import PackageIndex
from tests.support.tls import TestCA

ROOT = Path(__file__).parents[2]
SOURCES = ("bot", "handlers", "jobs")


def _wheelhouse() -> Path:
    """The bot's dependencies and build requirements as wheels, cached per pyproject.toml."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    where = default_cache() / f"bot-image-wheels-{key}"
    if not (where / "done").exists():
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(where), str(ROOT), "setuptools", "wheel"],
            check=True,
            timeout=600,
            capture_output=True,
        )
        for own in where.glob("dcs_bot-*.whl"):
            own.unlink()  # the image installs the bot from its sources, not from this wheel
        (where / "done").write_text("ok\n")
    return where


def _context(ca: TestCA) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        name: (ROOT / name).read_bytes() for name in ("pyproject.toml", "README.md", "deploy/build-ca/README.md")
    }
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[str(path.relative_to(ROOT))] = path.read_bytes()
    files["deploy/build-ca/ca.pem"] = ca.pem
    return files


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def bot_image(
    engine: docker.DockerClient, python_base: str, test_ca: TestCA, infra_namespace: Namespace, tmp_path: Path
) -> Iterator[str]:
    index = PackageIndex(tmp_path / "index", ca=test_ca)
    for wheel in _wheelhouse().glob("*.whl"):
        index.add_wheel(wheel)
    ref = infra_namespace.ref("dcs-bot", "test")
    with index:
        build_image(
            engine,
            (ROOT / "Dockerfile").read_text(encoding="utf-8"),
            ref,
            context=_context(test_ca),
            # no .pyc at install: the suite's build stays short (what is tested is the same)
            buildargs={"BASE": python_base, "PIP_INDEX_URL": index.index_url, "COMPILE": "0"},
            labels=infra_namespace.labels,
        )
        assert index.requests, "pip did not use the local index"
    yield ref


def test_the_bot_image_runs_as_non_root_and_answers_healthz(
    engine: docker.DockerClient, bot_image: str, infra_namespace: Namespace
) -> None:
    config = engine.images.get(bot_image).attrs["Config"]
    assert config["User"] == "dcs"
    healthcheck = config["Healthcheck"]["Test"]
    assert "/healthz" in " ".join(healthcheck)

    port = _free_port()
    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    volumes, groups, inside = {}, [], docker_host
    if docker_host.startswith("unix://"):
        sock = docker_host.removeprefix("unix://")
        volumes = {sock: {"bind": "/var/run/docker.sock", "mode": "rw"}}
        groups = [str(os.stat(sock).st_gid)]  # the socket's group, as docker-compose.example.yml says
        inside = "unix:///var/run/docker.sock"
    with FakeSlack() as slack:
        container = engine.containers.run(
            bot_image,
            detach=True,
            network_mode="host",  # the fake Slack listens on the host's 127.0.0.1
            environment={
                "SLACK_BOT_TOKEN": "xoxb-test-token",
                "SLACK_SIGNING_SECRET": "test-signing-secret-0123456789",
                "SLACK_API_URL": slack.api_url,
                "PORT": str(port),
                "DOCKER_HOST": inside,
            },
            volumes=volumes,
            group_add=groups,
            labels=infra_namespace.labels,
            # the image's own check, on a test-sized interval
            healthcheck={"test": healthcheck, "interval": 500_000_000, "timeout": 4_000_000_000, "retries": 3},
        )
        try:
            deadline = time.monotonic() + 60
            answer = None
            while time.monotonic() < deadline:
                try:
                    answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    if answer.status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                container.reload()
                assert container.status in ("created", "running"), container.logs().decode()[-3000:]
                time.sleep(0.3)
            assert answer is not None and answer.status_code == 200, container.logs().decode()[-3000:]
            health = answer.json()
            assert health["database"] is True and health["docker"] is True, health  # DOCKER_HOST reached
            while time.monotonic() < deadline:
                container.reload()
                if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                    break
                time.sleep(0.3)
            assert container.attrs["State"]["Health"]["Status"] == "healthy"
            uid = container.exec_run(["id", "-u"]).output.decode().strip()
            assert uid != "0" and uid == "10001"
            assert container.exec_run(["test", "-e", "/tmp/build-ca"]).exit_code != 0  # the build CA is gone
        finally:
            container.remove(force=True)
