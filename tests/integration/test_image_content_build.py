"""Image content beyond pip and apt, built for real: a catalog directory (requirements with --hash and a marker,
constraints, an init script, a local file) imported with the catalog, a file and jars downloaded through the build
settings' proxy and CA (Maven coordinates from a local Maven-layout repository, an https URL), all in the image
with their modes; the init script in every launch (`dcs launch --dry-run --json`); a wrong checksum stops the
build before the engine is asked; apk on an Alpine-like base and R packages from the configured CRAN mirror.

One real build on the real Python base (module fixture) serves the content checks; the others are busybox bases.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from bot.cli.images import catalog_dir_reader
from bot.domain.catalog import image_from_dict
from bot.ops.build import Builder, BuildOutcome
from bot.ops.catalog import import_catalog
from bot.services import Services
from tests.support.images import run_shell
from tests.support.namespace import local
from tests.support.private_builds import BASE_PYTHON, MODULE, PACKAGE, VERSION, make_services, settings_env
from tests.support.proxy import ForwardProxy
from tests.support.servers import MavenRepository, PackageIndex, StaticServer
from tests.support.tls import TestCA

ROOT = Path(__file__).parents[2]
INIT = "#!/bin/sh\n# start the team's daemon\necho started > /tmp/dcs-daemon.log\n"
TOOL = b"#!/bin/sh\necho tool 1.0\n"


@dataclass
class ContentBuild:
    services: Services
    outcome: BuildOutcome
    name: str
    image: str
    jar: bytes
    url_jar: bytes
    db: str
    env: dict[str, str]


def wheel_sha256(index: PackageIndex, ca: TestCA) -> str:
    assert index.auth is not None
    page = requests.get(f"{index.index_url}{PACKAGE}/", auth=index.auth, verify=str(ca.pem_path), timeout=10).text
    match = re.search(r"#sha256=([0-9a-f]{64})", page)
    assert match, page
    return match.group(1)


@pytest.fixture(scope="module")
def servers(test_ca: TestCA) -> Any:
    with StaticServer(ca=test_ca) as files, MavenRepository(ca=test_ca) as maven:
        yield files, maven


@pytest.fixture(scope="module")
def content_build(
    registry,
    private_index: PackageIndex,
    build_proxy: ForwardProxy,
    test_ca: TestCA,
    pushed_python_base: tuple[str, str],
    servers: tuple[StaticServer, MavenRepository],
    tmp_path_factory: pytest.TempPathFactory,
) -> ContentBuild:
    files, maven = servers
    artifact = maven.add_artifact("com.acme:widgets:1.2.3")
    url_jar = b"PK\x05\x06" + bytes(18)  # an empty zip is a valid jar
    served_jar = files.serve("/libs/extras-0.9.jar", url_jar)
    tool = files.serve("/tools/tool", TOOL)
    catalog_dir = tmp_path_factory.mktemp("catalog")
    (catalog_dir / "requirements").mkdir()
    (catalog_dir / "requirements" / "team.txt").write_text(
        f"# pinned with hashes\n{PACKAGE}=={VERSION} \\\n    --hash=sha256:{wheel_sha256(private_index, test_ca)}\n"
        'dcs-absent-pkg==9.9; python_version < "3.0"   # not for this Python: skipped\n'
    )
    (catalog_dir / "constraints.txt").write_text(f"{PACKAGE}<2\n")
    (catalog_dir / "init").mkdir()
    (catalog_dir / "init" / "start-daemon.sh").write_text(INIT)
    (catalog_dir / "conf").mkdir()
    (catalog_dir / "conf" / "config.yaml").write_text("team: data\n")
    base, _ = pushed_python_base
    name = f"content-{uuid.uuid4().hex[:8]}"
    text = f"""
[[image]]
name = "{name}"
base = "{base}"
python = "{BASE_PYTHON}"
repository = "{registry.host}/dcs-tests/{name}"
requirements = ["requirements/team.txt"]
constraints = ["constraints.txt"]
init_scripts = ["init/start-daemon.sh"]
jars = ["com.acme:widgets:1.2.3", {{ url = "{served_jar.url}", sha256 = "{served_jar.sha256}" }}]

