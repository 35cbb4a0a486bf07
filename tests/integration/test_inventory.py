"""The package inventory of a build, from the doctor's probe container, stored and shown by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.ops.build import Builder
from bot.services import Services
from tests.support.cli import dcs_command
from tests.support.images import run_shell
from tests.support.namespace import local
from tests.support.python_base import realistic_packages
from tests.support.wheels import normalize


def services_for(tmp_db: str) -> Services:
    environ = {"DCS_DB": tmp_db}
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return build_services(load_config(environ))


def dcs(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "SLACK_", "DATABRICKS_"))}
    env["DCS_DB"] = db
    return subprocess.run([*dcs_command(), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def python_build(realistic_base, tmp_path_factory):
    """One build of an image on the realistic base (~130 distributions), recorded in its own database."""
    db = str(tmp_path_factory.mktemp("inventory") / "dcs.db")
    services = services_for(db)
    services.store.add_image(
        image_from_dict({"name": "inv-python", "base": realistic_base, "repository": local("inventory/python")})
    )
    outcome = Builder(services).build("inv-python", requester="U1")
    assert outcome.ok, outcome.error
    return db, services, outcome


def test_a_build_records_what_the_image_contains(engine, python_build):
    _db, services, outcome = python_build
    stored = services.store.inventory(outcome.build.id)
    assert stored == outcome.inventory
    image = f"{outcome.build.image_id}"
    # the same answers the image's own tools give, seen from a separate container
    dpkg = run_shell(engine, image, "dpkg-query -W -f='${Package} ${Version}\\n'").stdout.split("\n")
    expected = dict(line.split(" ", 1) for line in dpkg if line.strip())
    assert stored.os_packages == expected
    assert {"python3", "sudo", "iproute2", "procps"} <= set(stored.os_packages)
    pip = run_shell(engine, image, "/databricks/python3/bin/python -m pip --version").stdout
    assert stored.python_packages["pip"] in pip
    version = run_shell(engine, image, "/databricks/python3/bin/python -V").stdout.split()[-1]
    assert stored.python_version == version and stored.python_minor == "3.11"
    assert stored.java_version == "1.8.0_392"  # the Zulu 8 stub's `java -version`
    assert stored.os_release == "Ubuntu 22.04 LTS"
    assert stored.size_bytes == engine.images.get(image).attrs["Size"] > 50_000_000


def test_dcs_image_show_and_dcs_log_show_the_inventory(python_build):
    db, services, outcome = python_build
    shown = dcs("image", "show", "inv-python", "--json", db=db)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["inventory_build"] == outcome.build.id
    assert data["inventory"]["python_packages"]["pip"] == outcome.inventory.python_packages["pip"]
    assert data["inventory"]["os_packages"] == outcome.inventory.os_packages
    human = dcs("image", "show", "inv-python", "--packages", db=db)
    assert human.returncode == 0, human.stderr
    assert f"build #{outcome.build.id}: Ubuntu 22.04 LTS, Python 3.11" in human.stdout
    assert f"{len(outcome.inventory.os_packages)} OS packages" in human.stdout
    sudo = outcome.inventory.os_packages["sudo"]
    assert any(line.split() == ["sudo", sudo] for line in human.stdout.splitlines())

    logged = dcs("log", str(outcome.build.id), "--json", db=db)
    assert logged.returncode == 0, logged.stderr
    assert json.loads(logged.stdout)["inventory"]["java_version"] == "1.8.0_392"
    plain = dcs("log", str(outcome.build.id), db=db)
    assert f"Build #{outcome.build.id} contains: Ubuntu 22.04 LTS, Python 3.11" in plain.stdout


def test_alpine_inventory_comes_from_apk(tmp_path: Path, make_base):
    base = local("inventory/alpine-base:3.20")
    make_base(base, os_id="alpine", os_version="3.20.0", apt=False, apk=True, python=None)
    services = services_for(str(tmp_path / "dcs.db"))
    services.store.add_image(image_from_dict({"name": "inv-alpine", "base": base, "repository": local("inventory/a")}))
    outcome = Builder(services).build("inv-alpine")
    assert outcome.ok, outcome.error
    # the stub apk lists the names of /etc/apk/world (a real `apk info -v` adds name-version-rN)
    assert services.store.inventory(outcome.build.id) == outcome.inventory
    assert set(outcome.inventory.os_packages) == {"alpine-baselayout", "apk-tools", "busybox", "musl"}
    assert outcome.inventory.python_version is None and outcome.inventory.python_packages == {}
    assert outcome.inventory.os_release == "Alpine Linux v3.20"


def test_a_failed_build_records_no_inventory(tmp_path: Path, make_base):
    base = local("inventory/no-sudo:1")
    make_base(base, sudo=False)
    services = services_for(str(tmp_path / "dcs.db"))
    services.store.add_image(image_from_dict({"name": "inv-nosudo", "base": base, "repository": local("inventory/n")}))
    outcome = Builder(services).build("inv-nosudo")
    assert not outcome.ok and "sudo" in outcome.error.message
    assert outcome.inventory is not None  # collected by the probe, but only successful builds keep one
    assert services.store.inventory(outcome.build.id) is None


def test_the_runtime_python_s_distributions_are_all_listed(python_build):
    _db, _services, outcome = python_build
    locked = {normalize(name): version for name, version in realistic_packages().items()}
    listed = {normalize(name): version for name, version in outcome.inventory.python_packages.items()}
    assert {name: listed.get(name) for name in locked} == locked
