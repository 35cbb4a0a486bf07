"""The connection to the Docker engine lost in the middle of a build or a push: the real engine behind a proxy whose
socket the test cuts (a TCP reset while the engine streams). The build fails with a plain "lost the connection
to the Docker engine", and the Slack bot stays up: it answers and builds the next image."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bot.app import app_context, create_app
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.errors import EngineUnavailable
from bot.http import ServerThread, create_server, make_wsgi_app
from bot.ops.build import Builder
from bot.services import Services
from bot.workers import Workers
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack, signed_headers, slash_command_body
from tests.support.cutproxy import CutProxy
from tests.support.namespace import local

PASSWORD_VAR = "DCS_SECRET_TEST_PUSH_PASSWORD"
SECRET = "test-signing-secret-0123456789"
BUILDER = "UBUILD1"
LOST = "Lost the connection to the Docker engine"


@pytest.fixture
def proxy(engine: Any) -> Iterator[CutProxy]:
    upstream = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    cut = CutProxy(upstream).start()
    yield cut
    cut.stop()


@pytest.fixture
def base(make_base: Any) -> str:
    return make_base(local("databricksruntime/standard:15.4-LTS"))


def environ(tmp_db: str, proxy: CutProxy, registry: Any, **extra: str) -> dict[str, str]:
    return {
        "DCS_DB": tmp_db,
        "DOCKER_HOST": proxy.url,
        PASSWORD_VAR: registry.password,
        "HOME": "/nonexistent",
        **extra,
    }


def add_registry_and_image(services: Services, registry: Any, base: str, pip: list[str]) -> str:
    if not services.store.list_registries():
        services.store.add_registry(
            registry_from_dict(
                {"name": "local", "host": registry.host, "username": registry.username, "password_env": PASSWORD_VAR}
            )
        )
    name = f"lost-{uuid.uuid4().hex[:8]}"
    services.store.add_image(
        image_from_dict(
            {
                "name": name,
                "base": base,  # the stub base by image id: an own base, which says where its Python is
                "python": "/databricks/python3/bin/python",
                "repository": f"{registry.host}/dcs-tests/{name}",
                "pip": pip,
            }
        )
    )
    return name


def slow_pip() -> list[str]:
    return [f"dcs-test-slow-{uuid.uuid4().hex[:8]}==1.0"]  # the stub pip sleeps 30 s; unique, so never cached


def test_a_connection_lost_mid_build_fails_the_build_plainly(tmp_db, proxy, registry, base) -> None:
    services = build_services(load_config(environ(tmp_db, proxy, registry)))
    name = add_registry_and_image(services, registry, base, slow_pip())
    fired = proxy.cut_on(b"/build", b"Step 7/12")  # reset while the engine runs the 30 s pip step (install stage)
    started = time.monotonic()
    outcome = Builder(services).build(name)
    assert fired.is_set()
    assert isinstance(outcome.error, EngineUnavailable), outcome.error
    assert LOST in outcome.error.message and "during the build" in outcome.error.message
    assert outcome.build is not None and outcome.build.status == "failed"
    assert LOST in (outcome.build.error or "")
    assert time.monotonic() - started < 25  # not after the pip step: the cut ended it


def test_a_connection_lost_mid_push_fails_the_build_plainly(tmp_db, proxy, registry, base) -> None:
    services = build_services(load_config(environ(tmp_db, proxy, registry)))
    name = add_registry_and_image(services, registry, base, [])
    fired = proxy.cut_on(b"/push", b'"status"')  # reset after the engine's first push progress line
    outcome = Builder(services).build(name, push=True)
    assert fired.is_set()
    assert isinstance(outcome.error, EngineUnavailable), outcome.error
    assert LOST in outcome.error.message and f"the push of {registry.host}/dcs-tests/{name}" in outcome.error.message
    assert outcome.build is not None and outcome.build.status == "failed"
    assert outcome.build.image_id  # built; the push is what broke
    assert services.store.pushes(outcome.build.id) == []


# ---------------------------------------------------------------- the Slack bot stays up


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def command(url: str, slack: FakeSlack, text: str) -> dict[str, Any]:
    body = slash_command_body(text, user_id=BUILDER, response_url=slack.response_url(f"cmd-{uuid.uuid4().hex[:6]}"))
    response = requests.post(f"{url}/slack/events", data=body, headers=signed_headers(SECRET, body), timeout=10)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def test_the_bot_stays_up_after_the_engine_connection_broke(tmp_db, proxy, registry, base, slack) -> None:
    config = load_config(
        environ(
            tmp_db,
            proxy,
            registry,
            SLACK_BOT_TOKEN="xoxb-test-token",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack.api_url,
            DCS_BUILDERS=BUILDER,
        )
    )
    services = build_services(config)
    workers = Workers(config.workers)
    app = create_app(config, services, workers)
    assert app_context(app).services is services
    server = ServerThread(create_server(make_wsgi_app(app, services), "127.0.0.1", 0, threads=4)).start()
    try:
        broken = add_registry_and_image(services, registry, base, slow_pip())
        fired = proxy.cut_on(b"/build", b"Step 7/12")
        command(server.url, slack, f"build {broken}")
        failed = wait_until(
            lambda: next((b for b in services.store.builds(broken) if b.finished), None), 120, lambda: "no end"
        )
        assert fired.is_set() and failed.status == "failed" and LOST in (failed.error or "")
        message = wait_until(
            lambda: next((m for m in slack.messages() if m.ts == services.store.get_build(failed.id).slack_ts
                          and LOST in json.dumps(m.blocks)), None),
            30,
            lambda: str([m.text for m in slack.messages()]),
        )  # fmt: skip
        assert "failed" in (message.text or "")

        # Still up: it answers, and the next build runs to the end through the same engine client.
        assert requests.get(f"{server.url}/healthz", timeout=10).status_code in (200, 503)
        assert command(server.url, slack, "status")
        fine = add_registry_and_image(services, registry, base, [])
        command(server.url, slack, f"build {fine}")
        done = wait_until(
            lambda: next((b for b in services.store.builds(fine) if b.finished), None), 120, lambda: "no end"
        )
        assert done.status == "succeeded", done.error
    finally:
        server.stop()
        workers.shutdown(wait=True, timeout=60)
