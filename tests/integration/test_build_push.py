"""Builds, doctor and pushes against the real Docker engine and a real registry with basic auth."""

from __future__ import annotations

import os
import time
import uuid

import pytest
import requests

from bot.clients.registry import MANIFEST_ACCEPT
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, image_to_dict, registry_from_dict
from bot.errors import BuildFailed, BuildTimedOut, DoctorFailed, RegistryAuthError, RegistryUnreachable
from bot.ops.build import Builder, BuildProgress
from bot.services import Services
from bot.store import Store
from tests.support.namespace import local

PASSWORD_VAR = "DCS_SECRET_TEST_PUSH_PASSWORD"


def make_services(tmp_db: str, registry, *, password: str | None = None, **env: str) -> Services:
    environ = {"DCS_DB": tmp_db, PASSWORD_VAR: password if password is not None else registry.password, **env}
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    services = build_services(load_config(environ))
    services.store.add_registry(
        registry_from_dict(
            {
                "name": "local",
                "host": registry.host,
                "username": registry.username,
                "password_env": PASSWORD_VAR,
            }
        )
    )
    return services


def add_image(services: Services, registry, base: str, **fields) -> str:
    name = fields.pop("name", f"img-{uuid.uuid4().hex[:8]}")
    spec = image_from_dict({"name": name, "base": base, "repository": f"{registry.host}/dcs-tests/{name}", **fields})
    services.store.add_image(spec)
    return name


def run_in(engine, image: str, script: str) -> str:
    out = engine.containers.run(image, entrypoint=["/bin/sh", "-c"], command=[script], remove=True)
    return out.decode()


def registry_digest(registry, repo: str, tag: str) -> str | None:
    response = requests.head(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        auth=(registry.username, registry.password),
        headers={"Accept": MANIFEST_ACCEPT},
        timeout=10,
    )
    return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None


@pytest.fixture
def standard_base(make_base, push_base, registry) -> str:
    """databricksruntime/standard:15.4-LTS mirrored in the local registry (so its digest is known)."""
    make_base(local("databricksruntime/standard:15.4-LTS"))
    push_base(local("databricksruntime/standard:15.4-LTS"), registry, "databricksruntime/standard", "15.4-LTS")
    return f"{registry.host}/databricksruntime/standard:15.4-LTS"


