"""No orphan clusters: clusters/create reaches Databricks once per launch, and a create whose outcome is unknown is
resolved by looking for the launch's tag on every page of clusters/list, never by creating again.

The real databricks-sdk against FakeDatabricks over real HTTP: answers of 504/503/500 to create (with the cluster
really created, or not), a connection reset after the create took effect, a slow answer, clusters/list answering
503 for a while, two clusters carrying one launch's tag, and a restart of the bot in the middle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from bot.clients.databricks import DatabricksClient
from bot.config import load_config
from bot.errors import CreateUnconfirmed, WorkspaceRateLimited, WorkspaceRejected, WorkspaceUnavailable
from bot.ops.launch import Launcher
from bot.store import Launch
from jobs.clusters import resume_tracking
from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks
from tests.fakes.databricks_clusters import dcs_spec
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack
from tests.support.launch_bot import GOOD_FORM, LaunchBot, left_creating, seed_image, start_launch_bot

BODY = dcs_spec("myacr.azurecr.io/x@sha256:" + "a" * 64, custom_tags={"dcs_request": "req-1"})
OUTAGE = 10_000  # "answers 503 until the test says otherwise" (clear_faults)


def client(fake: FakeDatabricks, budget: str = "3") -> DatabricksClient:
    return DatabricksClient(
        load_config(
            {
                "DATABRICKS_HOST": fake.url,
                "DATABRICKS_TOKEN": DEFAULT_TOKEN,
                "DCS_DATABRICKS_TIMEOUT": budget,
                "HOME": "/nonexistent",
            }
        )
    )


def creates(fake: FakeDatabricks) -> int:
    return len(fake.requests_matching("POST", path_contains="/clusters/create"))


@pytest.fixture
def fake() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=0) as workspace:
        yield workspace


# ---------------------------------------------------------------- the client: one create, whatever happens


@pytest.mark.parametrize(
    ("fault", "created"),
    [
        ("reset after the cluster was made", True),  # measured: the SDK alone sends a second create
        ("504 after the cluster was made", True),
        ("503 with Retry-After: 0", False),  # the SDK alone retries 503
        ("500 'Unexpected error'", False),  # ... and 500s with this message
        ("no answer within the budget", True),  # a read timeout: the SDK alone sends it again
    ],
)
def test_a_create_is_sent_once_and_an_unknown_outcome_is_said_so(fake: FakeDatabricks, fault: str, created: bool):
    if fault.startswith("reset"):
        fake.reset_next("/clusters/create")
    elif fault.startswith("504"):
        fake.fail_next("/clusters/create", 504, "DEADLINE_EXCEEDED", "upstream request timeout", applied=True)
    elif fault.startswith("503"):
        fake.fail_next("/clusters/create", 503, "TEMPORARILY_UNAVAILABLE", "try later", retry_after=0, times=5)
    elif fault.startswith("500"):
        fake.fail_next("/clusters/create", 500, "INTERNAL_ERROR", "Unexpected error", times=5)
    else:
        fake.delay_next("/clusters/create", 5)
    c = client(fake, budget="3")
    started = time.monotonic()
    with pytest.raises(CreateUnconfirmed) as caught:
        c.create_cluster(BODY)
    assert creates(fake) == 1, fault
    assert len(fake.clusters) == int(created)
    assert time.monotonic() - started < 8
    assert DEFAULT_TOKEN not in caught.value.message


def test_a_429_is_a_refusal_and_is_asked_again(fake: FakeDatabricks) -> None:
    fake.fail_next("/clusters/create", 429, "REQUEST_LIMIT_EXCEEDED", "slow down", retry_after=1)
    cluster_id = client(fake, budget="5").create_cluster(BODY)
    assert creates(fake) == 2 and list(fake.clusters) == [cluster_id]  # nothing was made by the refused one


def test_a_clean_refusal_is_not_an_unknown_outcome(fake: FakeDatabricks) -> None:
    fake.fail_next("/clusters/create", 400, "INVALID_PARAMETER_VALUE", "Node type q9.huge is not supported")
    with pytest.raises(WorkspaceRejected):
        client(fake).create_cluster(BODY)
    fake.fail_next("/clusters/create", 429, "REQUEST_LIMIT_EXCEEDED", "slow down", retry_after=1, times=OUTAGE)
    with pytest.raises(WorkspaceRateLimited):
        client(fake, budget="2").create_cluster(BODY)
    assert fake.clusters == {}


def test_the_lookup_by_tag_reads_every_page() -> None:
    with FakeDatabricks(cluster_page_size=2) as workspace:
        first = workspace.add_cluster({"custom_tags": {"dcs_request": "req-1"}})
        for i in range(6):  # newer clusters are listed first: the tagged one ends up on the last page
            workspace.add_cluster({"cluster_name": f"other-{i}", "custom_tags": {"dcs_request": f"other-{i}"}})
        found = client(workspace).find_clusters_by_tag("dcs_request", "req-1")
        assert [c["cluster_id"] for c in found] == [first]
        pages = workspace.requests_matching("GET", path_contains="/clusters/list")
        assert len(pages) == 4 and pages[-1].query.get("page_token")


def test_a_503_is_reported_as_unavailable_not_as_too_many_requests(fake: FakeDatabricks) -> None:
    fake.fail_next("/clusters/list", 503, "TEMPORARILY_UNAVAILABLE", "The service is busy", times=OUTAGE)
    with pytest.raises(WorkspaceUnavailable) as caught:
        client(fake, budget="2").find_clusters_by_tag("dcs_request", "req-1")
    assert "unavailable" in caught.value.message and "503" in caught.value.message
    assert "too many requests" not in caught.value.message.lower()


# ---------------------------------------------------------------- launches from Slack


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks) -> Iterator[LaunchBot]:
    harness = quick_bot(tmp_db, slack, databricks)
    yield harness
    harness.stop()


def quick_bot(tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks) -> LaunchBot:
    """The Slack harness with short lookups: a failed clusters/list takes its 2 s budget, not 30 s."""
    harness = start_launch_bot(tmp_db, slack, databricks, DCS_DATABRICKS_TIMEOUT="2")
    harness.ctx.services.launcher = Launcher(
        harness.ctx.services,
        poll_initial=0.05,
        poll_max=0.3,
        lookup_attempts=2,
        lookup_delay=0.1,
        create_settle_seconds=1,
    )
    return harness


def launch_from_slack(bot: LaunchBot, *faults: Callable[[], None]) -> None:
    """Open the form and submit it; `faults` are set in between (the form itself reads list-node-types, which a
    fault on "/clusters/list" would match too)."""
    seed_image(bot.ctx)
    view = bot.open_form()
    for fault in faults:
        fault()
    bot.submit(view, GOOD_FORM)


def list_outage(databricks: FakeDatabricks) -> Callable[[], None]:
    return lambda: databricks.fail_next(
        "/clusters/list", 503, "TEMPORARILY_UNAVAILABLE", "The service is busy", times=OUTAGE
    )


def tagged(databricks: FakeDatabricks, launch: Launch) -> list[str]:
    return [
        c
        for c, v in databricks.clusters.items()
        if v.spec["custom_tags"]["dcs_request"] == launch.request["request_tag"]
    ]


def audit(bot: LaunchBot) -> list[tuple[str, str]]:
    return [
        (e.action, e.outcome) for e in reversed(bot.ctx.store.audit_events(limit=100)) if e.action.startswith("launch")
    ]


@pytest.mark.parametrize("fault", ["504", "reset"])
def test_a_create_answered_with_504_or_a_reset_is_adopted_not_repeated(bot: LaunchBot, fault: str) -> None:
    if fault == "504":
        bot.databricks.fail_next("/clusters/create", 504, "DEADLINE_EXCEEDED", "upstream timeout", applied=True)
    else:
        bot.databricks.reset_next("/clusters/create")
    launch_from_slack(bot)
    launch = bot.wait_launch(lambda launch: launch.status == "running")
    assert creates(bot.databricks) == 1 and tagged(bot.databricks, launch) == [launch.cluster_id]
    bot.wait_message(launch.id, "RUNNING")
    assert ("launch.create", "unconfirmed") in audit(bot) and ("launch.create", "adopted") in audit(bot)


def test_a_failing_lookup_keeps_checking_and_duplicates_are_terminated(bot: LaunchBot) -> None:
    databricks = bot.databricks
    databricks.fail_next("/clusters/create", 504, "DEADLINE_EXCEEDED", "upstream timeout", applied=True)
    launch_from_slack(bot, list_outage(databricks))
    checking = bot.wait_launch(lambda launch: launch.status == "checking" and bool(launch.lookup_error))
    assert "unavailable" in (checking.lookup_error or "")
    bot.wait_message(checking.id, "CHECKING")
    time.sleep(3)  # several failed lookups: still checking, never "nothing was created"
    assert bot.ctx.store.get_launch(checking.id).status == "checking"
    # Meanwhile a second cluster with this launch's tag shows up (a create an older version sent twice).
    (made,) = databricks.clusters.values()
    twin = databricks.add_cluster({**made.spec}, state="RUNNING")
    databricks.clear_faults()

    launch = bot.wait_launch(lambda launch: launch.status == "running")
    assert creates(databricks) == 1
    assert launch.cluster_id == twin  # the older one is kept (it has been starting longest)
    assert launch.duplicates_terminated == (made.cluster_id,)
    assert databricks.clusters[made.cluster_id].state == "TERMINATED"
    deletes = [r.body for r in databricks.requests_matching("POST", path_contains="/clusters/delete")]
    assert deletes == [{"cluster_id": made.cluster_id}]
    message = bot.wait_message(launch.id, "RUNNING")
    assert made.cluster_id in json.dumps(message.blocks) and "more than one cluster" in json.dumps(message.blocks)
    duplicates = bot.ctx.store.audit_events(action="launch.duplicates")
    assert len(duplicates) == 1 and made.cluster_id in (duplicates[0].detail or "") and twin in duplicates[0].detail


def test_nothing_was_created_is_said_only_after_a_lookup_succeeded(bot: LaunchBot) -> None:
    databricks = bot.databricks
    databricks.fail_next("/clusters/create", 503, "TEMPORARILY_UNAVAILABLE", "busy")  # not applied: nothing made
    launch_from_slack(bot, list_outage(databricks))
    checking = bot.wait_launch(lambda launch: launch.status == "checking" and bool(launch.lookup_error))
    time.sleep(3)
    assert bot.ctx.store.get_launch(checking.id).status == "checking"
    databricks.clear_faults()
    failed = bot.wait_launch(lambda launch: launch.status == "failed")
    assert failed.state == "NOT_CREATED" and "nothing was created" in (failed.state_message or "")
    assert creates(databricks) == 1 and databricks.clusters == {}
    bot.wait_message(failed.id, "nothing was created")
    assert ("launch.create", "not created") in audit(bot)


def test_a_launch_checking_when_the_bot_stopped_is_adopted_after_the_restart(
    tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks
) -> None:
    first = quick_bot(tmp_db, slack, databricks)
    try:
        databricks.fail_next("/clusters/create", 504, "DEADLINE_EXCEEDED", "upstream timeout", applied=True)
        launch_from_slack(first, list_outage(databricks))
        checking = first.wait_launch(lambda launch: launch.status == "checking" and bool(launch.slack_ts))
        first.wait_message(checking.id, "CHECKING")
    finally:
        first.stop()
    databricks.clear_faults()

    second = quick_bot(tmp_db, slack, databricks)  # a new process: new services, the same database
    try:
        resume_tracking(second.ctx.services, second.ctx.workers)
        launch = second.wait_launch(lambda launch: launch.status == "running")
        message = second.wait_message(launch.id, "RUNNING")
        assert message.ts == checking.slack_ts  # the launch's own message, updated by the new process
        assert creates(databricks) == 1 and tagged(databricks, launch) == [launch.cluster_id]
    finally:
        second.stop()


def test_a_launch_left_creating_is_not_declared_empty_while_the_lookup_fails(
    tmp_db: str, slack: FakeSlack, databricks: FakeDatabricks
) -> None:
    bot = quick_bot(tmp_db, slack, databricks)
    try:
        seed_image(bot.ctx)
        launcher = bot.ctx.services.launcher
        assert launcher is not None
        row, _cluster_id = left_creating(bot.ctx, launcher, "k1")
        list_outage(databricks)()
        resume_tracking(bot.ctx.services, bot.ctx.workers)
        wait_until(
            lambda: bot.ctx.store.get_launch(row.id).lookup_error, 20, lambda: str(bot.ctx.store.get_launch(row.id))
        )
        assert bot.ctx.store.get_launch(row.id).status == "checking"
        databricks.clear_faults()
        adopted = bot.wait_launch(lambda launch: launch.status == "running")
        assert adopted.cluster_id in databricks.clusters and creates(databricks) == 1
    finally:
        bot.stop()
