"""A build behind a corporate network, end to end: a private HTTPS index (self-signed CA, basic auth) reached
through a forward proxy, configured only by the README's settings (DCS_PIP_*, DCS_BUILD_*), on the real Python
base. The package lands in /databricks/python3; the pushed image holds no credential, no index URL, no proxy and
no CA (docker history --no-trunc, docker inspect, and every file of every layer of `docker save`); it is no
bigger than a plain one-stage build; without the CA the build fails and says which setting to set.

One build (module fixture) serves every check; the plain build for the size comparison and the failing build
without the CA are the only other builds.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from bot.clients.registry import MANIFEST_ACCEPT
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.domain.dockerfile import LABEL_INSTALL_STAGE
from bot.ops.build import Builder, BuildOutcome
from bot.services import Services
from tests.support.images import push_image, run_shell
from tests.support.proxy import ForwardProxy
from tests.support.python_base import build_image as plain_docker_build
from tests.support.servers import PackageIndex
from tests.support.tls import TestCA

PACKAGE = "dcs-private-pkg"
MODULE = "dcs_private_pkg"
PAYLOAD = 3 * 1024 * 1024  # random bytes: incompressible, so sizes show what was shipped


@dataclass
class PrivateBuild:
    services: Services
    outcome: BuildOutcome
    image: str  # the pushed image, by digest
    index: PackageIndex
    proxy: ForwardProxy
    base: str  # the pushed base, by tag
    base_digest: str
    repository: str


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=True)
    return result.stdout


def _services(db: str, registry, environ: dict[str, str]) -> Services:
    env = {"DCS_DB": db, "DCS_SECRET_TEST_REGISTRY": registry.password, **environ}
    if os.environ.get("DOCKER_HOST"):
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    services = build_services(load_config(env))
    services.store.add_registry(
        registry_from_dict(
            {
                "name": "local",
                "host": registry.host,
                "username": registry.username,
                "password_env": "DCS_SECRET_TEST_REGISTRY",
            }
        )
    )
    return services


@pytest.fixture(scope="module")
def private_index(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    user, password = f"svc-{secrets.token_hex(4)}", secrets.token_hex(16)
    index = PackageIndex(tmp_path_factory.mktemp("private-index"), ca=test_ca, auth=(user, password))
    index.make_wheel(PACKAGE, "1.4.2", module=MODULE, files={f"{MODULE}/payload.bin": os.urandom(PAYLOAD)})
    with index:
        yield index


@pytest.fixture(scope="module")
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as running:
        yield running


@pytest.fixture(scope="module")
def pushed_python_base(engine: docker.DockerClient, python_base: str, registry) -> tuple[str, str]:
    """The real Python base in the test registry (builds resolve its digest there)."""
    repo = f"dcs-tests/python-base-{uuid.uuid4().hex[:8]}"
    digest = push_image(
        engine,
        python_base,
        host=registry.host,
        username=registry.username,
        password=registry.password,
        repo_path=repo,
        tag="3.11",
    )
    return f"{registry.host}/{repo}:3.11", digest


def settings_env(index: PackageIndex, proxy: ForwardProxy, ca: TestCA, *, with_ca: bool = True) -> dict[str, str]:
    """Exactly the README's "Corporate networks" variables."""
    assert index.auth is not None
    env = {
        "DCS_PIP_INDEX_URL": index.index_url,
        "DCS_PIP_USERNAME": index.auth[0],
        "DCS_PIP_PASSWORD_ENV": "DCS_SECRET_PRIVATE_INDEX",
        "DCS_SECRET_PRIVATE_INDEX": index.auth[1],
        "DCS_BUILD_HTTPS_PROXY": proxy.url,
        "DCS_BUILD_NETWORK": "host",  # the index and the proxy listen on the host's 127.0.0.1
    }
    if with_ca:
        env["DCS_PIP_CA_BUNDLE"] = str(ca.pem_path)
    return env


