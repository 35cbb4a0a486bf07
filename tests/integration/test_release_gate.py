"""The release gate against the real engine and registry: every build pushes its immutable tag first, the moving
tag moves only by promotion (a manifest PUT of the same bytes), and rollback moves it back. Each step is proved
by the registry's own answer to a manifest HEAD."""

from __future__ import annotations

import pytest

from bot.errors import NotAllowed, NotFound
from bot.ops.launch import launcher_for
from bot.ops.rebuild import rebuild_job
from bot.ops.release import CLI_ACTOR, promote, promoted_build, rollback
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


def test_a_doctor_image_is_promoted_by_its_build(services, registry, base):
    base.publish("v1")
    add_image(services, registry, base, "auto")
    build = rebuild_job(services, ["auto"], by_hand=True, source="cli", notify=False).run.results[0].build
    repo = f"dcs-rb-{base.uid}/auto"
    assert (
        served_digest(registry, repo, "latest") == build.pushed_digest == served_digest(registry, repo, build.tags[0])
    )
    promotion = services.store.promoted("auto")
    assert (promotion.build_id, promotion.how, promotion.digest) == (build.id, "doctor", build.pushed_digest)
    assert services.store.release(build.id).status == "promoted"