[image.files]
"/opt/team/config.yaml" = "conf/config.yaml"
"/opt/team/bin/tool" = {{ url = "{tool.url}", sha256 = "{tool.sha256}", mode = "0755" }}
"""
    db = str(tmp_path_factory.mktemp("content-build") / "dcs.db")
    env = settings_env(private_index, build_proxy, test_ca) | {"DCS_MAVEN_REPOSITORY": maven.url}
    services = make_services(db, registry, env)
    (catalog_dir / "catalog.toml").write_text(text)
    import_catalog(
        services, text, source="catalog.toml", prune=False, actor="test", files=catalog_dir_reader(catalog_dir)
    )
    outcome = Builder(services).build(name, push=True, requester="U1")
    assert outcome.ok, f"{outcome.error}\n" + "\n".join(outcome.log[-40:])
    assert outcome.build is not None and outcome.build.pushed_digest
    image = f"{registry.host}/dcs-tests/{name}@{outcome.build.pushed_digest}"
    return ContentBuild(services, outcome, name, image, artifact.data, url_jar, db, env)


def test_everything_the_catalog_names_is_in_the_image_with_its_mode(
    engine: docker.DockerClient, content_build: ContentBuild, build_proxy: ForwardProxy, servers: Any
) -> None:
    shown = run_shell(
        engine,
        content_build.image,
        f"{BASE_PYTHON} -c 'import {MODULE} as m; print(m.__version__)'; "
        f"{BASE_PYTHON} -m pip show dcs-absent-pkg >/dev/null 2>&1 && echo absent-installed; "
        "stat -c '%a %n' /opt/dcs/init-scripts/start-daemon.sh /opt/team/bin/tool /opt/team/config.yaml "
        "/databricks/jars/widgets-1.2.3.jar /databricks/jars/extras-0.9.jar; "
        "cat /opt/dcs/init-scripts/start-daemon.sh /opt/team/config.yaml; /opt/team/bin/tool; "
        "sha256sum /databricks/jars/widgets-1.2.3.jar /databricks/jars/extras-0.9.jar",
    )
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == VERSION  # from the hash-pinned requirements file, within the constraints
    assert "absent-installed" not in shown.stdout  # the marker kept it out
    assert lines[1:6] == [
        "755 /opt/dcs/init-scripts/start-daemon.sh",
        "755 /opt/team/bin/tool",
        "644 /opt/team/config.yaml",
        "644 /databricks/jars/widgets-1.2.3.jar",
        "644 /databricks/jars/extras-0.9.jar",
    ]
    assert "\n".join(lines[6:10]) + "\n" == INIT + "team: data\n"
    assert lines[10] == "tool 1.0"
    import hashlib

    assert lines[11].split()[0] == hashlib.sha256(content_build.jar).hexdigest()
    assert lines[12].split()[0] == hashlib.sha256(content_build.url_jar).hexdigest()
    # the downloads went through the build settings' proxy (and were verified with its CA)
    files, maven = servers
    assert f"127.0.0.1:{maven.port}" in build_proxy.connects() and f"127.0.0.1:{files.port}" in build_proxy.connects()


def test_every_launch_runs_the_baked_init_script_and_may_add_its_own(content_build: ContentBuild) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(Path(content_build.db).parent),
        "DCS_DB": content_build.db,
        "PYTHONPATH": str(ROOT),
        **content_build.env,
    }
    args = ["launch", content_build.name, "init_script=/Volumes/main/team/init/extra.sh", "--runtime"]
    args += ["15.4.x-scala2.12", "--node-type", "m5d.large", "--user", "ann@example.com"]
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--dry-run", "--offline", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["init_scripts"] == [
        {"file": {"destination": "file:/opt/dcs/init-scripts/start-daemon.sh"}},
        {"volumes": {"destination": "/Volumes/main/team/init/extra.sh"}},
    ]
    assert body["docker_image"]["url"] == content_build.image


def test_a_wrong_checksum_fails_the_build_before_the_engine_builds(
    registry, content_build: ContentBuild, servers: Any, pushed_python_base: tuple[str, str]
) -> None:
    _, maven = servers
    maven.add_artifact("com.acme:tampered:2.0", wrong_checksums=("sha256", "sha1"))
    services = content_build.services
    name = f"tampered-{uuid.uuid4().hex[:8]}"
    services.store.add_image(
        image_from_dict(
            {
                "name": name,
                "base": pushed_python_base[0],
                "repository": f"{registry.host}/dcs-tests/{name}",
                "jars": ["com.acme:tampered:2.0"],
            }
        )
    )
    calls = services.engine.build_calls
    outcome = Builder(services).build(name)
    assert not outcome.ok
    message = outcome.error.message  # type: ignore[union-attr]
    assert message.startswith("jars[0]: 'https://127.0.0.1:")
    assert "tampered-2.0.jar' does not match the sha256 the repository publishes" in message
    assert services.engine.build_calls == calls  # nothing was built
    assert services.store.get_build(outcome.build.id).status == "failed"  # type: ignore[union-attr]


def test_apk_on_an_alpine_base_and_r_packages_from_the_cran_mirror(
    engine: docker.DockerClient, registry, make_base, push_base, tmp_path
) -> None:
    make_base(local("team/alpine:3.20"), python=None, apt=False, apk=True, os_id="alpine", os_version="3.20")
    make_base(local("databricksruntime/rbase:15.4-LTS"), python=None, r=True)
    alpine = f"{registry.host}/dcs-tests/alpine-{uuid.uuid4().hex[:6]}"
    rbase = f"{registry.host}/dcs-tests/databricksruntime/rbase"
    push_base(local("team/alpine:3.20"), registry, alpine.split("/", 1)[1], "3.20")
    push_base(local("databricksruntime/rbase:15.4-LTS"), registry, rbase.split("/", 1)[1], "15.4-LTS")
    mirror = "https://cran.corp.example/cran"
    services = make_services(str(tmp_path / "dcs.db"), registry, {"DCS_CRAN_MIRROR": mirror})
    for name, base, fields in (
        ("alpine-tools", f"{alpine}:3.20", {"apk": ["jq", "curl=8.9.1-r0"]}),
        ("r-stats", f"{rbase}:15.4-LTS", {"r_packages": ["data.table", "arrow"]}),
    ):
        repository = f"{registry.host}/dcs-tests/{name}-{uuid.uuid4().hex[:6]}"
        services.store.add_image(image_from_dict({"name": name, "base": base, "repository": repository, **fields}))
        outcome = Builder(services).build(name)
        assert outcome.ok, f"{outcome.error}\n" + "\n".join(outcome.log[-20:])
    alpine_image = services.store.last_build("alpine-tools").image_id  # type: ignore[union-attr]
    world = run_shell(engine, alpine_image, "cat /etc/apk/world; tail -1 /var/log/dcs-apk.log").stdout.split()
    assert {"jq", "curl"} <= set(world) and world[-4:] == ["add", "--no-cache", "curl=8.9.1-r0", "jq"]
    r_image = services.store.last_build("r-stats").image_id  # type: ignore[union-attr]
    installs = run_shell(engine, r_image, "cat /var/log/dcs-r-installs.log").stdout.strip()
    assert installs == f"repos={mirror} packages=arrow data.table"
