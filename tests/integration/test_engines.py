"""Several build engines (DCS_ENGINES) on two real Docker engines: the test engine of ./scripts/test ("a", unix
socket) and a private dockerd started per test ("b", reached over tcp://127.0.0.1 with mutual TLS).

What a user notices: a build goes to the engine that already has its base (no pull); builds at once spread
over the engines' slots; an engine that does not answer is skipped, shown on /healthz, and the builds that
were waiting go to the engine that answers.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator

import docker
import pytest
import trustme

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.http import Health
from bot.ops.build import Builder
from bot.services import Services
from tests.conftest import unavailable
from tests.support.dockerd import DockerdUnavailable, PrivateDockerd
from tests.support.images import ImageArchive, base_archive, ensure_image
from tests.support.namespace import local
from tests.support.rootfs import BaseSpec, read_static_busybox

BASE = local("engines/databricksruntime/standard:15.4-LTS")
STARTED = itertools.count(1)


@pytest.fixture(scope="module")
def archive(engine: docker.DockerClient) -> ImageArchive:
    return base_archive(BaseSpec(marker="engines"), read_static_busybox(), ref=BASE, arch=engine.version()["Arch"])


@pytest.fixture
def engine_b() -> Iterator[PrivateDockerd]:
    try:
        dockerd = PrivateDockerd(f"b{next(STARTED)}", tls=trustme.CA()).start()
    except DockerdUnavailable as exc:
        unavailable(str(exc))
    try:
        yield dockerd
    finally:
        dockerd.stop()


def engine_a_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def services_for(tmp_db: str, engines: str) -> Services:
    # No Docker Hub here: the base check fails fast and the build uses the engines' local copy of the base.
    return build_services(
        load_config({"DCS_DB": tmp_db, "DCS_ENGINES": engines, "DOCKERHUB_REGISTRY_URL": "http://127.0.0.1:9"})
    )


def two_engines(tmp_db: str, b: PrivateDockerd, *, a_slots: int = 1, b_slots: int = 1) -> Services:
    entries = f"{engine_a_url()}?name=a&concurrency={a_slots}, {b.tls_url}?name=b&concurrency={b_slots}&certs={b.certs}"
    return services_for(tmp_db, entries)


def add_images(services: Services, *names: str) -> None:
    for name in names:
        services.store.add_image(
            image_from_dict({"name": name, "base": BASE, "repository": local(f"engines/{name}"), "env": {"N": name}})
        )


def built_on(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(f"{local(f'engines/{name}')}:latest")
        return True
    except docker.errors.ImageNotFound:
        return False


def build_all(services: Services, names: list[str]) -> dict[str, object]:
    outcomes: dict[str, object] = {}

    def one(name: str) -> None:
        outcomes[name] = Builder(services).build(name, force=True)

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return outcomes


def test_a_build_goes_to_the_engine_that_has_its_base(engine, tmp_db, engine_b, archive) -> None:
    b = engine_b.client()
    ensure_image(b, archive, BASE)  # only b has the base (a lacks it: this test's own tag)
    try:
        engine.images.remove(BASE)
    except docker.errors.ImageNotFound:
        pass
    services = two_engines(tmp_db, engine_b)
    add_images(services, "affine")
    outcome = Builder(services).build("affine")
    assert outcome.ok, outcome.error
    assert built_on(b, "affine") and not built_on(engine, "affine")
    assert "Building on engine b" in outcome.log


def test_builds_at_once_spread_over_the_engines_slots(engine, tmp_db, engine_b, archive) -> None:
    b = engine_b.client()
    ensure_image(engine, archive, BASE)
    ensure_image(b, archive, BASE)
    services = two_engines(tmp_db, engine_b)  # one slot each
    add_images(services, "spread-1", "spread-2")
    outcomes = build_all(services, ["spread-1", "spread-2"])
    assert all(o.ok for o in outcomes.values()), [o.error for o in outcomes.values()]
    on_a = {n for n in outcomes if built_on(engine, n)}
    on_b = {n for n in outcomes if built_on(b, n)}
    assert len(on_a) == 1 and len(on_b) == 1 and on_a != on_b  # one each, neither waited for the other


def test_an_unreachable_engine_is_skipped_reported_and_its_builds_go_elsewhere(
    engine, tmp_db, engine_b, archive
) -> None:
    b = engine_b.client()
    ensure_image(engine, archive, BASE)
    ensure_image(b, archive, BASE)
    services = two_engines(tmp_db, engine_b, a_slots=1, b_slots=2)
    add_images(services, "moved-1", "moved-2")
    first = build_all(services, ["moved-1", "moved-2"])
    assert all(o.ok for o in first.values())
    assert built_on(b, "moved-1") or built_on(b, "moved-2")  # b had the most slots: it took builds

    engine_b.stop()  # b goes away; the next builds of the same images (their layers were on b) go to a
    services.engines.recheck_seconds = 0  # the bot re-checks every 15 s; the test need not wait for that
    again = build_all(services, ["moved-1", "moved-2"])  # a has one slot: one of them waits for it
    assert all(o.ok for o in again.values()), [o.error for o in again.values()]
    assert built_on(engine, "moved-1") and built_on(engine, "moved-2")

    health = Health(services).check()
    assert health["status"] == "degraded" and health["docker"] is True
    rows = {row["name"]: row for row in health["engines"]}
    assert rows["a"]["reachable"] is True and rows["b"]["reachable"] is False
    assert rows["b"]["error"] and rows["b"]["concurrency"] == 2


def test_with_no_engine_answering_a_build_fails_naming_each_engine(tmp_db: str) -> None:
    services = services_for(tmp_db, "unix:///nonexistent/one.sock?name=one, unix:///nonexistent/two.sock?name=two")
    add_images(services, "nowhere")
    outcome = Builder(services).build("nowhere", force=True)
    assert outcome.error is not None
    assert "No build engine answers" in outcome.error.message
    assert "one:" in outcome.error.message and "two:" in outcome.error.message
    assert services.store.last_build("nowhere").status == "failed"
