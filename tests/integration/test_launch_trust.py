"""Launches through Slack cannot reach what they were not given: secret references in launch values, forged
form state. Signed Slack requests over real HTTP, the real databricks-sdk against FakeDatabricks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.databricks import FakeDatabricks
from tests.fakes.slack import FakeSlack
from tests.support.launch_bot import GOOD_FORM, LaunchBot, seed_image, start_launch_bot

REF = "{{secrets/prod/db-password}}"


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks) -> Iterator[LaunchBot]:
    harness = start_launch_bot(tmp_db, slack, databricks, DCS_LAUNCH_SECRET_SCOPES="team-data")
    yield harness
    harness.stop()


def test_a_secret_reference_in_launch_arguments_never_reaches_databricks(bot: LaunchBot) -> None:
    """Before: `/dcs launch … spark.x={{secrets/scope/key}}` reached clusters/create unchanged."""
    seed_image(bot.ctx)
    words = "launch team-pandas runtime=15.4.x-scala2.12 node_type=m5d.large"
    for extra in (f"spark.x={REF}", f"env.DB_PW={REF}", f"tag.t={REF}", f"name=x{REF}"):
        answer, _ = bot.command(f"{words} {extra}")
        assert "references a Databricks secret" in answer["text"], (extra, answer)
    bot.command(f"{words} spark.x={{{{secrets/team-data/key}}}}")  # an allowed scope, as a whole value
    bot.wait_launch(lambda launch: launch.status == "running")
    specs = bot.databricks.created_specs()
    assert len(specs) == 1 and specs[0]["spark_conf"]["spark.x"] == "{{secrets/team-data/key}}"


def test_a_secret_reference_in_the_form_is_an_inline_error(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    view = bot.open_form()
    for block, value in (("spark_conf", f"spark.x={REF}"), ("spark_env_vars", f"DB_PW={REF}"), ("tags", f"t={REF}")):
        answer = bot.submit(view, {**GOOD_FORM, block: value})
        assert answer.get("response_action") == "errors", (block, answer)
        assert "references a Databricks secret" in answer["errors"].get(block, ""), (block, answer)
    assert bot.databricks.created_specs() == []
