"""The Docker Hub pull budget before a launch: the account the cluster pulls with, read from FakeDockerHub
with the real client; a warning with the numbers when low, a hold with "Launch anyway" when none is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.domain.catalog import RegistrySpec
from tests.fakes.databricks import FakeDatabricks
from tests.fakes.dockerhub import FakeDockerHub
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack
from tests.support.launch_bot import (
    ADMIN,
    BUILDER,
    GOOD_FORM,
    OUTSIDER,
    LaunchBot,
    seed_image,
    start_launch_bot,
)

HUB = RegistrySpec("hub", "docker.io", "dcsbot", "DCS_SECRET_TEST_HUB_TOKEN", None, "{{secrets/dcs/hub}}")


@pytest.fixture
def hub() -> Iterator[FakeDockerHub]:
    with FakeDockerHub(users={"dcsbot": "dckr_pat_test_hub"}) as fake:
        yield fake


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks, hub: FakeDockerHub) -> Iterator[LaunchBot]:
    harness = start_launch_bot(
        tmp_db,
        slack,
        databricks,
        DOCKERHUB_AUTH_URL=hub.url,
        DOCKERHUB_REGISTRY_URL=hub.url,
        DCS_SECRET_TEST_HUB_TOKEN="dckr_pat_test_hub",
    )
    seed_image(harness.ctx, repository="dcsteam/pandas", registry=HUB)
    yield harness
    harness.stop()


def test_enough_pulls_launches_without_a_warning(bot: LaunchBot, hub: FakeDockerHub) -> None:
    hub.set_rate_limit(200, 150, user="dcsbot")
    bot.submit(bot.open_form(), GOOD_FORM)
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    assert launch.request["budget"]["status"] == "ok" and launch.request["budget"]["remaining"] == 150
    assert hub.counts() == {"HEAD": 1}  # read with a HEAD: checking spends no pull
    assert bot.databricks.created_specs()[0]["docker_image"]["url"].startswith("dcsteam/pandas@sha256:")


def test_too_few_pulls_warns_with_the_numbers(bot: LaunchBot, hub: FakeDockerHub) -> None:
    hub.set_rate_limit(200, 2, user="dcsbot")
    bot.submit(bot.open_form(), {**GOOD_FORM, "workers": "3"})  # 4 nodes start, 4 pulls
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    blocks = bot.message_of(launch).blocks
    text = json.dumps(blocks)
    assert "dcsbot has 2 of 200 pulls left per 6 h" in text and "needs 4 at start" in text
    (warning,) = [b for b in blocks if "pulls left" in json.dumps(b)]
    assert warning["type"] == "section" and warning["text"]["text"].startswith(":warning:")  # not grey small print
    assert len(bot.databricks.created_specs()) == 1


def test_no_pulls_left_holds_the_launch_until_launch_anyway(
    bot: LaunchBot, hub: FakeDockerHub, slack: FakeSlack
) -> None:
    hub.set_exhausted(user="dcsbot")
    bot.submit(bot.open_form(), GOOD_FORM)
    launch = bot.wait_launch(lambda launch: launch.status == "blocked" and bool(launch.slack_ts))
    message = bot.wait_message(launch.id, "Launch anyway")
    assert "ON HOLD" in message.text and bot.databricks.created_specs() == []
    assert ".." not in json.dumps(message.blocks)  # one full stop between sentences ("registry.. Docker Hub")
    (anyway,) = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert anyway["confirm"]["style"] == "danger" and "Docker Hub" in anyway["confirm"]["text"]["text"]

    refused = bot.click("launch_anyway", str(launch.id), OUTSIDER, message)
    post = slack.wait_for_response_post(refused)
    assert "Only the person who asked" in post.body["text"]
    assert bot.ctx.store.get_launch(launch.id).status == "blocked"

    bot.click("launch_anyway", str(launch.id), BUILDER, message)
    bot.click("launch_anyway", str(launch.id), BUILDER, message)  # a double click
    bot.wait_launch(lambda launch: launch.status == "running")
    bot.wait_message(launch.id, "RUNNING")
    assert bot.ctx.workers.wait_idle(10)
    assert len(bot.databricks.created_specs()) == 1
    assert "launch.anyway" in [e.action for e in bot.ctx.store.audit_events(limit=50)]


def test_an_admin_may_launch_anyway_for_someone_else(bot: LaunchBot, hub: FakeDockerHub) -> None:
    hub.set_rate_limit(200, 0, user="dcsbot")  # HEAD still answers, with 0 remaining
    bot.submit(bot.open_form(), GOOD_FORM)
    launch = bot.wait_launch(lambda launch: launch.status == "blocked" and bool(launch.slack_ts))
    bot.click("launch_anyway", str(launch.id), ADMIN, bot.message_of(launch))
    wait_until(lambda: bot.ctx.store.get_launch(launch.id).status == "running", 30, lambda: "not running")


def test_anonymous_docker_hub_pulls_are_flagged_as_unmeasurable(
    tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks
) -> None:
    bot = start_launch_bot(tmp_db, slack, databricks)
    try:
        seed_image(bot.ctx, repository="dcsteam/public", registry=None)
        bot.submit(bot.open_form(), GOOD_FORM)
        launch = bot.wait_launch(lambda launch: launch.status == "running")
        assert "anonymously" in json.dumps(bot.message_of(launch).blocks)
        assert "basic_auth" not in bot.databricks.created_specs()[0]["docker_image"]
    finally:
        bot.stop()
