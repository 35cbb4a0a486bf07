"""New LTS tags: the scheduled check lists the base repository's tags through the real registry's tags/list
(no pull), proposes 15.4-LTS → 16.4-LTS once, and the Upgrade button (fake Slack) adds the upgraded entry
under the name chosen in its modal and builds it through the release gate; the existing image is unchanged."""

from __future__ import annotations

import json

from bot.domain.lts import newest_lts
from bot.ops.rebuild import rebuild_job
from tests.fakes.http import wait_until
from tests.integration import test_release_approval
from tests.integration.test_rebuild import add_image
from tests.support.launch_bot import ADMIN, BUILDER, NOTIFY

base, bot = test_release_approval.base, test_release_approval.bot  # an LTS base; the Slack bot on the engine


def test_a_newer_lts_tag_is_proposed_once_and_the_upgrade_builds_a_new_entry(bot, registry, base, make_base, push_base):
    base.publish("v1")
    services = bot.ctx.services
    # the stub bases all carry Python 3.11: the team accepts that for 16.4 too (the copy keeps the waiver)
    waiver = {"waive": {"python_version": "test stub bases carry one Python"}}
    add_image(services, registry, base, "pandas", pip=["requests==2.32.3"], notify_channel=NOTIFY, doctor=waiver)
    rebuild_job(services, ["pandas"], by_hand=True, notify=False)
    gets_before = services.registry.counts["GET"]
    quiet = rebuild_job(services)
    assert quiet.proposals == [] and bot.slack.messages(NOTIFY) == []
    assert services.registry.counts["GET"] - gets_before >= 1  # the tags were listed (a GET of tags/list)

    # Databricks publishes the next LTS in the same repository
    make_base(f"dcs-lts-{base.uid}:16", marker=f"{base.uid}-16")
    push_base(f"dcs-lts-{base.uid}:16", registry, base.repo, "16.4-LTS")
    summary = rebuild_job(services)
    [proposal] = summary.proposals
    assert (proposal.image, proposal.current_tag, proposal.new_tag) == ("pandas", "15.4-LTS", "16.4-LTS")
    assert proposal.new_base == base.ref.replace(":15.4-LTS", ":16.4-LTS")
    [notice] = bot.slack.messages(NOTIFY)
    text = json.dumps(notice.blocks, ensure_ascii=False)
    assert "New LTS runtime" in text and "`16.4-LTS` is out" in text
    buttons = [e for b in notice.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in buttons] == [("lts_upgrade", "pandas")]
    assert rebuild_job(services).proposals == []  # said once
    assert len(bot.slack.messages(NOTIFY)) == 1

    # a builder may not change the catalog; an admin gets the modal, names the entry, and it is built
    builder_click = bot.click("lts_upgrade", "pandas", BUILDER, notice, channel=NOTIFY)
    assert "admin" in bot.slack.wait_for_response_post(builder_click, timeout=20).body["text"]
    bot.click("lts_upgrade", "pandas", ADMIN, notice, channel=NOTIFY)
    opened = bot.slack.wait_for("views.open", timeout=20)[-1].params["view"]
    modal = opened if isinstance(opened, dict) else json.loads(opened)
    assert modal["blocks"][1]["element"]["initial_value"] == "pandas-16-4"
    # the id Slack gave the opened view: the bot answers the submission from what it stored under it
    modal["id"] = next(i for i, v in bot.slack.views().items() if v.get("callback_id") == modal.get("callback_id"))
    answer = bot.submit(modal, {"name": "pandas-164"}, user=ADMIN)
    assert answer == {} or answer.get("response_action") != "errors", answer
    upgraded = services.store.get_image("pandas-164")
    assert upgraded.base == proposal.new_base and upgraded.pip == ("requests==2.32.3",)
    assert services.store.get_image("pandas").base == base.ref  # the existing image is unchanged
    build = wait_until(lambda: next(iter(services.store.builds("pandas-164")), None), 30, lambda: "no build")
    assert build.push_requested and build.requester == ADMIN

    def finished():
        current = services.store.get_build(build.id)
        return current if current.finished else None

    done = wait_until(finished, 60, lambda: "still building")
    assert done.status == "succeeded", done.error
    assert services.store.find_release(done.id).status == "promoted"  # through the same gate (doctor policy)


def test_only_newer_lts_tags_of_the_same_flavour_count():
    tags = ["15.4-LTS", "16.4-LTS", "17.3-LTS-gpu", "16.4", "latest", "17.0", "14.3-LTS"]
    assert newest_lts("15.4-LTS", tags) == "16.4-LTS"
    assert newest_lts("16.4-LTS", tags) is None
    assert newest_lts("15.4-LTS-gpu", tags) == "17.3-LTS-gpu"
    assert newest_lts("latest", tags) is None
