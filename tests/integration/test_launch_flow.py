"""Launching clusters end to end: signed Slack requests over real HTTP to the bot, the real databricks-sdk
against FakeDatabricks, FakeSlack for the Web API (harness in tests/support/launch_bot.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import requests

from bot.domain.catalog import RegistrySpec, image_from_dict
from tests.fakes.databricks import NODE_TYPES, FakeDatabricks, _node
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack, block_suggestion_body, signed_headers
from tests.support.launch_bot import (
    ADMIN,
    BUILDER,
    DIGEST,
    GOOD_FORM,
    NO_EMAIL,
    OUTSIDER,
    SECRET,
    LaunchBot,
    left_creating,
    seed_image,
    start_launch_bot,
)


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks) -> Iterator[LaunchBot]:
    harness = start_launch_bot(tmp_db, slack, databricks)
    yield harness
    harness.stop()


# ---------------------------------------------------------------- from the form to RUNNING


def test_launch_from_the_form_to_running(bot: LaunchBot) -> None:
    build_id = seed_image(bot.ctx)
    view = bot.open_form()
    runtime_block = next(b for b in view["blocks"] if b.get("block_id") == "runtime")
    offered = [o["value"] for o in runtime_block["element"]["options"]]
    assert runtime_block["element"]["initial_option"]["value"] == "15.4.x-scala2.12"  # the base's runtime
    assert "17.3.x-scala2.13" in offered and offered.index("17.3.x-scala2.13") < offered.index("17.2.x-scala2.13")
    assert not [k for k in offered if "-ml-" in k or "aarch64" in k or "-hls-" in k or k.startswith("apache")]
    nodes = [
        o["value"] for o in next(b for b in view["blocks"] if b.get("block_id") == "node_type")["element"]["options"]
    ]
    assert "m6gd.large" not in nodes and "m4.large" not in nodes and "g4dn.xlarge" not in nodes

    assert bot.submit(view, {**GOOD_FORM, "init_scripts": "file:/databricks/scripts/setup.sh"}) == {}
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    message = bot.wait_message(launch.id, "RUNNING")

    assert len(bot.databricks.created_specs()) == 1
    sent = bot.databricks.created_specs()[0]
    assert sent["docker_image"] == {
        "url": f"myacr.azurecr.io/team/pandas@{DIGEST}",
        "basic_auth": {"username": "sp-id", "password": "{{secrets/dcs/acr}}"},
    }
    assert (sent["data_security_mode"], sent["single_user_name"]) == ("SINGLE_USER", "bob@example.com")
    assert sent["spark_conf"]["spark.databricks.unityCatalog.volumes.enabled"] == "true"
    assert sent["init_scripts"] == [{"file": {"destination": "file:/databricks/scripts/setup.sh"}}]
    assert sent["custom_tags"]["dcs_launched_by"] == BUILDER and sent["custom_tags"]["dcs_image_digest"] == DIGEST
    assert sent["num_workers"] == 2 and sent["autotermination_minutes"] == 60
    assert launch.build_id == build_id and launch.cluster_id in bot.databricks.clusters
    assert message.updates >= 1  # posted as PENDING, then updated
    assert f"#setting/clusters/{launch.cluster_id}" in json.dumps(message.blocks)
    note = bot.slack.wait_for_mention(BUILDER, threaded=True)  # an edit notifies nobody: a mention does
    assert note.thread_ts == message.ts and "is running" in json.dumps(note.blocks)
    assert f"#setting/clusters/{launch.cluster_id}" in json.dumps(note.blocks)
    actions = [e.action for e in bot.ctx.store.audit_events(action=None, limit=50) if e.action.startswith("launch")]
    assert {"launch.request", "launch.create", "launch.finish"} <= set(actions)


def test_the_form_is_validated_inline_field_by_field(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    view = bot.open_form()
    cases = [
        ({"runtime": "15.4.x-cpu-ml-scala2.12"}, "runtime", "Machine Learning"),
        ({"runtime": "16.4.x-aarch64-scala2.12"}, "runtime", "aarch64"),
        ({"node_type": "m6gd.large"}, "node_type", "Graviton"),
        ({"node_type": "g4dn.xlarge"}, "node_type", "GPU"),
        ({"workers": "1001"}, "workers", "0 to 1000"),
        ({"size_mode": "autoscale", "min_workers": "3", "max_workers": "3"}, "max_workers", "max_workers > min"),
        ({"autotermination": "5"}, "autotermination", "10..10000"),
        ({"init_scripts": "dbfs:/init/setup.sh"}, "init_scripts", "end-of-life"),
        ({"init_scripts": "\n".join(f"file:/s{i}.sh" for i in range(11))}, "init_scripts", "more than 10"),
        ({"spark_conf": "spark.databricks.unityCatalog.volumes.enabled=false"}, "spark_conf", "override"),
        ({"tags": "Creator=me"}, "tags", "sets itself"),
    ]
    for changes, block, words in cases:
        answer = bot.submit(view, {**GOOD_FORM, **changes})
        assert answer.get("response_action") == "errors", (changes, answer)
        assert words in answer["errors"].get(block, ""), (changes, answer)
    assert bot.databricks.created_specs() == []
    # Every bad field at once, each under its own field, none cut in the middle of a word.
    everything = {
        "node_type": "m6gd.large",
        "workers": "1001",
        "autotermination": "5",
        "init_scripts": "dbfs:/init/setup.sh",
        "tags": "no-equals-sign",
    }
    answer = bot.submit(view, {**GOOD_FORM, **everything})
    assert set(answer["errors"]) >= {"node_type", "workers", "autotermination", "init_scripts", "tags"}, answer
    for text in answer["errors"].values():
        assert len(text) <= 150 and (not text.endswith("…") or text[-2:-1].isalnum()), text
    assert bot.databricks.created_specs() == []


def test_a_user_slack_shares_no_email_for_is_told_why(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    view = bot.open_form(user=NO_EMAIL)
    answer = bot.submit(view, GOOD_FORM, user=NO_EMAIL)
    assert "users:read.email" in answer["errors"]["runtime"]
    assert bot.databricks.created_specs() == []


def test_key_value_arguments_skip_the_form(bot: LaunchBot) -> None:
    seed_image(bot.ctx, base="databricksruntime/standard:17.3-LTS")
    answer, _ = bot.command(
        "launch team-pandas runtime=17.3.x-scala2.13 node_type=m5d.xlarge min_workers=1 "
        "max_workers=3 spark.sql.shuffle.partitions=64 tag.Team=Data"
    )
    assert "Launching" in answer["text"]
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    sent = bot.databricks.created_specs()[0]
    assert sent["autoscale"] == {"min_workers": 1, "max_workers": 3} and "num_workers" not in sent
    assert sent["spark_conf"]["spark.sql.shuffle.partitions"] == "64" and sent["custom_tags"]["Team"] == "Data"
    assert launch.request["warnings"] == []  # a 17.3 runtime for a 17.3 base
    assert not bot.slack.calls("views.open")


def test_a_runtime_the_image_was_not_made_for_is_refused_and_only_an_admin_overrides(bot: LaunchBot) -> None:
    seed_image(bot.ctx)  # a 15.4-LTS base
    words = "launch team-pandas runtime=16.4.x-scala2.12 node_type=m5d.large"
    _, name = bot.command(words)
    post = bot.slack.wait_for_response_post(name)
    text = post.body["text"]
    assert "made for DBR 15.4, not 16.4" in text and "15.4.x-scala2.12" in text and "allow_runtime_mismatch" in text
    answer, _ = bot.command(f"{words} allow_runtime_mismatch=yes")  # a builder may not override
    assert "Only a bot admin" in answer["text"]
    assert bot.databricks.created_specs() == []

    answer, _ = bot.command(f"{words} allow_runtime_mismatch=yes", user=ADMIN)
    assert "Launching" in answer["text"]
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    assert bot.databricks.created_specs()[0]["spark_version"] == "16.4.x-scala2.12"
    assert any("overridden" in w and "16.4" in w for w in launch.request["warnings"])


def test_bad_key_value_arguments_are_refused_in_the_ack(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    answer, _ = bot.command("launch team-pandas workers=lots colour=blue")
    assert "workers" in answer["text"] and "colour" in answer["text"]
    answer, name = bot.command("launch team-pandas runtime=15.4.x-gpu-ml-scala2.12 node_type=m5d.large")
    # The runtime's name alone decides: refused in the ack, never "Launching…" first.
    assert "Machine Learning" in answer["text"] and "Launching" not in answer["text"]
    assert "runtime" in answer["text"] and "15.4.x-gpu-ml-scala2.12" in answer["text"]
    assert bot.slack.response_posts(name) == [] and bot.databricks.created_specs() == []


def test_an_image_without_a_pushed_build_cannot_be_launched(bot: LaunchBot) -> None:
    bot.ctx.store.add_image(
        image_from_dict(
            {
                "name": "fresh",
                "base": "databricksruntime/standard:15.4-LTS",
                "repository": "myacr.azurecr.io/team/fresh",
            }
        )
    )
    answer, _ = bot.command("launch fresh")
    assert "no pushed build" in answer["text"] and "/dcs build fresh push" in answer["text"]
    answer, _ = bot.command("launch nosuch")
    assert "No image named 'nosuch'" in answer["text"]
    assert not bot.slack.calls("views.open")


def test_a_double_submitted_form_creates_one_cluster(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    view = bot.open_form()
    assert bot.submit(view, GOOD_FORM) == {}
    assert bot.submit(view, GOOD_FORM) == {}
    bot.wait_launch(lambda launch: launch.status == "running")
    assert bot.ctx.workers.wait_idle(10)
    assert len(bot.databricks.created_specs()) == 1


def test_the_build_message_button_opens_the_form_for_that_build(bot: LaunchBot) -> None:
    build_id = seed_image(bot.ctx)
    bot.click("launch_cluster", json.dumps({"image": "team-pandas", "build": build_id}), BUILDER)
    calls = bot.slack.wait_for("views.update", timeout=30)
    view = bot.slack.views()[calls[-1].params["view_id"]]
    assert json.loads(view["private_metadata"])["build"] == build_id
    form = bot.ctx.store.form(calls[-1].params["view_id"], "launch")  # what the submission will launch
    assert form is not None and (form.user, form.state["build"]) == (BUILDER, build_id)


# ---------------------------------------------------------------- failures explained


def test_a_pull_failure_is_explained(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    bot.databricks.script_next_cluster(
        "TERMINATED",
        "DOCKER_IMAGE_PULL_FAILURE",
        "CLIENT_ERROR",
        parameters={"databricks_error_message": "Failed to pull image: unauthorized: authentication required"},
    )
    bot.submit(bot.open_form(), GOOD_FORM)
    launch = bot.wait_launch(lambda launch: launch.status == "failed")
    message = bot.wait_message(launch.id, "DOCKER_IMAGE_PULL_FAILURE")
    text = json.dumps(message.blocks)
    assert "TERMINATED" in message.text
    assert "refused the login" in text and "cluster_password_secret" in text
    assert f"myacr.azurecr.io/team/pandas@{DIGEST}" in text
    note = bot.slack.wait_for_mention(BUILDER, threaded=True)
    assert note.thread_ts == message.ts and "did not start" in json.dumps(note.blocks)
    assert len(bot.slack.mentions(BUILDER, threaded=True)) == 1  # once, however often the state is reported


def test_an_init_script_failure_names_the_script(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    bot.databricks.script_next_cluster(
        "TERMINATED",
        "INIT_SCRIPT_FAILURE",
        "CLIENT_ERROR",
        parameters={
            "databricks_error_message": "Cluster scoped init script /Volumes/main/ops/scripts/b.sh failed: Script exit "
            "status is non-zero"
        },
    )
    bot.submit(bot.open_form(), {**GOOD_FORM, "init_scripts": "file:/a.sh\n/Volumes/main/ops/scripts/b.sh"})
    launch = bot.wait_launch(lambda launch: launch.status == "failed")
    assert "The init script /Volumes/main/ops/scripts/b.sh failed" in json.dumps(
        bot.wait_message(launch.id, "INIT_SCRIPT_FAILURE").blocks
    )


def test_dcs_switched_off_suggests_dcs_enable(tmp_db: str, slack: FakeSlack) -> None:
    with FakeDatabricks(enable_dcs="false") as databricks:
        bot = start_launch_bot(tmp_db, slack, databricks)
        try:
            seed_image(bot.ctx)
            bot.submit(bot.open_form(), GOOD_FORM)
            found = wait_until(
                lambda: [m for m in slack.ephemeral_messages(BUILDER) if "/dcs enable" in (m.text or "")],
                30,
                lambda: str(slack.ephemeral_messages()),
            )
            assert "turned off" in found[0].text
            assert bot.ctx.store.launches()[0].status == "failed"
        finally:
            bot.stop()


# ---------------------------------------------------------------- restarts


def test_a_restart_mid_launch_is_resumed(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks) -> None:
    first = start_launch_bot(tmp_db, slack, databricks)
    seed_image(first.ctx)
    databricks.script_next_cluster("RUNNING", pending_polls=10_000)  # stays PENDING while the bot stops
    first.submit(first.open_form(), GOOD_FORM)
    launch = first.wait_launch(lambda launch: launch.status == "pending" and bool(launch.slack_ts))
    first.stop()

    second = start_launch_bot(tmp_db, slack, databricks)
    try:
        from jobs.clusters import resume_tracking

        databricks.set_cluster_state(launch.cluster_id or "", "RUNNING")
        resume_tracking(second.ctx.services, second.ctx.workers)
        second.wait_launch(lambda launch: launch.status == "running")
        message = second.wait_message(launch.id, "RUNNING")
        assert message.ts == launch.slack_ts  # the same message, updated by the new process
        assert len(databricks.created_specs()) == 1
        assert "launch.resume" in [e.action for e in second.ctx.store.audit_events(limit=50)]
    finally:
        second.stop()


def test_a_launch_cut_short_during_create_adopts_its_cluster(
    tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks
) -> None:
    bot = start_launch_bot(tmp_db, slack, databricks)
    try:
        seed_image(bot.ctx)
        launcher = bot.ctx.services.launcher
        assert launcher is not None
        # What a crash right after the POST leaves: a cluster with the request's tag, a row without its id.
        from bot.ops.launch import request_tag

        row, cluster_id = left_creating(bot.ctx, launcher, "k1")
        assert row.request["request_tag"] == request_tag("k1")
        from jobs.clusters import resume_tracking

        resume_tracking(bot.ctx.services, bot.ctx.workers)
        adopted = bot.wait_launch(lambda launch: launch.status == "running")
        assert adopted.cluster_id == cluster_id and len(databricks.created_specs()) == 1
    finally:
        bot.stop()


def test_home_lists_recent_launches_with_links(bot: LaunchBot) -> None:
    seed_image(bot.ctx)
    bot.submit(bot.open_form(), GOOD_FORM)
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    from handlers.home import home_view

    text = json.dumps(home_view(bot.ctx, BUILDER))
    assert "Recent launches" in text and f"#setting/clusters/{launch.cluster_id}" in text


# ---------------------------------------------------------------- secrets


def test_a_plaintext_registry_password_reaches_only_databricks(
    tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks, caplog: pytest.LogCaptureFixture
) -> None:
    password = "plain-registry-password-4711"
    bot = start_launch_bot(tmp_db, slack, databricks, DCS_SECRET_ACR_PLAIN_PASSWORD=password)
    try:
        caplog.set_level("DEBUG")
        registry = RegistrySpec(
            "acr", "myacr.azurecr.io", "sp-id", "DCS_SECRET_ACR_PLAIN_PASSWORD", allow_plaintext_password=True
        )
        seed_image(bot.ctx, registry=registry)
        bot.submit(bot.open_form(), GOOD_FORM)
        launch = bot.wait_launch(lambda launch: launch.status == "running")
        bot.wait_message(launch.id, "RUNNING")
        assert databricks.created_specs()[0]["docker_image"]["basic_auth"] == {
            "username": "sp-id",
            "password": password,
        }
        assert password not in caplog.text
        assert password not in json.dumps([c.params for c in slack.calls()])
        assert "<plaintext from $DCS_SECRET_ACR_PLAIN_PASSWORD, not shown>" in json.dumps(launch.request)
        bot.ctx.store.db.execute("PRAGMA wal_checkpoint(FULL)")
        stored = b"".join(open(path, "rb").read() for path in (tmp_db, tmp_db + "-wal") if os.path.exists(path))
        assert password.encode() not in stored
    finally:
        bot.stop()


def test_more_node_types_than_a_select_holds_are_searchable(tmp_db: str, slack: FakeSlack) -> None:
    """A workspace with 160 usable node types: the form offers a search (external select), not the first 100."""
    many = [*NODE_TYPES, *(_node(f"m7i.{n}xlarge", 4, 16384, "General Purpose") for n in range(2, 162))]
    with FakeDatabricks(node_types=many) as databricks:
        bot = start_launch_bot(tmp_db, slack, databricks)
        try:
            seed_image(bot.ctx)
            view = bot.open_form()
            element = next(b for b in view["blocks"] if b.get("block_id") == "node_type")["element"]
            assert element["type"] == "external_select" and "options" not in element

            def search(text: str, user: str = BUILDER) -> list[str]:
                body = block_suggestion_body("value", text, user_id=user, block_id="node_type", view=view)
                answer = requests.post(
                    f"{bot.url}/slack/events", data=body, headers=signed_headers(SECRET, body), timeout=10
                )
                assert answer.status_code == 200, answer.text
                return [o["value"] for o in answer.json()["options"]]

            assert search("m7i.161x") == ["m7i.161xlarge"]  # beyond the first 100: found
            assert len(search("")) == 100  # Slack shows at most 100; typing narrows them
            assert "m6gd.large" not in search("m6gd")  # the DCS rules still apply (no Graviton)
            assert search("m7i", user=OUTSIDER) == []  # only the person whose form it is
            assert bot.submit(view, {**GOOD_FORM, "node_type": "m7i.161xlarge"}) == {}
            launch = bot.wait_launch(lambda launch: launch.status == "running")
            assert bot.databricks.created_specs()[0]["node_type_id"] == "m7i.161xlarge" and launch.cluster_id
        finally:
            bot.stop()
