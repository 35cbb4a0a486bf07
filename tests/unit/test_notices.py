"""Rebuild and pull-budget notices: what they say, and that big runs still fit Slack's limits."""

from __future__ import annotations

import json

from bot.domain.ratelimit import BudgetReport, PullBudget
from bot.domain.rebuild import FAILED, REBUILT, BaseCheck, ChannelReport, RebuildDecision, RebuildResult, StaleCluster
from bot.store import Build
from handlers.notices import budget_lines, pull_all_clear, pull_warning, rebuild_notice

OLD, NEW = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def rebuilt(name: str, build_id: int) -> RebuildResult:
    build = Build(
        id=build_id,
        image=name,
        status="succeeded",
        tags=(f"latest-20260101-b{build_id}", "latest"),
        pushed_digest="sha256:" + "c" * 64,
        base_digest=NEW,
    )
    return RebuildResult(name, REBUILT, RebuildDecision(name, True, ("base moved",), OLD, NEW), build)


def failed(name: str, build_id: int, error: str) -> RebuildResult:
    build = Build(id=build_id, image=name, status="failed", error=error)
    return RebuildResult(name, FAILED, RebuildDecision(name, True, ("base moved",), OLD, NEW), build, error)


def test_notice_names_old_and_new_digests_failures_and_clusters() -> None:
    cluster = StaleCluster("0101-abc", "etl", "team-pandas", "RUNNING", OLD, "r:latest", NEW, True)
    report = ChannelReport(
        "C0BUILDS1",
        rebuilt=[rebuilt("team-pandas", 7)],
        failed=[failed("team-ml", 8, "pip could not install dcs-test-broken")],
        stale=[cluster],
        unpatched=[("team-old", "databricksruntime/standard:9.x")],
        repositories={"team-pandas": "myacr.azurecr.io/team/pandas:latest"},
    )
    msg = rebuild_notice(report)
    text = json.dumps(msg)
    assert "team-pandas" in text and "aaaaaaaaaaaa" in text and "bbbbbbbbbbbb" in text
    moves = [e for b in msg["blocks"] if b.get("block_id") == "fleet_moves" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in moves] == [("fleet_move", "team-pandas")]  # opens the rollout
    assert "latest-20260101-b7" in text and "myacr.azurecr.io/team/pandas:latest" in text
    assert "team-ml" in text and "build #8" in text and "dcs-test-broken" in text
    assert "etl" in text and "restart it" in text
    assert "not patch" in text and "team-old" in text
    assert msg["text"].startswith("Scheduled rebuild: 1 promoted, 1 failed")


def test_a_pull_limit_failure_carries_the_budget_numbers() -> None:
    report = ChannelReport(
        "C0BUILDS1",
        failed=[failed("team-ml", 8, "toomanyrequests: pull rate limit")],
        pull_budget="0/100 pulls left per 6 h (4 min ago)",
    )
    text = json.dumps(rebuild_notice(report))
    assert "toomanyrequests" in text and "0/100 pulls left per 6 h" in text


