"""Fixtures for end-to-end tests of real images: Python bases, a test CA and the servers builds fetch from.

Registered by tests/conftest.py (`pytest_plugins`). See /work/notes/test-infra.md for the guide. Session scope:
`infra_namespace`, `test_ca`, `python_rootfs`, `python_base`, `realistic_base`, `python_variant`, `build_image`.
Test scope (fresh request logs for each test): `package_index`, `maven_repo`, `file_server`, `forward_proxy`.
Images are named `dcs-test-<run>/...` and removed at session end; servers stop at the end of their test.
How long each session-scoped part took is printed under "dcs-test infrastructure" at the end of the run.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import unavailable
from tests.support.layers import derive_image
from tests.support.namespace import LABEL, Namespace
from tests.support.proxy import ForwardProxy
from tests.support.python_base import (
    DEFAULT_MIRROR,
    LOCK,
    BaseUnavailable,
    CachedRootfs,
    DebianRecipe,
    Face,
    default_cache,
    ensure_realistic,
    ensure_rootfs,
    load_python_base,
    overlay_layer,
)
from tests.support.python_base import (
    build_image as build_dockerfile,
)
from tests.support.rootfs import os_release as render_os_release
from tests.support.servers import MavenRepository, PackageIndex, StaticServer
from tests.support.tls import TestCA
from tests.support.wheels import WheelhouseUnavailable, ensure_wheelhouse

TIMINGS: list[tuple[str, float, str]] = []  # (what, seconds, how: "cold"/"cached"/...)


def _timed(what: str, started: float, how: str) -> None:
    TIMINGS.append((what, time.monotonic() - started, how))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("dcs-test infrastructure")
        for what, seconds, how in TIMINGS:
            terminalreporter.write_line(f"{what:<28} {seconds:7.1f} s  {how}")


# --- session: namespace, CA, bases ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def infra_namespace(engine: docker.DockerClient) -> Iterator[Namespace]:
    """`dcs-test-<run>/...` image names; the images and labelled containers are removed at session end."""
    namespace = Namespace()
    yield namespace
    namespace.cleanup(engine)
    engine.images.prune(filters={"label": f"{LABEL}={namespace.run}", "dangling": True})


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """The session's CA: `.pem_path` (a file to hand to builds), `.pem`, `.server_context()`."""
    started = time.monotonic()
    ca = TestCA(tmp_path_factory.mktemp("ca"))
    _timed("test CA + server cert", started, "")
    return ca


@pytest.fixture(scope="session")
def python_rootfs() -> CachedRootfs:
    """The cached Debian rootfs layer (`.packages`: dpkg name -> version, what `dpkg-query -W` shows)."""
    started = time.monotonic()
    cache = default_cache()
    recipe = DebianRecipe()
    cold = not (cache / f"debian-{recipe.key}" / "meta.json").exists()
    try:
        rootfs = ensure_rootfs(recipe, cache, mirror=os.environ.get("DCS_TEST_DEBIAN_MIRROR", DEFAULT_MIRROR))
    except BaseUnavailable as exc:
        unavailable(str(exc))
    _timed("debian rootfs", started, "cold (mmdebstrap + pack)" if cold else "cached")
    return rootfs


@pytest.fixture(scope="session")
def python_base(engine: docker.DockerClient, python_rootfs: CachedRootfs, infra_namespace: Namespace) -> str:
    """Ref of the real Python base: Debian 12 + CPython 3.11 venv at /databricks/python3, os-release Ubuntu
    22.04, java stub, LANG/LC_ALL/PYSPARK_PYTHON set. Same cached rootfs, same image id."""
    started = time.monotonic()
    ref = infra_namespace.ref("python-base", "3.11")
    load_python_base(engine, python_rootfs, Face(), ref)
    _timed("python base (docker load)", started, "")
    return ref


