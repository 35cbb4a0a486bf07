"""Launches through Slack cannot reach what they were not given: secret references in launch values, forged
form state. Signed Slack requests over real HTTP, the real databricks-sdk against FakeDatabricks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.fakes.databricks import FakeDatabricks
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import signed_headers, view_submission_body, view_submission_payload
from tests.support.launch_bot import (
    ADMIN,
    BUILDER,
    CHANNEL,
    GOOD_FORM,
    SECRET,
    LaunchBot,
    seed_image,
    start_launch_bot,
    state_values,
)

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


# ---------------------------------------------------------------- form state from the store


def _submit_raw(bot: LaunchBot, payload: dict[str, Any]) -> requests.Response:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return requests.post(f"{bot.url}/slack/events", data=body, headers=signed_headers(SECRET, body), timeout=15)


def test_forged_private_metadata_cannot_dedicate_a_cluster_to_someone_else(bot: LaunchBot) -> None:
    """Before: the dedicated user's email, the build and the channel came from private_metadata."""
    build_id = seed_image(bot.ctx)
    view = bot.open_form()
    forged = {"image": "team-pandas", "build": 999, "channel": "CVICTIM", "email": "victim@example.com"}
    assert bot.submit({**view, "private_metadata": json.dumps(forged)}, GOOD_FORM) == {}
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    sent = bot.databricks.created_specs()[0]
    assert sent["single_user_name"] == "bob@example.com"
    assert (launch.build_id, launch.requester, launch.slack_channel) == (build_id, BUILDER, CHANNEL)


@pytest.mark.parametrize("metadata", ["[1, 2]", '"text"', "{not json", '{"build": "1; drop"}', "null"])
def test_malformed_private_metadata_is_not_read_at_all(bot: LaunchBot, metadata: str) -> None:
    seed_image(bot.ctx)
    view = bot.open_form()
    assert bot.submit({**view, "private_metadata": metadata}, GOOD_FORM) == {}  # before: HTTP 500
    bot.wait_launch(lambda launch: launch.status == "running")
    assert bot.databricks.created_specs()[0]["single_user_name"] == "bob@example.com"


def test_a_form_submitted_by_another_user_or_unknown_to_the_bot_is_refused(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    view = bot.open_form()
    answer = bot.submit(view, GOOD_FORM, user=ADMIN)
    assert "opened for someone else" in answer["errors"]["runtime"]
    answer = bot.submit({**view, "id": "V0FORGED1"}, GOOD_FORM)
    assert "does not know this form" in answer["errors"]["runtime"]
    assert bot.databricks.created_specs() == []


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"view": [1, 2]}, 400, "'view' is not an object"),
        ({"view": "V1"}, 400, "'view' is not an object"),
        ({"user": ["U1"]}, 400, "'user' is not an object"),
        ({"user": {"id": 5}}, 400, "'user.id' is not text"),
        ({"user": None}, 200, "has no user or view"),
    ],
)
def test_malformed_submissions_get_a_clear_answer_never_a_500(
    bot: LaunchBot, change: dict[str, Any], status: int, words: str
) -> None:
    seed_image(bot.ctx)
    view = bot.open_form()
    payload = view_submission_payload(view["callback_id"], state_values(GOOD_FORM), user_id=BUILDER, view_id=view["id"])
    if "view" in change:  # Slack routes a view_submission by its callback_id: keep one the listener matches
        payload["view"] = change["view"]
    else:
        payload.update(change)
    response = _submit_raw(bot, payload)  # before: HTTP 500 from inside Bolt or the listener
    assert response.status_code == status, response.text
    assert words in response.text
    assert bot.databricks.created_specs() == []


# ---------------------------------------------------------------- buttons act on their own message's build/launch


def test_a_launch_button_launches_the_build_of_its_message(bot: LaunchBot, slack: FakeSlack) -> None:
    build_id = seed_image(bot.ctx)
    bot.ctx.store.update_build(build_id, slack_channel=CHANNEL, slack_ts="1700000000.000100")
    message = SimpleNamespace(ts="1700000000.000100")
    forged = bot.click("launch_cluster", json.dumps({"image": "team-pandas", "build": 999}), BUILDER, message)
    assert "does not match this message" in slack.wait_for_response_post(forged).body["text"]
    assert not slack.calls("views.open")
    bot.click("launch_cluster", json.dumps({"image": "team-pandas", "build": build_id}), BUILDER, message)
    view_id = slack.wait_for("views.update", timeout=30)[-1].params["view_id"]
    form = bot.ctx.store.form(view_id, "launch")
    assert form is not None and form.user == BUILDER and form.state["build"] == build_id


def test_launch_anyway_acts_only_on_the_launch_of_its_message(bot: LaunchBot, slack: FakeSlack) -> None:
    build_id = seed_image(bot.ctx)
    store = bot.ctx.store
    mine = store.insert_launch(image="team-pandas", build_id=build_id, requester=BUILDER, status="blocked")
    theirs = store.insert_launch(image="team-pandas", build_id=build_id, requester=BUILDER, status="blocked")
    store.update_launch(mine.id, slack_channel=CHANNEL, slack_ts="1700000000.000200")
    store.update_launch(theirs.id, slack_channel=CHANNEL, slack_ts="1700000000.000300")
    clicked = bot.click("launch_anyway", str(theirs.id), BUILDER, SimpleNamespace(ts="1700000000.000200"))
    assert "is not the launch of this message" in slack.wait_for_response_post(clicked).body["text"]
    assert bot.ctx.workers.wait_idle(10)
    assert store.get_launch(theirs.id).status == "blocked" and store.get_launch(mine.id).status == "blocked"
    assert bot.databricks.created_specs() == []


def test_the_image_add_form_confirms_where_it_was_opened_whatever_its_metadata_says(
    bot: LaunchBot, slack: FakeSlack
) -> None:
    bot.command("image add", user=ADMIN)
    slack.wait_for("views.open", timeout=30)
    view = next(v for v in slack.views().values() if v.get("callback_id") == "image_add")
    state = {
        "name": {"value": {"type": "plain_text_input", "value": "team-x"}},
        "flavour": {"value": {"type": "static_select", "selected_option": {"value": "python"}}},
        "runtime": {"value": {"type": "static_select", "selected_option": {"value": "15.4"}}},
        "repository": {"value": {"type": "plain_text_input", "value": "myacr.azurecr.io/team/x"}},
    }
    body = view_submission_body(
        "image_add", state, user_id=ADMIN, view_id=view["id"], private_metadata=json.dumps({"channel": "CVICTIM"})
    )
    assert bot.post(body).status_code == 200
    (note,) = slack.wait_for("chat.postEphemeral", timeout=30)
    assert (note.params["channel"], note.params["user"]) == (CHANNEL, ADMIN)
    assert bot.ctx.store.get_image("team-x").repository == "myacr.azurecr.io/team/x"