@pytest.fixture(scope="module")
def private_build(
    engine: docker.DockerClient,
    registry,
    private_index: PackageIndex,
    proxy: ForwardProxy,
    test_ca: TestCA,
    pushed_python_base: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> PrivateBuild:
    base, base_digest = pushed_python_base
    db = str(tmp_path_factory.mktemp("private-build") / "dcs.db")
    services = _services(db, registry, settings_env(private_index, proxy, test_ca))
    name = f"private-{uuid.uuid4().hex[:8]}"
    repository = f"{registry.host}/dcs-tests/{name}"
    spec = image_from_dict({"name": name, "base": base, "repository": repository, "pip": [f"{PACKAGE}==1.4.2"]})
    services.store.add_image(spec)
    outcome = Builder(services).build(name, push=True, requester="U1")
    assert outcome.ok, f"{outcome.error}\n" + "\n".join(outcome.log[-40:])
    assert outcome.build is not None and outcome.build.pushed_digest
    return PrivateBuild(
        services,
        outcome,
        f"{repository}@{outcome.build.pushed_digest}",
        private_index,
        proxy,
        base,
        base_digest,
        repository,
    )


def test_the_package_comes_from_the_private_index_through_the_proxy_into_databricks_python3(
    engine: docker.DockerClient, private_build: PrivateBuild
) -> None:
    shown = run_shell(
        engine,
        private_build.image,
        f"/databricks/python3/bin/python -c 'import {MODULE} as m; print(m.__version__, m.__file__)'"
        f" && /databricks/python3/bin/pip show {PACKAGE} | grep -i '^location'",
    )
    assert shown.exit_code == 0, shown.stderr
    version, path = shown.stdout.splitlines()[0].split()
    assert version == "1.4.2"
    assert path.startswith("/databricks/python3/lib/python3.11/site-packages/")
    index = private_build.index
    downloads = [r for r in index.requests if r.path.startswith("/files/")]
    assert downloads and all(r.authorized and r.username == index.auth[0] for r in downloads)
    assert f"127.0.0.1:{index.port}" in private_build.proxy.connects()


def test_the_pushed_image_holds_no_credential_index_proxy_or_ca(
    engine: docker.DockerClient, registry, private_build: PrivateBuild, test_ca: TestCA, tmp_path: Path
) -> None:
    index, proxy = private_build.index, private_build.proxy
    assert index.auth is not None
    user, password = index.auth
    ca_line = test_ca.pem.decode().splitlines()[1]  # a line of the certificate's base64 body
    needles = {
        "password": password,
        "user name": user,
        "index host": f"127.0.0.1:{index.port}",
        "proxy host": f"127.0.0.1:{proxy.port}",
        "CA certificate": ca_line,
        "pip.conf of the install stage": "/dcs-install/pip.conf",
        "install stage files": "/dcs-install",
    }
    # The image as the registry serves it: pulled again by digest after the local tags are gone.
    engine.api.remove_image(f"{private_build.repository}:latest")
    engine.api.remove_image(f"{private_build.repository}:{private_build.outcome.build.tags[0]}")  # type: ignore[union-attr]
    engine.api.pull(
        private_build.repository,
        tag=private_build.outcome.build.pushed_digest,  # type: ignore[union-attr]
        auth_config={"username": registry.username, "password": registry.password},
    )
    history = _docker("history", "--no-trunc", private_build.image)
    inspect = _docker("inspect", private_build.image)
    for what, needle in needles.items():
        assert needle not in history, f"{what} in docker history"
        assert needle not in inspect, f"{what} in docker inspect"
    # every file of every layer (names and contents), from `docker save`
    saved = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(saved), private_build.image], check=True, timeout=300)
    scanned = 0
    with tarfile.open(saved) as image_tar:
        manifest = json.load(image_tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer_name in manifest[0]["Layers"]:
            layer = image_tar.extractfile(layer_name)
            assert layer is not None
            with tarfile.open(fileobj=io.BytesIO(layer.read())) as files:
                for member in files:
                    scanned += 1
                    data = files.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                    for what, needle in needles.items():
                        assert needle not in member.name, f"{what} in the name of {member.name} ({layer_name})"
                        assert needle.encode() not in data, f"{what} inside {member.name} ({layer_name})"
                    assert not member.name.endswith(("pip.conf", "dcs-build-ca.crt", "ca-bundle.pem")), member.name
    assert scanned > 1000  # the base's layers were scanned too, not only ours
    # the install stage, which held the password, is gone from the engine too
    # (stages without a credential are labelled "shared" and stay in the engine's cache on purpose)
    stages = engine.images.list(filters={"label": LABEL_INSTALL_STAGE, "dangling": True})
    assert not [i.id for i in stages if i.labels.get(LABEL_INSTALL_STAGE) != "shared"]


def _pushed_layers(registry, repository: str, reference: str) -> list[tuple[str, int]]:
    repo = repository.split("/", 1)[1]
    response = requests.get(
        f"http://{registry.host}/v2/{repo}/manifests/{reference}",
        auth=(registry.username, registry.password),
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    response.raise_for_status()
    return [(layer["digest"], layer["size"]) for layer in response.json()["layers"]]


def test_installed_once_shipped_once(
    engine: docker.DockerClient,
    registry,
    private_build: PrivateBuild,
    test_ca: TestCA,
    infra_namespace,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The pushed image adds what pip installed, once: about what a plain one-stage build adds, and nowhere
    near a copy of the whole environment."""
    index = private_build.index
    base_repo, base_tag = private_build.base.rsplit(":", 1)
    base = {d for d, _ in _pushed_layers(registry, base_repo, base_tag)}
    ours = _pushed_layers(registry, private_build.repository, private_build.outcome.build.pushed_digest)  # type: ignore[union-attr]
    added_pushed = sum(size for digest, size in ours if digest not in base)
    base_size = engine.images.get(private_build.base).attrs["Size"]
    ours_size = engine.images.get(private_build.image).attrs["Size"] - base_size
    # the plain build: one stage, pip run in the image itself (what the settings must not leave behind)
    plain = infra_namespace.ref("plain-private-build")
    plain_docker_build(
        engine,
        f"FROM {private_build.base}\nCOPY pip.conf ca.pem /tmp/\nENV PIP_CONFIG_FILE=/tmp/pip.conf\n"
        f'RUN ["/databricks/python3/bin/pip", "install", "--no-cache-dir", "{PACKAGE}==1.4.2"]\n',
        plain,
        context={
            "pip.conf": f"[global]\nindex-url = {index.index_url_with_credentials}\ncert = /tmp/ca.pem\n",
            "ca.pem": test_ca.pem,
        },
        labels=infra_namespace.labels,
    )
    plain_size = engine.images.get(plain).attrs["Size"] - base_size
    with capsys.disabled():
        print(
            f"\nsize above the base: dcs-bot {ours_size / 1e6:.2f} MB (pushed, compressed: {added_pushed / 1e6:.2f} MB)"
            f", plain one-stage build {plain_size / 1e6:.2f} MB, ratio {ours_size / plain_size:.3f}; "
            f"the environment itself is {base_size / 1e6:.0f} MB"
        )
    assert PAYLOAD <= ours_size <= plain_size * 1.05 + 64 * 1024
    assert added_pushed >= PAYLOAD  # the payload is incompressible: it was pushed, once
    assert added_pushed < 2 * PAYLOAD


def test_without_the_ca_the_build_fails_and_names_the_setting(
    registry, private_index: PackageIndex, proxy: ForwardProxy, test_ca: TestCA, private_build: PrivateBuild, tmp_path
) -> None:
    services = _services(str(tmp_path / "dcs.db"), registry, settings_env(private_index, proxy, test_ca, with_ca=False))
    name = f"no-ca-{uuid.uuid4().hex[:8]}"
    spec = image_from_dict(
        {
            "name": name,
            "base": private_build.base,
            "repository": f"{registry.host}/dcs-tests/{name}",
            "pip": [f"{PACKAGE}==1.4.2"],
        }
    )
    services.store.add_image(spec)
    outcome = Builder(services).build(name, push=True)
    assert not outcome.ok
    message = outcome.error.message  # type: ignore[union-attr]
    assert message.startswith("pip could not verify the package index's TLS certificate (CERTIFICATE_VERIFY_FAILED)")
    assert "ca_bundle" in message and "DCS_PIP_CA_BUNDLE" in message and "Corporate networks" in message
    build = services.store.get_build(outcome.build.id)  # type: ignore[union-attr]
    assert build.status == "failed" and build.error.startswith("pip could not verify")  # type: ignore[union-attr]
    assert private_index.auth is not None and private_index.auth[1] not in (build.log_tail or "")