@pytest.fixture(scope="session")
def realistic_base(
    engine: docker.DockerClient,
    python_base: str,
    infra_namespace: Namespace,
    test_ca: TestCA,
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """Ref of python_base + the ~130 distributions of tests/support/realistic-requirements.txt (ipython,
    ipykernel, numpy, pandas, pyarrow, ...), installed by a real `docker build` through a local HTTPS index."""
    started = time.monotonic()
    cache = default_cache()

    def start_index() -> PackageIndex:
        try:
            wheels = ensure_wheelhouse(LOCK, cache / "wheels")
        except WheelhouseUnavailable as exc:
            unavailable(str(exc))
        _timed("realistic wheelhouse", started, f"{len(wheels)} wheels")
        index = PackageIndex(tmp_path_factory.mktemp("realistic-index"), ca=test_ca, auth=_credentials("realistic"))
        for path, sha256 in wheels.items():
            index.add_wheel(path, sha256)
        return index.start()

    ref = infra_namespace.ref("python-realistic", "3.11")
    build = ensure_realistic(
        engine, python_base, ref, cache, start_index=start_index, ca_pem=test_ca.pem, label=(LABEL, infra_namespace.run)
    )
    how = "cached layers" if build.from_cache else f"cold docker build, {build.index_requests} wheels fetched"
    _timed("realistic base", started, how)
    return ref


VariantFactory = Callable[..., str]


@pytest.fixture(scope="session")
def python_variant(engine: docker.DockerClient, python_base: str, infra_namespace: Namespace) -> VariantFactory:
    """python_variant(name, *, parent=python_base, files={path: content | (content, mode)}, remove=[paths],
    env={...}, os_release=("debian", "12"), cmd=(...)) -> ref of parent + one thin layer (no container runs;
    the same arguments give the same image id). `remove` whites paths out (e.g. a package's directories)."""

    def variant(
        name: str,
        *,
        parent: str | None = None,
        files: dict[str, str | bytes | tuple[str | bytes, int]] | None = None,
        remove: tuple[str, ...] | list[str] = (),
        env: dict[str, str] | None = None,
        os_release: tuple[str, str] | None = None,
        cmd: tuple[str, ...] | None = None,
    ) -> str:
        content = dict(files or {})
        if os_release is not None:
            content["/etc/os-release"] = render_os_release(*os_release)
        ref = infra_namespace.ref(name)
        derive_image(engine, parent or python_base, overlay_layer(content, remove), ref, env=env, cmd=cmd)
        return ref

    return variant


@pytest.fixture(scope="session")
def build_image(engine: docker.DockerClient, infra_namespace: Namespace) -> Callable[..., str]:
    """build_image(name, dockerfile, *, context={file: content}, buildargs={...}, network_mode="host") -> ref.
    A real classic-builder `docker build` (what docker-py drives); raises BuildFailed with the log's tail."""

    def build(
        name: str,
        dockerfile: str,
        *,
        context: dict[str, str | bytes] | None = None,
        buildargs: dict[str, str] | None = None,
        network_mode: str = "host",
    ) -> str:
        ref = infra_namespace.ref(name)
        build_dockerfile(
            engine, dockerfile, ref, context=context, buildargs=buildargs, labels=infra_namespace.labels,
            network_mode=network_mode,
        )  # fmt: skip
        return ref

    return build


# --- per test: servers ---------------------------------------------------------------------------------


def _credentials(user: str) -> tuple[str, str]:
    return f"dcs-{user}", secrets.token_hex(12)


@pytest.fixture
def package_index(test_ca: TestCA, tmp_path: Path) -> Iterator[PackageIndex]:
    """A PEP 503 index on https://127.0.0.1:PORT/simple/ (the session CA) with basic auth (`.auth`, random);
    `.make_wheel(name, version, requires=..., module=...)`, `.index_url[_with_credentials]`, `.requests`."""
    with PackageIndex(tmp_path / "index", ca=test_ca, auth=_credentials("index")) as index:
        yield index


@pytest.fixture
def maven_repo(test_ca: TestCA) -> Iterator[MavenRepository]:
    """A Maven 2 layout repository on https://127.0.0.1:PORT (no auth; set `.auth = (user, pw)` to require it);
    `.add_artifact("g:a:v", wrong_checksums=("sha1",))`."""
    with MavenRepository(ca=test_ca) as repository:
        yield repository


@pytest.fixture
def file_server(test_ca: TestCA) -> Iterator[StaticServer]:
    """HTTPS static files: `.serve("/path", data)` -> ServedFile(url, sha256, size)."""
    with StaticServer(ca=test_ca) as server:
        yield server


@pytest.fixture
def forward_proxy() -> Iterator[ForwardProxy]:
    """An HTTP proxy (plain GET and CONNECT) on 127.0.0.1 that may reach loopback only; `.requests`,
    `.connects()`; set `.credentials = (user, pw)` to require Proxy-Authorization."""
    with ForwardProxy() as proxy:
        yield proxy
