"""Acks leave when the listener calls `ack()`: not at Bolt's next 10 ms poll, and not after what the listener
does next (a `views.open`, a `respond()`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import slack_bolt.listener.thread_runner as thread_runner
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from bot.clients.slack_acks import PromptAck, PromptAckExecutor
from tests.fakes.slack import FakeSlack, signed_headers

SECRET = "test-signing-secret"


def app_with(slack: FakeSlack, listener: Any, *, prompt: bool = True) -> App:
    app = App(
        client=WebClient(token="xoxb-t", base_url=slack.api_url),
        signing_secret=SECRET,
        token_verification_enabled=False,
        listener_executor=PromptAckExecutor(max_workers=4) if prompt else None,
    )
    if prompt:
        app.use(PromptAck())
    app.command("/dcs")(listener)
    return app


def command(text: str) -> BoltRequest:
    body = urlencode({"command": "/dcs", "text": text, "user_id": "U1", "team_id": "T1", "channel_id": "C1",
                      "trigger_id": "1.2.3", "response_url": "http://127.0.0.1:9/r"})  # fmt: skip
    return BoltRequest(body=body, headers={k.lower(): v for k, v in signed_headers(SECRET, body.encode()).items()})


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """The sleeps of Bolt's wait for the ack (`while ack.response is None: time.sleep(0.01)`)."""
    calls: list[float] = []
    real = thread_runner.time.sleep
    monkeypatch.setattr(thread_runner.time, "sleep", lambda s: (calls.append(s), real(s)))
    return calls


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """Slack's Web API (auth.test for the first request) from the local fake, like every app test."""
    with FakeSlack() as fake:
        yield fake


def test_the_ack_is_answered_while_the_listener_still_works_and_without_polling(slack, sleeps) -> None:
    release, finished = threading.Event(), threading.Event()

    def listener(ack: Any) -> None:
        ack(text="on it")
        release.wait(10)  # e.g. views.open after the ack
        finished.set()

    response = app_with(slack, listener).dispatch(command("build x"))
    assert response.status == 200 and "on it" in response.body
    assert not finished.is_set()  # the answer did not wait for what came after the ack
    assert sleeps == []  # nor for Bolt's 10 ms poll
    release.set()
    assert finished.wait(10)


def test_plain_bolt_polls_for_the_ack(slack, sleeps) -> None:
    """What the two tests above are measured against: Bolt's own wait sleeps before it finds the ack."""

    def listener(ack: Any) -> None:
        threading.Event().wait(0.05)  # a listener with a little work before its ack
        ack(text="ok")

    response = app_with(slack, listener, prompt=False).dispatch(command("x"))
    assert response.status == 200 and sleeps and set(sleeps) == {0.01}
    sleeps.clear()
    response = app_with(slack, listener).dispatch(command("x"))
    assert response.status == 200 and sleeps == []


def test_a_listener_that_fails_before_acking_is_answered_at_once(slack, sleeps) -> None:
    def listener(ack: Any) -> None:
        raise RuntimeError("boom")

    response = app_with(slack, listener).dispatch(command("x"))
    assert response.status == 500 and sleeps == []


def test_the_bot_acks_slash_commands_without_polling(slack, sleeps, tmp_db) -> None:
    from bot.app import create_app
    from bot.compose import build_services
    from bot.config import load_config
    from bot.workers import Workers

    config = load_config({"DCS_DB": tmp_db, "SLACK_BOT_TOKEN": "xoxb-t", "SLACK_SIGNING_SECRET": SECRET,
                          "SLACK_API_URL": slack.api_url})  # fmt: skip
    workers = Workers(1)
    try:
        app = create_app(config, build_services(config), workers)
        for text in ("help", "images", "no-such-command"):
            response = app.dispatch(command(text))
            assert response.status == 200 and "blocks" in response.body
        assert sleeps == []
    finally:
        workers.shutdown(wait=False)