def test_build_installs_exactly_the_requested_packages_and_pushes(engine, registry, tmp_db, standard_base):
    services = make_services(tmp_db, registry)
    name = add_image(
        services, registry, standard_base, pip=["pyarrow>=15", "pandas==2.2.2"], apt=["jq", "curl"], env={"TZ": "UTC"}
    )
    events: list[BuildProgress] = []
    outcome = Builder(services).build(name, push=True, requester="U1", progress=events.append)

    assert outcome.ok, outcome.error
    build = outcome.build
    assert build.status == "succeeded"
    # What a real build put into the image: the stub pip and apt-get record their arguments.
    image = f"{registry.host}/dcs-tests/{name}:latest"
    pip_log = run_in(engine, image, "cat /databricks/python3/pip-installs.log")
    assert pip_log.split()[-2:] == ["pandas==2.2.2", "pyarrow>=15"]
    assert "install" in pip_log.split()
    assert run_in(engine, image, "ls /var/lib/dcs-apt").split() == ["curl", "jq"]
    assert run_in(engine, image, "echo $TZ").strip() == "UTC"
    # FROM was pinned to the base digest the registry reported.
    base_digest = registry_digest(registry, "databricksruntime/standard", "15.4-LTS")
    froms = [line for line in outcome.dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and all(f"@{base_digest}" in line for line in froms)  # install stage and image
    assert build.base_digest == base_digest
    # Progress reached the callback step by step, ending at 100 %.
    steps = [(e.step, e.total) for e in events if e.phase == "build" and e.step]
    assert steps == [(i, 13) for i in range(1, 14)]  # 7 in the install stage, 6 in the image
    assert events[-1].fraction == 1.0
    # Both tags pushed, digest recorded and equal to what the registry serves.
    pushes = services.store.pushes(build.id)
    assert [p.tag for p in pushes] == [build.tags[0], "latest"]
    assert all(p.verified for p in pushes)
    assert build.pushed_digest == registry_digest(registry, f"dcs-tests/{name}", "latest")
    assert registry_digest(registry, f"dcs-tests/{name}", build.tags[0]) == build.pushed_digest
    assert {c["name"]: c["status"] for c in build.doctor}["sudo"] == "pass"
    # The registry password reached neither the image history, the stored log, nor the database.
    history = str(engine.api.history(image)) + str(engine.api.inspect_image(image))
    assert registry.password not in history
    assert registry.password not in (build.log_tail or "")
    with open(tmp_db, "rb") as db:
        assert registry.password.encode() not in db.read()


def test_unchanged_spec_makes_no_engine_build_and_a_change_rebuilds(registry, tmp_db, standard_base):
    services = make_services(tmp_db, registry)
    name = add_image(services, registry, standard_base, pip=["numpy==1.26.4"])
    first = Builder(services).build(name, push=True)
    assert first.ok and not first.skipped
    calls_before = services.engine.build_calls

    again = Builder(services).build(name, push=True)
    assert again.skipped
    assert "up to date" in again.reason and f"#{first.build.id}" in again.reason
    assert services.engine.build_calls == calls_before
    assert len(services.store.builds(name)) == 1

    services.store.add_image(image_from_dict({**_dict(services, name), "pip": ["numpy==2.0.0"]}), replace=True)
    changed = Builder(services).build(name, push=True)
    assert changed.ok and not changed.skipped
    assert services.engine.build_calls == calls_before + 1

    forced = Builder(services).build(name, push=False, force=True)
    assert forced.ok and not forced.skipped


def _dict(services: Services, name: str) -> dict:
    from bot.domain.catalog import image_to_dict

    return image_to_dict(services.store.get_image(name))


def test_conda_base_uses_the_conda_pip(engine, registry, tmp_db, make_base):
    make_base(local("databricksruntime/standard:8.x"), python="conda")
    services = make_services(tmp_db, registry)
    name = add_image(services, registry, local("databricksruntime/standard:8.x"), pip=["koalas==1.8.2"])
    outcome = Builder(services).build(name)
    assert outcome.ok, outcome.error
    assert "/databricks/conda/envs/dcs-minimal/bin/pip" in outcome.dockerfile
    log = run_in(engine, outcome.build.image_id, "cat /databricks/conda/pip-installs.log")
    assert "koalas==1.8.2" in log


def test_minimal_base_builds_without_python_and_the_doctor_skips_python(registry, tmp_db, make_base):
    make_base(local("databricksruntime/minimal:15.4-LTS"), python=None)
    services = make_services(tmp_db, registry)
    name = add_image(services, registry, local("databricksruntime/minimal:15.4-LTS"), apt=["libgomp1"])
    outcome = Builder(services).build(name)
    assert outcome.ok, outcome.error
    assert {c.name: c.status for c in outcome.doctor.checks}["python"] == "skip"


def test_base_without_sudo_and_iproute2_fails_the_doctor_and_blocks_the_push(registry, tmp_db, make_base, push_base):
    make_base("dcs-tests/broken-base:1", sudo=False, iproute2=False)
    push_base("dcs-tests/broken-base:1", registry, "dcs-tests/broken-base", "1")
    services = make_services(tmp_db, registry)
    name = add_image(services, registry, f"{registry.host}/dcs-tests/broken-base:1")

    outcome = Builder(services).build(name, push=True)
    assert isinstance(outcome.error, DoctorFailed)
    assert "sudo" in outcome.error.message and "iproute2" in outcome.error.message
    assert "doctor.waive" in outcome.error.message
    assert outcome.build.status == "failed"
    failed = {c.name for c in outcome.doctor.failures}
    assert failed == {"sudo", "iproute2"}
    assert services.store.pushes(outcome.build.id) == []
    assert registry_digest(registry, f"dcs-tests/{name}", "latest") is None

    forced = Builder(services).build(name, push=True, force=True)  # forcing rebuilds; it skips no check
    assert isinstance(forced.error, DoctorFailed) and services.store.pushes(forced.build.id) == []
    assert registry_digest(registry, f"dcs-tests/{name}", "latest") is None

    spec = services.store.get_image(name)
    waive = {"sudo": "test image, never launched", "iproute2": "test image, never launched"}
    services.store.add_image(image_from_dict({**image_to_dict(spec), "doctor": {"waive": waive}}), replace=True)
    waived = Builder(services).build(name, push=True)
    assert waived.ok
    rows = {c.name: (c.status, c.waiver) for c in waived.doctor.checks}
    assert rows["sudo"] == rows["iproute2"] == ("waived", "test image, never launched")
    assert {r["name"]: r["status"] for r in waived.build.doctor}["sudo"] == "waived"  # stored as shown
    assert registry_digest(registry, f"dcs-tests/{name}", "latest") == waived.build.pushed_digest


def test_failing_build_reports_the_step_and_the_log(registry, tmp_db, standard_base):
    services = make_services(tmp_db, registry)
    name = add_image(services, registry, standard_base, pip=["dcs-test-broken==1.0"])
    outcome = Builder(services).build(name, push=True)
    assert isinstance(outcome.error, BuildFailed)
    build = outcome.build
    assert build.status == "failed"
    assert "pip" in build.failed_step and "Step 6/" in build.failed_step  # the install stage's pip step
    assert "No matching distribution found for dcs-test-broken" in build.log_tail
    # the cause comes first, in the catalog's words (field, entry)
    assert build.error.startswith("pip: 'dcs-test-broken==1.0' was not found (No matching distribution found")
    assert build.finished_at is not None


def test_build_timeout_stops_a_silent_step(registry, tmp_db, standard_base):
    services = make_services(tmp_db, registry, DCS_BUILD_TIMEOUT="3")
    slow = f"dcs-test-slow-{uuid.uuid4().hex[:8]}==1.0"  # unique, so no layer cache hit
    name = add_image(services, registry, standard_base, pip=[slow])
    started = time.monotonic()
    outcome = Builder(services).build(name)
    elapsed = time.monotonic() - started
    assert isinstance(outcome.error, BuildTimedOut)
    assert "timed out after 3 s" in outcome.error.message
    assert outcome.build.status == "failed"
    assert elapsed < 25  # the stub pip sleeps 30 s: the build was cut short


def test_wrong_registry_password_is_reported_plainly_and_never_stored(registry, tmp_db, make_base):
    make_base(local("databricksruntime/standard:15.4-LTS"))  # a local base: the push is the first registry contact
    wrong = "definitely-wrong-password-7f3a"
    services = make_services(tmp_db, registry, password=wrong)
    name = add_image(services, registry, local("databricksruntime/standard:15.4-LTS"))
    outcome = Builder(services).build(name, push=True)
    assert isinstance(outcome.error, RegistryAuthError)
    assert "credentials" in outcome.error.message
    assert outcome.build.status == "failed"
    assert outcome.build.image_id  # it was built; the push is what failed
    assert services.store.pushes(outcome.build.id) == []
    with open(tmp_db, "rb") as db:
        assert wrong.encode() not in db.read()


def test_registry_down_is_reported_as_unreachable(registry, tmp_db, standard_base, registry_factory):
    target = registry_factory()
    services = make_services(tmp_db, registry)
    services.store.add_registry(
        registry_from_dict(
            {"name": "down", "host": target.host, "username": target.username, "password_env": "DCS_SECRET_DOWN_PW"}
        )
    )
    spec = image_from_dict(
        {
            "name": "goes-nowhere",
            "base": standard_base,
            "registry": "down",
            "repository": f"{target.host}/dcs-tests/goes-nowhere",
        }
    )
    services.store.add_image(spec)
    target.stop()
    services = build_services(load_config({**services.config.environ, "DCS_SECRET_DOWN_PW": target.password}))
    outcome = Builder(services).build("goes-nowhere", push=True)
    assert isinstance(outcome.error, RegistryUnreachable)
    assert target.host in outcome.error.message or "reach" in outcome.error.message


def test_build_left_running_by_a_crash_is_marked_interrupted(tmp_db):
    store = Store(tmp_db)
    build = store.create_build("team-pandas", requester="U1", source="cli")
    store.update_build(build.id, status="running")
    store.close()
    reopened = Store(tmp_db)
    assert reopened.mark_interrupted() == [build.id]
    assert reopened.get_build(build.id).status == "interrupted"
