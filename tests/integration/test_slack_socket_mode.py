"""Socket Mode smoke test: apps.connections.open → a local ws:// server says hello and delivers commands."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.app import create_app
from bot.compose import build_services
from bot.config import load_config
from bot.workers import Workers
from tests.fakes.slack import FakeSlack, FakeSocketModeServer, slash_command_payload, socket_mode_envelope


@pytest.fixture
def socket_bot(tmp_db: str) -> Iterator[tuple[FakeSlack, FakeSocketModeServer]]:
    with FakeSocketModeServer() as server, FakeSlack(socket_mode_url=server.url) as fake:
        config = load_config(
            {
                "DCS_DB": tmp_db,
                "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_APP_TOKEN": "xapp-1-test",
                "SLACK_API_URL": fake.api_url,
                "DOCKER_HOST": "tcp://127.0.0.1:9",
            }
        )
        services = build_services(config)
        workers = Workers(1)
        handler = SocketModeHandler(create_app(config, services, workers), config.slack_app_token)
        handler.connect()
        try:
            yield fake, server
        finally:
            handler.close()
            workers.shutdown(wait=False)


def test_socket_mode_connects_and_acks_a_slash_command(socket_bot) -> None:
    fake, server = socket_bot
    (opened,) = fake.wait_for("apps.connections.open")
    assert opened.token == "xapp-1-test"  # the app-level token, not the bot token
    envelope = socket_mode_envelope(slash_command_payload("imgaes", user_id="UBUILD1"))
    server.send(envelope)
    ack = server.wait_for_ack(envelope["envelope_id"], timeout=10)
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "Did you mean `images`?" in ack["payload"]["text"]


def test_socket_mode_button_click_is_acked_and_answered(socket_bot) -> None:
    fake, server = socket_bot
    fake.wait_for("apps.connections.open")
    from tests.fakes.slack import block_actions_payload

    payload = block_actions_payload(
        "launch_cluster", json.dumps({"image": "x", "build": 1}), response_url=fake.response_url("launch")
    )
    envelope = socket_mode_envelope(payload)
    server.send(envelope)
    server.wait_for_ack(envelope["envelope_id"], timeout=10)
    from tests.fakes.http import wait_until

    posts = wait_until(lambda: fake.response_posts("launch"), 10, lambda: "no response_url post")
    assert "not set up in this bot yet" in json.dumps(posts[0].body)
