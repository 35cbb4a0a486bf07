"""The canary against the fake Databricks (SDK wire format, command execution API 1.2): a single-node cluster
dedicated to the bot's identity on the candidate's digest, the smoke command, the cluster terminated always —
also after a restart. The promotions a canary leads to are proved against the real registry in
test_release_gate.py; here the builds are store rows (no engine needed)."""

from __future__ import annotations

import json

from bot.compose import build_services
from bot.config import load_config
from bot.domain.canary import CANARY_TAG
from bot.domain.catalog import image_from_dict
from bot.ops.canary import sweep_canaries
from bot.ops.gate import advance
from bot.services import Services
from tests.fakes.databricks import DEFAULT_TOKEN, DEFAULT_USER, FakeDatabricks
from tests.support.launch_bot import ACR, DIGEST


def services_with(tmp_db: str, databricks: FakeDatabricks) -> Services:
    environ = {
        "DCS_DB": tmp_db,
        "DATABRICKS_HOST": databricks.url,
        "DATABRICKS_TOKEN": DEFAULT_TOKEN,
        "DCS_DATABRICKS_TIMEOUT": "4",
        "DCS_CANARY_AUTOTERMINATION": "15",
    }
    return build_services(load_config(environ))


def candidate(services: Services, promote: str = "canary", **fields) -> int:
    store = services.store
    store.add_registry(ACR, replace=True)
    spec = image_from_dict(
        {
            "name": "team-pandas",
            "base": "databricksruntime/standard:15.4-LTS",
            "repository": "myacr.azurecr.io/team/pandas",
            "pip": ["pandas==2.2.2", "scikit-learn==1.5.0"],
            "promote": promote,
            **fields,
        }
    )
    store.add_image(spec, replace=True)
    build = store.create_build("team-pandas", requester="UBUILD1", source="test", push=True)
    build = store.update_build(build.id, status="succeeded", pushed_digest=DIGEST, tags=("latest-b1", "latest"))
    store.add_release(
        build_id=build.id, image="team-pandas", digest=DIGEST, immutable_tag="latest-b1", policy=promote,
        requester="UBUILD1", approvals_needed=1 if promote == "approval" else 0, expires_at=None,
    )  # fmt: skip
    return build.id


def no_sleep(_: float) -> None:
    return None


def test_a_failing_smoke_command_fails_the_canary_and_the_cluster_is_terminated(tmp_db, databricks):
    services = services_with(tmp_db, databricks)
    build_id = candidate(services, "approval", canary=True)
    databricks.script_command(cause="ModuleNotFoundError: No module named 'sklearn'", summary="ModuleNotFoundError")

    release = advance(services, build_id, sleep=no_sleep, poll_seconds=0)

    assert release.status == "canary_failed"
    assert "smoke command failed (Finished, resultType error)" in release.reason
    assert "ModuleNotFoundError" in release.reason
    [spec] = databricks.created_specs()
    assert spec["docker_image"]["url"] == f"myacr.azurecr.io/team/pandas@{DIGEST}"
    assert spec["docker_image"]["basic_auth"] == {"username": "sp-id", "password": "{{secrets/dcs/acr}}"}
    assert spec["num_workers"] == 0 and spec["custom_tags"]["ResourceClass"] == "SingleNode"
    assert (spec["data_security_mode"], spec["single_user_name"]) == ("SINGLE_USER", DEFAULT_USER)
    assert spec["autotermination_minutes"] == 15 and spec["custom_tags"][CANARY_TAG] == str(build_id)
    cluster_id = release.canary["cluster_id"]
    assert databricks.clusters[cluster_id].state == "TERMINATED" and release.canary["terminated"]
    [command] = databricks.commands(cluster_id)
    assert command.language == "python" and command.user == DEFAULT_USER
    assert json.dumps(["pandas", "scikit-learn"]) in command.command  # every requirement, by its distribution
    assert databricks.open_contexts() == []
    # the gate went no further: no approval is asked for a candidate that failed its canary
    assert services.store.votes(build_id) == []


def test_a_cluster_that_cannot_start_names_the_termination_reason(tmp_db, databricks):
    services = services_with(tmp_db, databricks)
    build_id = candidate(services)
    databricks.script_next_cluster(
        "TERMINATED",
        termination_code="DOCKER_IMAGE_PULL_FAILURE",
        termination_type="CLIENT_ERROR",
        parameters={"databricks_error_message": "Failed to pull the image: unauthorized"},
    )
    release = advance(services, build_id, sleep=no_sleep, poll_seconds=0)
    assert release.status == "canary_failed"
    assert "DOCKER_IMAGE_PULL_FAILURE (CLIENT_ERROR): Failed to pull the image: unauthorized" in release.reason
    assert databricks.commands() == []
    assert services.store.promoted("team-pandas") is None  # the moving tag did not move


def test_a_canary_cut_short_by_a_restart_has_its_cluster_terminated_at_start_up(tmp_db, databricks):
    services = services_with(tmp_db, databricks)
    build_id = candidate(services)
    cluster_id = databricks.add_cluster({"custom_tags": {CANARY_TAG: str(build_id)}}, state="RUNNING")
    # what a bot killed mid-canary leaves: the release in `canary`, owned by a process that is gone
    dead = {"host": __import__("socket").gethostname(), "pid": 2**22 + 12345, "started": "1"}
    assert services.store.move_release(build_id, to="canary", canary={"owner": dead, "cluster_id": cluster_id})

    assert sweep_canaries(services) == [build_id]
    assert databricks.clusters[cluster_id].state == "TERMINATED"
    release = services.store.release(build_id)
    assert release.status == "canary_failed" and "terminated after the restart" in release.reason
    assert sweep_canaries(services) == []  # once
