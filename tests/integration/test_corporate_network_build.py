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
import re
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from bot.clients.registry import MANIFEST_ACCEPT
from bot.domain.catalog import image_from_dict
from bot.domain.dockerfile import LABEL_INSTALL_STAGE
from bot.ops.build import Builder, BuildOutcome
from bot.services import Services
from tests.support.images import run_shell
from tests.support.private_builds import BASE_PYTHON, MODULE, PACKAGE, PAYLOAD, make_services, settings_env
from tests.support.proxy import ForwardProxy
from tests.support.python_base import build_image as plain_docker_build
from tests.support.servers import PackageIndex
from tests.support.tls import TestCA


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


@pytest.fixture(scope="module")
def private_build(
    engine: docker.DockerClient,
    registry,
    private_index: PackageIndex,
    build_proxy: ForwardProxy,
    test_ca: TestCA,
    pushed_python_base: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> PrivateBuild:
    base, base_digest = pushed_python_base
    db = str(tmp_path_factory.mktemp("private-build") / "dcs.db")
    services = make_services(db, registry, settings_env(private_index, build_proxy, test_ca))
    name = f"private-{uuid.uuid4().hex[:8]}"
    repository = f"{registry.host}/dcs-tests/{name}"
    spec = image_from_dict(
        {"name": name, "base": base, "python": BASE_PYTHON, "repository": repository, "pip": [f"{PACKAGE}==1.4.2"]}
    )
    services.store.add_image(spec)
    outcome = Builder(services).build(name, push=True, requester="U1")
    assert outcome.ok, f"{outcome.error}\n" + "\n".join(outcome.log[-40:])
    assert outcome.build is not None and outcome.build.pushed_digest
    return PrivateBuild(
        services,
        outcome,
        f"{repository}@{outcome.build.pushed_digest}",
        private_index,
        build_proxy,
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
    engine: docker.DockerClient,
    registry,
    private_build: PrivateBuild,
    test_ca: TestCA,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
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
    with capsys.disabled():  # the evidence, in the run's output
        mine = _docker("history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", private_build.image)
        print(f"\ndocker history --no-trunc {private_build.image} (layers above the base):")
        for line in mine.splitlines()[: len(mine.splitlines()) - 2]:
            print(f"  {line[:160]}")
        print(f"layer scan: {scanned} files in {len(manifest[0]['Layers'])} layers, none holds {sorted(needles)}")
    # the install stage, which held the password, is gone from the engine too (found by its label's value)
    stage = re.search(
        rf'LABEL {re.escape(LABEL_INSTALL_STAGE)}="(build-[0-9]+-[0-9a-f]+)"', private_build.outcome.dockerfile
    )
    assert stage, private_build.outcome.dockerfile
    assert not engine.images.list(all=True, filters={"label": f"{LABEL_INSTALL_STAGE}={stage.group(1)}"})


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
    engine: docker.DockerClient,
    registry,
    private_index: PackageIndex,
    build_proxy: ForwardProxy,
    test_ca: TestCA,
    private_build: PrivateBuild,
    tmp_path,
) -> None:
    env = settings_env(private_index, build_proxy, test_ca, with_ca=False)
    services = make_services(str(tmp_path / "dcs.db"), registry, env)
    name = f"no-ca-{uuid.uuid4().hex[:8]}"
    spec = image_from_dict(
        {
            "name": name,
            "base": private_build.base,
            "python": BASE_PYTHON,
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
    # a failed build's install stage, which held the password, is removed too; the database never saw it
    stage = re.search(rf'{re.escape(LABEL_INSTALL_STAGE)}="(build-[0-9]+-[0-9a-f]+)"', outcome.dockerfile)
    assert stage and not engine.images.list(all=True, filters={"label": f"{LABEL_INSTALL_STAGE}={stage.group(1)}"})
    for stored in tmp_path.glob("dcs.db*"):  # the database and its write-ahead log
        assert private_index.auth[1].encode() not in stored.read_bytes(), stored
