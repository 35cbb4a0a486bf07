"""Shared fixtures: the Docker engine, a private registry, fake Databricks base images, a fresh database.

`./scripts/test` provides the engine and the registry (DOCKER_HOST, DCS_TEST_REGISTRY*). Tests that need
them fail when CI=true and are skipped otherwise, so a plain `pytest tests/unit` works anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import docker
import pytest
import requests

from tests.support.images import ImageArchive, base_archive, ensure_image, push_image
from tests.support.namespace import NAMESPACE, OWNED_REGISTRY_HOSTS, TagGuard, remove_namespace
from tests.support.registry import (
    LocalRegistry,
    RegistryUnavailable,
    TestRegistry,
    answers_401,
    missing_binaries,
)
from tests.support.rootfs import BaseSpec, BusyboxUnusable, read_static_busybox

# Real Python bases, a test CA, package index, Maven repository, file server and proxy (tests/support/infra.py).
pytest_plugins = ["tests.support.infra"]

ENVIRONMENT_FIXTURES = {"engine", "registry", "registry_factory", "tag_guard"}
INTEGRATION_DIR = Path(__file__).parent / "integration"
STOPPED_STATES = ("created", "exited", "dead")
CONTAINER_GRACE = timedelta(seconds=30)


def unavailable(reason: str, detail: str = "") -> NoReturn:
    """Tests needing the environment must fail in CI rather than pass by skipping."""
    if os.environ.get("CI") == "true":
        message = f"{reason} ({detail})" if detail else reason
        pytest.fail(f"{message}; CI=true, so failing instead of skipping", pytrace=False)
    pytest.skip(reason)


GUARD_KEY = pytest.StashKey[TagGuard]()


def _engine_or_none() -> docker.DockerClient | None:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.RequestException):
        return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Record (or plant a sentinel under) the real Databricks image names before any test runs."""
    client = _engine_or_none()
    if client is not None:
        guard = TagGuard(client)
        guard.arm()
        session.config.stash[GUARD_KEY] = guard


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every tag under this run's namespace goes; the real Databricks names must point where they did."""
    guard = session.config.stash.get(GUARD_KEY, None)
    if guard is None:
        return
    # Removing many large images on a busy engine takes longer than one API call's usual 30 s.
    cleaner = docker.from_env(timeout=600)
    remove_namespace(cleaner, NAMESPACE)
    own_registry = os.environ.get("DCS_TEST_REGISTRY")  # started by scripts/test for this run only
    for host in sorted(OWNED_REGISTRY_HOSTS | ({own_registry} if own_registry else set())):
        remove_namespace(cleaner, host)
    changed = guard.changed()
    guard.disarm()
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = "\n".join(f"  {c}" for c in changed)
        text = f"the test session retagged images it did not create:\n{lines}"
        if reporter is not None:
            reporter.write_line(f"ERROR: {text}", red=True)
        else:
            print(f"ERROR: {text}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tag_guard(request: pytest.FixtureRequest, engine: docker.DockerClient) -> TagGuard:
    """The session's guard over the real Databricks image names (armed before the first test)."""
    guard = request.config.stash.get(GUARD_KEY, None)
    if guard is None:
        unavailable("the tag guard was not armed (no engine at session start)")
    return guard


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents and ENVIRONMENT_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """The Docker engine of DOCKER_HOST (or the default socket). Stopped containers the session leaves
    behind are removed at the end; images are left to the throw-away engine."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        unavailable("Docker engine not reachable; run ./scripts/test", f"{where}: {exc}")
    existing = {c.id for c in client.containers.list(all=True)}
    yield client
    for container in client.containers.list(all=True, filters={"status": list(STOPPED_STATES)}):
        if container.id not in existing and _idle_for(container) > CONTAINER_GRACE:
            _remove_container(container)
    client.close()


def _idle_for(container: docker.models.containers.Container) -> timedelta:
    """How long ago the container stopped (or was created, if it never ran).

    The engine may be shared with test sessions running at the same time; a container they stopped a moment
    ago may still be read, so only containers idle for a while are removed."""
    state = container.attrs["State"]
    stamp = state["FinishedAt"] if not state["FinishedAt"].startswith("0001-") else container.attrs["Created"]
    # Docker gives nanoseconds; fromisoformat takes at most microseconds.
    seconds, _, fraction = stamp.rstrip("Z").partition(".")
    moment = datetime.fromisoformat(f"{seconds}.{fraction[:6] or '0'}+00:00")
    return datetime.now(UTC) - moment


def _remove_container(container: docker.models.containers.Container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass  # auto-removed meanwhile
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: its removal is already in progress
            raise


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRegistry]:
    """The registry of DCS_TEST_REGISTRY*, or a private one started for the session."""
    host = os.environ.get("DCS_TEST_REGISTRY")
    if host:
        if not answers_401(host, timeout=10):
            unavailable(f"DCS_TEST_REGISTRY={host} does not answer 401 on /v2/")
        username = os.environ.get("DCS_TEST_REGISTRY_USER", "")
        yield TestRegistry(host, username, os.environ.get("DCS_TEST_REGISTRY_PASSWORD", ""))
        return
    local = _start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield local.as_test_registry()
    finally:
        local.stop()


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[Callable[[], LocalRegistry]]:
    """Starts extra throw-away registries (`.host`, `.username`, `.password`, `.stop()`, `.start()`),
    all stopped when the test ends."""
    started: list[LocalRegistry] = []

    def start() -> LocalRegistry:
        local = _start_registry(tmp_path / f"registry-{len(started)}")
        started.append(local)
        return local

    yield start
    for local in started:
        local.stop()


def _start_registry(workdir: Path) -> LocalRegistry:
    if missing := missing_binaries():
        unavailable(f"cannot start a registry, missing {', '.join(missing)}; run ./scripts/test")
    try:
        return LocalRegistry(workdir).start()
    except RegistryUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def make_base(engine: docker.DockerClient) -> Callable[..., str]:
    """Factory for fake Databricks base images, see tests/support/rootfs.py for what they contain."""
    try:
        busybox = read_static_busybox()
    except BusyboxUnusable as exc:
        unavailable(str(exc))
    arch = engine.version()["Arch"]
    archives: dict[tuple[BaseSpec, str], ImageArchive] = {}

    def make_base(
        ref: str,
        *,
        python: str | None = "venv",
        bash: bool = True,
        sudo: bool = True,
        iproute2: bool = True,
        acl: bool = True,
        java: bool = True,
        coreutils: bool = True,
        procps: bool = True,
        os_id: str = "ubuntu",
        os_version: str = "22.04",
        cmd: list[str] | None = None,
        marker: str = "",
        apt: bool = True,
        apk: bool = False,
        r: bool = False,
    ) -> str:
        """Build (once per session and arguments) a base image, tag it `ref`, return its image id."""
        spec = BaseSpec(
            python=python,
            bash=bash,
            sudo=sudo,
            iproute2=iproute2,
            acl=acl,
            java=java,
            coreutils=coreutils,
            procps=procps,
            os_id=os_id,
            os_version=os_version,
            cmd=tuple(cmd) if cmd is not None else None,
            marker=marker,
            apt=apt,
            apk=apk,
            r=r,
        )
        key = (spec, ref)
        if key not in archives:
            archives[key] = base_archive(spec, busybox, ref=ref, arch=arch)
        return ensure_image(engine, archives[key], ref)

    return make_base


@pytest.fixture(scope="session")
def push_base(engine: docker.DockerClient) -> Callable[[str, TestRegistry | LocalRegistry, str, str], str]:
    """push_base(local_ref, registry, repo_path, tag) pushes to `{registry.host}/{repo_path}:{tag}` with
    basic auth and returns the pushed manifest digest (`sha256:...`)."""

    def push_base(local_ref: str, registry: TestRegistry | LocalRegistry, repo_path: str, tag: str) -> str:
        return push_image(
            engine,
            local_ref,
            host=registry.host,
            username=registry.username,
            password=registry.password,
            repo_path=repo_path,
            tag=tag,
        )

    return push_base


@pytest.fixture
def tmp_db(tmp_path: Path) -> str:
    """Path of a SQLite file that does not exist yet."""
    return str(tmp_path / "dcs.db")
