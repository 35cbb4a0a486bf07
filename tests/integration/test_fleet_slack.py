"""From one Slack message to everything that runs the image in two workspaces, and back: `/dcs fleet`, the
"Move N items" modal, four eyes for the protected workspace, per-item progress in one message, a failure with
its reason and "Retry failed", "Roll back" — with the fakes' write records proving one write per item.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack, SlackMessage
from tests.support.launch_bot import ADMIN, BUILDER, CHANNEL, NOTIFY, LaunchBot, start_launch_bot
from tests.support.workspaces import TwoWorkspaces, add_image, seed_fleet, two_workspaces, url

THIRD = "sha256:" + "2f" * 32


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[TwoWorkspaces]:
    with two_workspaces(tmp_path) as fleet:
        yield fleet


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, pair: TwoWorkspaces) -> Iterator[LaunchBot]:
    harness = start_launch_bot(tmp_db, slack, pair.dev, **pair.env())
    add_image(harness.ctx.services)
    build = harness.ctx.store.create_build("team-pandas", requester=BUILDER, source="test", push=True)
    harness.ctx.store.update_build(build.id, status="succeeded", pushed_digest=THIRD)
    yield harness
    harness.stop()


def text_of(message: SlackMessage) -> str:
    return (message.text or "") + json.dumps(message.blocks)


def buttons(blocks: list[dict] | None) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in blocks or [] if b["type"] == "actions" for e in b["elements"]}


def rollout_message(bot: LaunchBot, words: str, channel: str | None = None) -> SlackMessage:
    def probe() -> SlackMessage | None:
        found = [m for m in bot.slack.messages(channel) if "Rollout #" in text_of(m) and words in text_of(m)]
        return found[-1] if found else None

    return wait_until(probe, 60, lambda: "\n".join(text_of(m)[:300] for m in bot.slack.messages()))


def open_modal(bot: LaunchBot, workspaces: tuple[str, ...] = ("dev", "prod"), user: str = BUILDER) -> dict:
    _, name = bot.command("fleet team-pandas", user=user)
    listing = json.dumps(bot.slack.wait_for_response_post(name, timeout=60).body)
    assert "stale" in listing and all(f"`{w}`" in listing for w in workspaces), listing
    listing_body = json.loads(listing)
    move = buttons(listing_body["blocks"])["fleet_move"]
    before = len(bot.slack.calls("views.update"))
    bot.click("fleet_move", move, user)
    calls = bot.slack.wait_for("views.update", timeout=60, count=before + 1)
    return bot.slack.views()[calls[-1].params["view_id"]]


def test_one_message_moves_both_workspaces_and_rolls_back(bot: LaunchBot, pair: TwoWorkspaces) -> None:
    dev, prod = seed_fleet(pair.dev), seed_fleet(pair.prod)
    view = open_modal(bot)
    shown = json.dumps(view["blocks"])
    assert "restart" in shown and "protected" in shown and "Asset Bundle" in shown and "cannot be changed" in shown
    bot.submit(view, {})
    bot.submit(view, {})  # a double submit
    waiting = rollout_message(bot, "waiting for a second person", NOTIFY)
    assert pair.dev.writes_to() == [] and pair.prod.writes_to() == []
    approve = buttons(waiting.blocks)["fleet_approve"]
    refused = bot.click("fleet_approve", approve, BUILDER, waiting, channel=NOTIFY)
    assert "someone else" in bot.slack.wait_for_response_post(refused, timeout=30).body["text"]
    bot.click("fleet_approve", approve, ADMIN, waiting, channel=NOTIFY)
    bot.click("fleet_approve", approve, ADMIN, waiting, channel=NOTIFY)  # double click
    done = rollout_message(bot, ": :white_check_mark: done", NOTIFY)
    assert f"approved by <@{ADMIN}>" in text_of(done)
    for fake in (pair.dev, pair.prod):
        per_item = [(w.kind, str(w.resource_id)) for w in fake.writes_to()]
        assert len(per_item) == 7 and len(per_item) == len(set(per_item))
        assert fake.clusters[dev.terminated if fake is pair.dev else prod.terminated].spec["docker_image"][
            "url"
        ] == url(THIRD)
    rollback = buttons(done.blocks)["fleet_rollback"]
    for fake, seeded in ((pair.dev, dev), (pair.prod, prod)):  # the restarted clusters settle first
        client = bot.ctx.services.workspace("dev" if fake is pair.dev else "prod")
        wait_until(lambda c=client, s=seeded: c.get_cluster(s.running).state == "RUNNING" or None, 30, lambda: "")
    bot.click("fleet_rollback", rollback, BUILDER, done, channel=NOTIFY)
    bot.click("fleet_rollback", rollback, BUILDER, done, channel=NOTIFY)

    def rolled_back() -> SlackMessage | None:
        found = [
            m
            for m in bot.slack.messages(NOTIFY)
            if "Rollback #" in text_of(m) and ": :white_check_mark: done" in text_of(m)
        ]
        return found[-1] if found else None

    wait_until(rolled_back, 60, lambda: "\n".join(text_of(m)[:200] for m in bot.slack.messages(NOTIFY)))
    for fake in (pair.dev, pair.prod):
        assert len(fake.writes_to()) == 14  # each item once forward, once back
        policy = next(iter(p for p in fake.policies.values()))
        assert url(THIRD) not in policy["definition"]
    original = lambda: next(m for m in bot.slack.messages() if m.ts == done.ts)  # noqa: E731
    wait_until(lambda: "fleet_rollback" not in buttons(original().blocks) or None, 30, lambda: "button kept")
    assert bot.slack.block_kit_problems() == []


def test_a_failed_item_is_listed_with_its_reason_and_retried(
    tmp_db: str, slack: FakeSlack, pair: TwoWorkspaces
) -> None:
    harness = start_launch_bot(tmp_db, slack, pair.dev, **pair.env(protected=""))
    try:
        add_image(harness.ctx.services)
        dev = seed_fleet(pair.dev)
        pair.dev.fail_next("/jobs/update", 500, "INTERNAL_ERROR", "Internal error: try later", item=dev.etl_job)
        view = open_modal(harness, ("dev",))
        harness.submit(view, {})
        partial = rollout_message(harness, "1 failed", CHANNEL)
        assert "try later" in text_of(partial)
        assert pair.dev.writes_to("job", dev.etl_job) == [] and len(pair.dev.writes_to()) == 5  # "fresh" is current
        retry = buttons(partial.blocks)["fleet_retry"]
        harness.click("fleet_retry", retry, BUILDER, partial)
        harness.click("fleet_retry", retry, BUILDER, partial)
        rollout_message(harness, ": :white_check_mark: done", CHANNEL)
        assert len(pair.dev.writes_to("job", dev.etl_job)) == 1 and len(pair.dev.writes_to()) == 6
        home = harness.ctx.home_sections
        assert any(s.name == "fleet" for s in home)
    finally:
        harness.stop()
