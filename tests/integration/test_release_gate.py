"""The release gate against the real engine and registry: every build pushes its immutable tag first, the moving
tag moves only by promotion (a manifest PUT of the same bytes), and rollback moves it back. Each step is proved
by the registry's own answer to a manifest HEAD."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import registry_from_dict
from bot.errors import NotAllowed, NotFound
from bot.ops.catalog import image_details
from bot.ops.launch import Launcher, launcher_for
from bot.ops.rebuild import rebuild_job
from bot.ops.release import CLI_ACTOR, promote, promoted_build, rollback
from handlers.blocks import image_line
from tests.fakes.databricks import DEFAULT_TOKEN, DEFAULT_USER
from tests.integration import test_rebuild
from tests.integration.test_rebuild import add_image, served_digest

# The rebuild tests' fixtures: a database with the local registry, an LTS base per test, the fake Slack.
services, base, slack = test_rebuild.services, test_rebuild.base, test_rebuild.slack


def test_an_approval_image_is_a_candidate_until_promoted_and_rollback_moves_the_tag_back(services, registry, base):
    base.publish("v1")
    add_image(services, registry, base, "held", promote="approval", approvers=["admins"])
    repo = f"dcs-rb-{base.uid}/held"

    first = rebuild_job(services, ["held"], by_hand=True, source="cli", notify=False).run.results[0]
    one = first.build
    # The immutable tag is served; the moving tag does not exist yet: clusters cannot start from it.
    assert served_digest(registry, repo, one.tags[0]) == one.pushed_digest
    assert served_digest(registry, repo, "latest") is None
    assert [p.tag for p in services.store.pushes(one.id)] == [one.tags[0]]
    assert services.store.open_release("held").status == "waiting"  # for its approvers
    # visible as such: /dcs images and App Home (one line per image), dcs image show
    row = next(r for r in services.store.image_overview() if r.name == "held")
    assert row.candidate is not None and row.candidate.build_id == one.id
    assert f"candidate #{one.id}" in image_line(row, datetime.now(UTC)) and "waiting for approval" in image_line(
        row, datetime.now(UTC)
    )
    shown = image_details(services, "held")
    assert shown.candidate.build_id == one.id and shown.promoted is None
    with pytest.raises(NotFound, match=f"build #{one.id} is a candidate"):
        launcher_for(services).image_source("held")
    # ...but a launch pinned to the build may use it on purpose.
    assert launcher_for(services).image_source("held", one.id).digest == one.pushed_digest

    # Nobody but admins / approvers promotes; the CLI operator may.
    with pytest.raises(NotAllowed):
        promote(services, "held", one.id, actor="U0OUTSIDER")
    moved = promote(services, "held", one.id, actor=CLI_ACTOR)
    assert moved.done and moved.previous_build_id is None
    assert served_digest(registry, repo, "latest") == one.pushed_digest
    assert services.store.open_release("held") is None
    again = promote(services, "held", one.id, actor=CLI_ACTOR)  # a second click changes nothing
    assert not again.done and "already points to" in again.note

    # The base moves: the rebuild is a new candidate; the moving tag stays on build one.
    base.publish("v2")
    second = rebuild_job(services, notify=False).run.results[0]
    two = second.build
    assert two.pushed_digest != one.pushed_digest
    assert served_digest(registry, repo, two.tags[0]) == two.pushed_digest
    assert served_digest(registry, repo, "latest") == one.pushed_digest
    assert promoted_build(services, "held").id == one.id
    assert launcher_for(services).image_source("held").digest == one.pushed_digest

    promote(services, "held", two.id, actor=CLI_ACTOR)
    assert served_digest(registry, repo, "latest") == two.pushed_digest
    assert launcher_for(services).image_source("held").build_id == two.id

    back = rollback(services, "held", actor=CLI_ACTOR)
    assert (back.build_id, back.previous_build_id) == (one.id, two.id)
    assert served_digest(registry, repo, "latest") == one.pushed_digest
    assert promoted_build(services, "held").id == one.id
    with pytest.raises(NotFound, match="no earlier promoted build"):
        rollback(services, "held", actor=CLI_ACTOR)
    actions = [(e.action, e.target, e.outcome) for e in services.store.audit_events(20) if e.action != "build"]
    assert ("promote", f"held#{one.id}", "succeeded") in actions
    assert ("promote", f"held#{two.id}", "succeeded") in actions
    assert ("rollback", f"held#{one.id}", "succeeded") in actions


def test_a_canary_promotes_and_a_failed_canary_keeps_the_moving_tag(tmp_db, registry, base, slack, databricks):
    environ = {
        "DCS_DB": tmp_db,
        test_rebuild.PASSWORD_VAR: registry.password,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack.api_url,
        "DCS_NOTIFY_CHANNEL": test_rebuild.CHANNEL,
        "DATABRICKS_HOST": databricks.url,
        "DATABRICKS_TOKEN": DEFAULT_TOKEN,
        "DCS_DATABRICKS_TIMEOUT": "4",
    }
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    gated = build_services(load_config(environ))
    gated.launcher = Launcher(gated, poll_initial=0.02, poll_max=0.1)
    gated.store.add_registry(
        registry_from_dict(
            {"name": "local", "host": registry.host, "username": registry.username,
             "password_env": test_rebuild.PASSWORD_VAR, "cluster_password_secret": "{{secrets/dcs/local}}"}
        )
    )  # fmt: skip
    base.publish("v1")
    add_image(gated, registry, base, "canaried", promote="canary", pip=["six==1.16.0"])
    repo = f"dcs-rb-{base.uid}/canaried"
    [first] = rebuild_job(gated, ["canaried"], by_hand=True, notify=False).run.results
    assert first.release.status == "promoted", (first.release.reason, first.release.canary)
    assert served_digest(registry, repo, "latest") == first.pushed_digest
    [command] = databricks.commands()
    assert '"six"' in command.command and command.user == DEFAULT_USER

    base.publish("v2")
    databricks.script_command(cause="ModuleNotFoundError: No module named 'six'", when='"six"')
    summary = rebuild_job(gated)
    [second] = summary.run.results
    assert second.release.status == "canary_failed"
    # the registry still serves the promoted build under the moving tag, the new one only under its own tag
    assert served_digest(registry, repo, "latest") == first.pushed_digest
    assert served_digest(registry, repo, second.immutable_tag) == second.pushed_digest != first.pushed_digest
    assert {c.state for c in databricks.clusters.values()} == {"TERMINATED"} and len(databricks.clusters) == 2
    [notice] = slack.messages()
    text = json.dumps(notice.blocks, ensure_ascii=False)
    assert notice.text.startswith("Scheduled rebuild: 1 canary failed")
    assert "No module named 'six'" in text and "stays where it was" in text
    assert [e["action_id"] for b in notice.blocks if b["type"] == "actions" for e in b["elements"]] == [
        "release_promote"
    ]