def test_a_run_over_two_hundred_images_fits_one_slack_message() -> None:
    report = ChannelReport(
        "C0BUILDS1",
        rebuilt=[rebuilt(f"image-{i:03d}", i) for i in range(150)],
        failed=[failed(f"bad-{i:02d}", 1000 + i, "x" * 500) for i in range(50)],
        base_errors=[(BaseCheck(f"docker.io/org/base{i}:1", None, "t", "unreachable"), ["a"]) for i in range(40)],
    )
    msg = rebuild_notice(report)
    assert len(msg["blocks"]) <= 50 and len(msg["text"]) <= 4000
    for block in msg["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    text = json.dumps(msg)
    assert "more images" in text and "more failures" in text and "more bases" in text


def report(remaining: int | None, *, unlimited: bool = False, state: str = "ok") -> BudgetReport:
    budget = PullBudget(None, None, None, unlimited=True) if unlimited else PullBudget(100, remaining, 21600)
    return BudgetReport(
        budget=budget,
        account="dcsbot",
        checked_ago="3 min ago",
        spark="█▇▅▃",
        recent_pulls=12,
        planned_pulls=4,
        state=state,
        warn_below=20,
    )


def test_budget_lines_show_numbers_window_sparkline_and_demand() -> None:
    text = "\n".join(budget_lines(report(64)))
    assert "64/100 (64%) per 6 h" in text and "dcsbot" in text and "█▇▅▃" in text
    assert "need 12 pull(s); planned ones 4 more" in text
    assert "Below the warning line" in "\n".join(budget_lines(report(5, state="low")))
    assert "unlimited" in "\n".join(budget_lines(report(None, unlimited=True)))
    assert "unknown" in budget_lines(BudgetReport(budget=None))[0]


def test_warning_and_all_clear_say_what_happened() -> None:
    warning = json.dumps(pull_warning(report(15), "15 pulls left (below 20% of 100)"))
    assert "running low" in warning and "15/100" in warning and "DOCKER_IMAGE_PULL_FAILURE" in warning
    assert "recovered" in json.dumps(pull_all_clear(report(90)))


def test_the_notice_says_what_changed_and_its_thread_has_the_full_list() -> None:
    from dataclasses import replace

    from bot.domain.inventory import PackageInventory
    from bot.domain.inventory_diff import diff_inventories
    from handlers.notices import changes_thread

    old = PackageInventory(os_packages={"openssl": "3.0.2-1.15"}, python_version="3.11.0rc1")
    new = PackageInventory(os_packages={"openssl": "3.0.2-1.16", "jq": "1.6"}, python_version="3.11.11")
    result = replace(rebuilt("team-pandas", 7), changes=diff_inventories(old, new), previous_build=5)
    report = ChannelReport("C0BUILDS1", rebuilt=[result, rebuilt("team-ml", 8)])
    text = json.dumps(rebuild_notice(report), ensure_ascii=False)
    assert "python 3.11.0rc1 → 3.11.11 · 1 OS package updated (openssl 3.0.2-1.15 → 3.0.2-1.16), 1 added (jq)" in text
    assert "vs build #5" in text
    thread = changes_thread(report)
    assert thread is not None
    body = json.dumps(thread, ensure_ascii=False)
    assert "team-pandas" in body and "build #5 → #7" in body and "+ jq 1.6" in body and "team-ml" not in body
    assert changes_thread(ChannelReport("C0BUILDS1", rebuilt=[rebuilt("team-ml", 8)])) is None


def test_each_image_says_what_the_release_gate_did_with_it() -> None:
    from dataclasses import replace

    from bot.domain.records import Release

    def gated(name: str, build_id: int, status: str, **fields) -> RebuildResult:
        release = Release(build_id, name, "sha256:" + "c" * 64, "approval", status, f"latest-b{build_id}", **fields)
        return replace(rebuilt(name, build_id), release=release)

    waiting = gated("team-ml", 9, "waiting", approvals_needed=1, expires_at="2026-12-05T03:00:00.000000Z")
    canary = gated(
        "team-geo",
        10,
        "canary_failed",
        canary={"why": "the cluster stopped before RUNNING: DOCKER_IMAGE_PULL_FAILURE (CLIENT_ERROR)",
                "cluster_id": "1202-abc", "terminated": True},
    )  # fmt: skip
    doctor = failed("team-old", 11, "The doctor found problems (sudo); the push was blocked so no cluster gets it.")
    report = ChannelReport(
        "C0BUILDS1",
        rebuilt=[rebuilt("team-pandas", 7), waiting, canary],
        failed=[doctor],
        repositories={n: f"r/{n}:latest" for n in ("team-pandas", "team-ml", "team-geo")},
    )
    msg = rebuild_notice(report)
    text = json.dumps(msg, ensure_ascii=False)
    assert msg["text"].startswith("Scheduled rebuild: 1 promoted, 1 waiting for approval, 1 canary failed, 1 failed")
    assert "`r/team-pandas:latest` now points to" in text
    assert "Waiting for approval" in text and "needs 1 approval(s) by" in text
    assert "DOCKER_IMAGE_PULL_FAILURE (CLIENT_ERROR)" in text and "cluster `1202-abc` terminated" in text
    assert "`r/team-geo:latest` stays where it was" in text
    assert ":stethoscope: doctor failed *team-old*" in text
    buttons = [e for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in buttons] == [
        ("release_approve", "9"),
        ("release_reject", "9"),
        ("release_promote", "10"),  # "promote anyway" for the one whose canary failed (admins, confirmed)
    ]
