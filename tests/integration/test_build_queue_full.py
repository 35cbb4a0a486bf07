"""A build refused because the bot's queue is full is not a failed build: nothing lands in the history, and the
image can be asked for again as soon as there is room."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.app import app_context, create_app
from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import image_from_dict
from bot.workers import QueueFull, Workers
from handlers.builds import start_build
from handlers.context import AppContext
from tests.fakes.slack import FakeSlack


@pytest.fixture
def ctx(tmp_db: str) -> Iterator[tuple[AppContext, Workers]]:
    with FakeSlack() as slack:
        config = load_config(
            {
                "DCS_DB": tmp_db,
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": "secret",
                "SLACK_API_URL": slack.api_url,
                "DOCKER_HOST": "tcp://127.0.0.1:9",
            }
        )
        services = build_services(config)
        services.store.add_image(
            image_from_dict({"name": "team-pandas", "base": "ubuntu:22.04", "repository": "r.io/team/pandas"})
        )
        workers = Workers(1, max_queued=1)
        yield app_context(create_app(config, services, workers)), workers
        workers.shutdown(wait=True, timeout=10)


def test_a_build_refused_by_a_full_queue_is_not_recorded_as_failed(ctx: tuple[AppContext, Workers]) -> None:
    app, workers = ctx
    gate = threading.Event()
    workers.submit("busy-1", gate.wait, 30)
    workers.submit("busy-2", gate.wait, 30)  # one running, one waiting: the line is full
    with pytest.raises(QueueFull, match="already waiting"):
        start_build(app, "team-pandas", push=False, requester="U1", channel="C1", claim_key="k1")
    assert app.store.builds("team-pandas") == []  # no failed build in the history
    assert app.store.active_build("team-pandas") is None  # and nothing blocks the next request
    assert [e.outcome for e in app.store.audit_events(action="build.request")] == ["refused: queue full"]

    gate.set()
    assert workers.wait_idle(10)
    started = start_build(app, "team-pandas", push=False, requester="U1", channel="C1", claim_key="k2")
    assert not started.duplicate and started.build.status == "queued"
