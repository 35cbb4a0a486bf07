"""`/dcs enable` end to end: signed Slack requests, the real SDK against FakeDatabricks' workspace-conf and
SCIM Me. Four eyes, one PATCH under double clicks and concurrent admins, deny, 24 h expiry, bot identity.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.clock import utcnow
from bot.ops.approvals import Approvals
from jobs.approvals import sweep_expired
from tests.fakes.databricks import FakeDatabricks
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.support.launch_bot import (
    ADMIN,
    ADMIN2,
    BUILDER,
    NOTIFY,
    OUTSIDER,
    LaunchBot,
    start_launch_bot,
)


@pytest.fixture
def databricks() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(enable_dcs=None) as fake:  # unset, as in a workspace where nobody touched it
        yield fake


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks) -> Iterator[LaunchBot]:
    harness = start_launch_bot(tmp_db, slack, databricks)
    yield harness
    harness.stop()


def ask(bot: LaunchBot, user: str = BUILDER) -> tuple[SlackMessage, str]:
    """Run `/dcs enable`; return the request message in the notify channel and what the requester was told."""
    answer, name = bot.command("enable", user=user)
    assert "Checking" in answer["text"]
    told = bot.slack.wait_for_response_post(name, timeout=30).body["text"]
    messages = [m for m in bot.slack.messages(NOTIFY) if "enableDcs" in (m.text or "") + json.dumps(m.blocks)]
    assert messages, told
    return messages[-1], told


def current(bot: LaunchBot, message: SlackMessage) -> SlackMessage:
    return next(m for m in bot.slack.messages() if m.ts == message.ts)


def click_and_wait(bot: LaunchBot, action: str, user: str, message: SlackMessage) -> str:
    """Click Approve/Deny; return the ephemeral answer, or '' once the message was updated instead."""
    before = current(bot, message).updates
    name = bot.click(action, message_request_id(message), user, message, channel=NOTIFY)

    def done() -> str | None:
        posts = bot.slack.response_posts(name)
        if posts:
            return posts[0].body["text"]
        return "" if current(bot, message).updates > before else None

    found = wait_until(lambda: done() is not None and (done() or "updated"), 30, lambda: "no answer to the click")
    return "" if found == "updated" else found


def message_request_id(message: SlackMessage) -> str:
    buttons = [e for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"]]
    return buttons[0]["value"]


def has_buttons(message: SlackMessage) -> bool:
    return any(b["type"] == "actions" for b in message.blocks or [])


def test_already_enabled_says_so_and_asks_nobody(tmp_db: str, slack: FakeSlack) -> None:
    with FakeDatabricks(enable_dcs="true") as databricks:
        bot = start_launch_bot(tmp_db, slack, databricks)
        try:
            answer, name = bot.command("enable")
            told = slack.wait_for_response_post(name, timeout=30).body["text"]
            assert "already on" in told
            assert slack.messages(NOTIFY) == [] and databricks.workspace_conf_patches == 0
        finally:
            bot.stop()


def test_an_admin_approves_and_dcs_is_switched_on(bot: LaunchBot) -> None:
    message, told = ask(bot)
    assert f"<#{NOTIFY}>" in told and "other than you" in told
    assert has_buttons(message) and "expires" in message.blocks[0]["text"]["text"]
    buttons = {e["text"]["text"]: e for b in message.blocks if b["type"] == "actions" for e in b["elements"]}
    assert buttons["Approve"]["confirm"]["confirm"]["text"] == "Approve"  # Slack asks before sending the click
    assert "style" not in buttons["Deny"] and "confirm" not in buttons["Deny"]  # refusing changes nothing
    assert click_and_wait(bot, "enable_approve", ADMIN, message) == ""
    updated = current(bot, message)
    text = updated.blocks[0]["text"]["text"]
    assert f"Approved* by <@{ADMIN}>" in text and "<!date^" in text
    assert not has_buttons(updated)
    assert bot.databricks.workspace_conf == {"enableDcs": "true"}
    assert bot.databricks.workspace_conf_patches == 1
    trail = [
        (e.action, e.outcome) for e in reversed(bot.ctx.store.audit_events(limit=20)) if e.action.startswith("enable")
    ]
    assert trail == [("enable.request", "pending"), ("enable.approve", "approved")]


def test_the_requester_cannot_approve_their_own_request(bot: LaunchBot) -> None:
    message, _ = ask(bot, user=ADMIN)
    refusal = click_and_wait(bot, "enable_approve", ADMIN, message)
    assert "another admin" in refusal
    assert current(bot, message).updates == 0 and bot.databricks.workspace_conf_patches == 0
    assert click_and_wait(bot, "enable_approve", ADMIN2, message) == ""
    assert bot.databricks.workspace_conf_patches == 1


@pytest.mark.parametrize("clicker", [BUILDER, OUTSIDER])
def test_a_non_admin_click_is_refused_and_changes_nothing(bot: LaunchBot, clicker: str) -> None:
    message, _ = ask(bot)
    for action in ("enable_approve", "enable_deny"):
        assert "Only a bot admin" in click_and_wait(bot, action, clicker, message)
    assert current(bot, message).updates == 0 and has_buttons(current(bot, message))
    assert bot.databricks.workspace_conf_patches == 0
    decisions = [e for e in bot.ctx.store.audit_events(limit=20) if e.action in ("enable.approve", "enable.deny")]
    assert [(e.actor, e.outcome) for e in decisions] == [(clicker, "refused")] * 2


def test_double_clicks_and_two_admins_at_once_make_one_patch(bot: LaunchBot) -> None:
    message, _ = ask(bot)
    value = message_request_id(message)
    threads = [
        threading.Thread(target=bot.click, args=("enable_approve", value, admin, message, NOTIFY))
        for admin in (ADMIN, ADMIN, ADMIN2, ADMIN2, ADMIN)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: bot.ctx.store.get_approval(int(value)).status == "approved", 30, lambda: "not approved")
    wait_until(lambda: not has_buttons(current(bot, message)), 30, lambda: "buttons still there")
    assert bot.databricks.workspace_conf_patches == 1
    assert len([e for e in bot.ctx.store.audit_events(limit=50) if e.outcome == "approved"]) == 1


def test_an_admin_denies(bot: LaunchBot) -> None:
    message, _ = ask(bot)
    assert click_and_wait(bot, "enable_deny", ADMIN2, message) == ""
    updated = current(bot, message)
    assert f"Denied* by <@{ADMIN2}>" in updated.blocks[0]["text"]["text"] and not has_buttons(updated)
    assert "already denied" in click_and_wait(bot, "enable_approve", ADMIN, message)  # a stale client
    assert bot.databricks.workspace_conf_patches == 0 and bot.databricks.workspace_conf["enableDcs"] is None


def test_a_request_expires_after_24_hours(bot: LaunchBot) -> None:
    message, _ = ask(bot)
    later = datetime.now(UTC) + timedelta(hours=24, minutes=1)
    bot.ctx.services.approvals = Approvals(bot.ctx.services, clock=lambda: later)
    # The click both answers the clicker and updates the message, in either order: wait for both.
    name = bot.click("enable_approve", message_request_id(message), ADMIN, message, channel=NOTIFY)
    answer = wait_until(lambda: bot.slack.response_posts(name), 30, lambda: "no answer to the click")
    assert "expired" in answer[0].body["text"]

    def expired_message() -> SlackMessage | None:
        now = current(bot, message)
        return now if "*Expired*" in now.blocks[0]["text"]["text"] else None

    updated = wait_until(expired_message, 30, lambda: f"message not updated: {current(bot, message).blocks[0]}")
    assert not has_buttons(updated)
    assert bot.databricks.workspace_conf_patches == 0


def test_the_sweep_takes_the_buttons_off_expired_requests(bot: LaunchBot) -> None:
    message, _ = ask(bot)
    bot.ctx.services.approvals = Approvals(bot.ctx.services, clock=lambda: datetime.now(UTC) + timedelta(days=2))
    assert sweep_expired(bot.ctx.services) == [int(message_request_id(message))]
    assert not has_buttons(current(bot, message))
    assert ("enable.expire", "expired") in [(e.action, e.outcome) for e in bot.ctx.store.audit_events(limit=20)]


def test_asking_twice_points_at_the_open_request(bot: LaunchBot) -> None:
    ask(bot)
    answer, name = bot.command("enable", user=OUTSIDER)
    assert "builder" in answer["text"]  # only builders may ask
    _, name = bot.command("enable", user=ADMIN)
    assert "already waiting" in bot.slack.wait_for_response_post(name, timeout=30).body["text"]
    assert len(bot.slack.messages(NOTIFY)) == 1


def test_a_bot_identity_that_is_not_admin_is_said_up_front(tmp_db: str, slack: FakeSlack) -> None:
    with FakeDatabricks(enable_dcs="false", admins=()) as databricks:
        bot = start_launch_bot(tmp_db, slack, databricks)
        try:
            message, told = ask(bot)
            assert "not a workspace admin" in json.dumps(message.blocks) and "not a workspace admin" in told
            refusal = click_and_wait(bot, "enable_approve", ADMIN, message)
            assert "not a workspace admin" in refusal and "approve again" in refusal
            assert databricks.workspace_conf_patches == 0
            assert bot.ctx.store.get_approval(int(message_request_id(message))).status == "pending"
            databricks.admins.add("alice@example.com")  # someone fixes the bot's group membership
            assert click_and_wait(bot, "enable_approve", ADMIN, message) == ""
            assert databricks.workspace_conf == {"enableDcs": "true"}
        finally:
            bot.stop()


def test_approve_acts_only_on_the_request_of_its_message(bot: LaunchBot) -> None:
    """A click whose value names another request than its message's changes nothing."""
    message, _ = ask(bot)
    other = bot.ctx.store.insert_approval(
        kind="enableDcs", requester=ADMIN2, expires_at="2999-01-01T00:00:00.000000Z", note=None, created_at=utcnow()
    )
    name = bot.click("enable_approve", str(other), ADMIN, message, channel=NOTIFY)
    told = bot.slack.wait_for_response_post(name, timeout=30).body["text"]
    assert "is not the request of this message" in told
    assert bot.ctx.store.get_approval(other).status == "pending"
    assert bot.databricks.workspace_conf_patches == 0
