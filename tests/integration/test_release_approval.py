"""Approval of release candidates through signed Slack clicks (fake Slack) against the real engine and registry:
the requester cannot approve their own build, a second admin's double click promotes once (the registry serves
the candidate under the moving tag afterwards), a rejection and an expiry leave the moving tag alone."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.domain.clock import stamp
from bot.errors import NotAllowed
from bot.ops.build import Builder
from bot.ops.release_votes import approve, expire_due, reject
from tests.fakes.databricks import FakeDatabricks
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.integration import test_rebuild
from tests.integration.test_rebuild import PASSWORD_VAR, served_digest
from tests.support.launch_bot import ADMIN, ADMIN2, BUILDER, NOTIFY, LaunchBot, start_launch_bot

base = test_rebuild.base  # an LTS base of its own in the local registry


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks, registry) -> Iterator[LaunchBot]:
    env = {PASSWORD_VAR: registry.password}
    if os.environ.get("DOCKER_HOST"):
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    else:
        env["DOCKER_HOST"] = ""
    harness = start_launch_bot(tmp_db, slack, databricks, **env)
    harness.ctx.store.add_registry(
        registry_from_dict(
            {"name": "local", "host": registry.host, "username": registry.username, "password_env": PASSWORD_VAR}
        )
    )
    yield harness
    harness.stop()


def release_message(bot: LaunchBot, build_id: int) -> SlackMessage:
    def probe() -> SlackMessage | None:
        found = [m for m in bot.slack.messages(NOTIFY) if f"build #{build_id}" in (m.text or "")]
        return found[-1] if found else None

    return wait_until(probe, 20, lambda: f"messages: {[m.text for m in bot.slack.messages()]}")


def click(bot: LaunchBot, action: str, user: str, message: SlackMessage) -> str:
    name = bot.click(action, str(message_value(message)), user, message, channel=NOTIFY)
    return bot.slack.wait_for_response_post(name, timeout=20).body["text"]


def double_click(bot: LaunchBot, action: str, build_id: int, user: str, message: SlackMessage) -> list[str]:
    """Two clicks at once; the two ephemeral answers, sorted."""
    names = [bot.click(action, str(build_id), user, message, channel=NOTIFY) for _ in range(2)]
    return sorted(bot.slack.wait_for_response_post(n, timeout=20).body["text"] for n in names)


def message_value(message: SlackMessage) -> str:
    return next(e["value"] for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"])


def test_a_second_admin_approves_once_and_the_moving_tag_moves(bot, registry, base):
    base.publish("v1")
    services = bot.ctx.services
    repo = f"dcs-rb-{base.uid}/guarded"
    services.store.add_image(
        image_from_dict(
            {"name": "guarded", "base": base.ref, "repository": f"{registry.host}/{repo}", "promote": "approval",
             "approval_hours": 48}
        )
    )  # fmt: skip
    outcome = Builder(services).build("guarded", push=True, requester=ADMIN)
    assert outcome.ok, outcome.error
    build = outcome.build
    assert outcome.release.status == "waiting"
    assert served_digest(registry, repo, "latest") is None

    message = release_message(bot, build.id)
    text = (message.text or "") + json.dumps(message.blocks)
    assert "waits for approval" in text and "Expires" in text and "the requester cannot approve" in text
    assert [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]] == [
        "release_approve",
        "release_reject",
    ]

    # the requester (an admin) cannot approve their own build; a builder is no approver
    assert "four eyes" in click(bot, "release_approve", ADMIN, message)
    assert "only the bot's admins" in click(bot, "release_approve", BUILDER, message)
    assert served_digest(registry, repo, "latest") is None

    # a second admin double-clicks: one vote, one promotion
    answers = double_click(bot, "release_approve", build.id, ADMIN2, message)
    assert any("is promoted" in a for a in answers) and any("approved already" in a for a in answers), answers
    assert served_digest(registry, repo, "latest") == build.pushed_digest
    assert [p.build_id for p in services.store.promotions("guarded")] == [build.id]
    assert services.store.votes(build.id) == [(ADMIN2, "approve")]

    def approved() -> SlackMessage | None:
        found = release_message(bot, build.id)
        return found if "approved" in json.dumps(found.blocks) else None

    updated = wait_until(approved, 20, lambda: "the message still waits")
    assert not any(b["type"] == "actions" for b in updated.blocks)
    audit = [(e.actor, e.action, e.outcome) for e in services.store.audit_events(30)]
    assert (ADMIN, "release-vote", "refused") in audit and (ADMIN2, "promote", "succeeded") in audit
    assert (ADMIN2, "release-vote", "approve") in audit


def test_reject_and_expiry_end_the_candidate_and_leave_the_moving_tag(bot, registry, base):
    base.publish("v1")
    services = bot.ctx.services
    repo = f"dcs-rb-{base.uid}/held"
    services.store.add_image(
        image_from_dict({"name": "held", "base": base.ref, "repository": f"{registry.host}/{repo}",
                         "promote": "approval"})
    )  # fmt: skip
    one = Builder(services).build("held", push=True, requester=BUILDER).build
    with pytest.raises(NotAllowed, match="four eyes"):
        reject(services, one.id, BUILDER)
    assert reject(services, one.id, ADMIN).release.status == "rejected"
    assert approve(services, one.id, ADMIN2).note.startswith(f"build #{one.id} is rejected")
    assert served_digest(registry, repo, "latest") is None

    base.publish("v2")
    two = Builder(services).build("held", push=True, requester=BUILDER).build
    assert services.store.release(two.id).status == "waiting"
    past = stamp(datetime.now(UTC) - timedelta(minutes=1))
    services.store.db.execute("UPDATE releases SET expires_at = ? WHERE build_id = ?", (past, two.id))
    services.store.db.conn.commit()
    assert expire_due(services) == [two.id]
    assert expire_due(services) == []
    assert services.store.release(two.id).status == "expired"
    assert approve(services, two.id, ADMIN).note.startswith(f"build #{two.id} is expired")
    assert served_digest(registry, repo, "latest") is None
    message = release_message(bot, two.id)
    assert "expired" in json.dumps(message.blocks)
    ids = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["release_promote"]  # no more Approve/Reject
    # "Promote anyway" on the expired candidate: not for its requester; an admin's double click moves the tag once
    assert "four eyes" in click(bot, "release_promote", BUILDER, message)  # BUILDER requested it
    answers = double_click(bot, "release_promote", two.id, ADMIN, message)
    assert any("now points to build" in a for a in answers) and any("Nothing changed" in a for a in answers), answers
    assert served_digest(registry, repo, "latest") == two.pushed_digest
    assert [p.build_id for p in services.store.promotions("held")] == [two.id]
