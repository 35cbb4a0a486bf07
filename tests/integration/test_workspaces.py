"""Two Databricks workspaces by name (`dev`, `prod`) through unified-auth profiles: launches, `/dcs enable`,
`dcs workspace`, each reaching only its own workspace; one unreachable workspace blocks nobody else.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.clusterspec import parse_launch_args
from bot.ops.launch import launcher_for
from tests.fakes.http import wait_until
from tests.fakes.slack import FakeSlack
from tests.support.cli import dcs_command
from tests.support.launch_bot import ADMIN2, BUILDER, GOOD_FORM, NOTIFY, LaunchBot, seed_image, start_launch_bot
from tests.support.workspaces import TwoWorkspaces, two_workspaces


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[TwoWorkspaces]:
    with two_workspaces(tmp_path, prod_dcs="false") as pair:
        yield pair


@pytest.fixture
def bot(tmp_db: str, slack: FakeSlack, fleet: TwoWorkspaces) -> Iterator[LaunchBot]:
    harness = start_launch_bot(tmp_db, slack, fleet.dev, **fleet.env())
    yield harness
    harness.stop()


def test_a_launch_goes_to_the_named_workspace_and_is_followed_there(bot: LaunchBot, fleet: TwoWorkspaces) -> None:
    fleet.prod.workspace_conf["enableDcs"] = "true"
    seed_image(bot.ctx)
    launcher = launcher_for(bot.ctx.services)
    request = parse_launch_args("team-pandas", ["runtime=15.4.x-scala2.12", "node_type=m5d.large", "workspace=prod"])
    outcome = launcher.launch(request, requester=BUILDER, user_email="bob@example.com", request_key="ws-1")
    launch = outcome.launch
    assert launch is not None and launch.workspace == "prod" and launch.cluster_id in fleet.prod.clusters
    assert fleet.dev.created_specs() == [] and len(fleet.prod.created_specs()) == 1
    done = launcher.track(launch.id)
    assert done.status == "running"
    assert fleet.dev.requests_matching("GET", path_contains="/clusters/get") == []
    assert launcher.client_of(done).cluster_url(done.cluster_id or "").startswith(fleet.prod.url)


def test_a_launch_without_a_workspace_goes_to_the_first(bot: LaunchBot, fleet: TwoWorkspaces) -> None:
    seed_image(bot.ctx)
    request = parse_launch_args("team-pandas", ["runtime=15.4.x-scala2.12", "node_type=m5d.large"])
    launch = launcher_for(bot.ctx.services).launch(
        request, requester=BUILDER, user_email="bob@example.com", request_key="ws-2"
    )
    assert launch.launch is not None and launch.launch.cluster_id in fleet.dev.clusters
    assert fleet.prod.created_specs() == []


def test_an_unknown_workspace_is_refused_in_the_ack(bot: LaunchBot, fleet: TwoWorkspaces) -> None:
    seed_image(bot.ctx)
    answer, _ = bot.command("launch team-pandas runtime=15.4.x-scala2.12 workspace=staging")
    text = json.dumps(answer)
    assert "staging" in text and "dev, prod" in text, answer
    assert bot.ctx.store.launches() == []
    assert fleet.dev.created_specs() == [] and fleet.prod.created_specs() == []


def test_enable_is_asked_and_approved_per_workspace(bot: LaunchBot, fleet: TwoWorkspaces) -> None:
    answer, name = bot.command("enable prod")
    assert "prod" in answer["text"]
    told = bot.slack.wait_for_response_post(name, timeout=30).body["text"]
    assert "off in prod" in told, told
    message = [m for m in bot.slack.messages(NOTIFY) if "enableDcs" in (m.text or "") + json.dumps(m.blocks)][-1]
    assert "prod (" + fleet.prod.url in json.dumps(message.blocks)
    value = next(e["value"] for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"])
    bot.click("enable_approve", value, ADMIN2, message, channel=NOTIFY)
    wait_until(lambda: fleet.prod.workspace_conf_patches == 1 or None, 30, lambda: "prod was never switched on")
    assert fleet.prod.workspace_conf == {"enableDcs": "true"}
    assert fleet.dev.workspace_conf_patches == 0
    assert bot.ctx.store.get_approval(int(value)).kind == "enableDcs@prod"
    # dev was on already: asking there finds nothing to approve, and opens no request
    _, name = bot.command("enable workspace=dev")
    assert "already on" in bot.slack.wait_for_response_post(name, timeout=30).body["text"]


def test_dcs_workspace_reports_each_workspace_and_one_down_blocks_nobody(fleet: TwoWorkspaces, tmp_db: str) -> None:
    fleet.prod.go_down()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DCS_"))}
    env.update({k: v for k, v in fleet.env().items() if v}, DCS_DB=tmp_db, DCS_DATABRICKS_TIMEOUT="2")
    done = subprocess.run(
        [*dcs_command(), "workspace", "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    rows = json.loads(done.stdout)
    assert [r["workspace"] for r in rows] == ["dev", "prod"]
    assert rows[0]["enableDcs"] == "true" and rows[0]["host"] == fleet.dev.url
    assert "error" in rows[1] and "prod" in rows[1]["error"]


def test_the_launch_form_for_a_named_workspace_launches_there(bot: LaunchBot, fleet: TwoWorkspaces) -> None:
    fleet.prod.workspace_conf["enableDcs"] = "true"
    seed_image(bot.ctx)
    view = bot.open_form("launch team-pandas workspace=prod")
    assert fleet.prod.requests_matching("GET", path_contains="/clusters/spark-versions")  # options from prod
    bot.submit(view, GOOD_FORM)
    launch = bot.wait_launch(lambda la: la.cluster_id is not None)
    assert launch.workspace == "prod" and launch.cluster_id in fleet.prod.clusters
    assert fleet.dev.created_specs() == []
