"""`dcs launch` as a user runs it: a subprocess with the environment, against FakeDatabricks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.domain.catalog import RegistrySpec, image_from_dict
from bot.store import Store
from tests.fakes.databricks import DEFAULT_TOKEN, FakeDatabricks

ROOT = Path(__file__).parents[2]
DIGEST = "sha256:" + "c0" * 32
LAUNCH = ("launch", "team-pandas", "runtime=14.3.x-scala2.12", "node_type=m5d.large", "--user", "ann@example.com")


@pytest.fixture
def workspace() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(pending_polls=1) as fake:
        yield fake


@pytest.fixture
def db(tmp_db: str) -> str:
    store = Store(tmp_db)
    store.add_registry(
        RegistrySpec("acr", "myacr.azurecr.io", "sp-id", "DCS_SECRET_ACR_PASSWORD", None, "{{secrets/dcs/acr}}")
    )
    store.add_image(
        image_from_dict(
            {
                "name": "team-pandas",
                "base": "databricksruntime/minimal:14.3-LTS",
                "repository": "myacr.azurecr.io/team/pandas",
            }
        )
    )
    build = store.create_build("team-pandas", requester="cli", source="cli", push=True)
    store.update_build(build.id, status="succeeded", pushed_digest=DIGEST)
    store.close()
    return tmp_db


def dcs(db: str, workspace: FakeDatabricks, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(Path(db).parent),
        "DCS_DB": db,
        "DATABRICKS_HOST": workspace.url,
        "DATABRICKS_TOKEN": DEFAULT_TOKEN,
        "DCS_DATABRICKS_TIMEOUT": "5",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=db.rsplit("/", 1)[0],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_dry_run_json_is_the_exact_body_a_launch_sends(db: str, workspace: FakeDatabricks) -> None:
    args = (
        "launch",
        "team-pandas",
        "workers=2",
        "init_script=/Volumes/main/ops/init.sh",
        "--runtime",
        "14.3.x-scala2.12",
        "--node-type",
        "m5d.large",
        "--tag",
        "team=data",
        "--user",
        "ann@example.com",
    )
    dry = dcs(db, workspace, *args, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    shown = json.loads(dry.stdout)
    assert workspace.created_specs() == []
    assert shown["spark_conf"] == {
        "spark.databricks.unityCatalog.volumes.enabled": "true",
        "spark.databricks.driverNfs.enabled": "false",
    }  # minimal: no venv
    assert shown["docker_image"]["basic_auth"]["password"] == "{{secrets/dcs/acr}}"

    real = dcs(db, workspace, *args, "--json")
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["status"] == "running"
    sent = workspace.created_specs()[0]
    # Identical but for the per-request tag that lets the bot find a cluster whose create answer it lost.
    assert sent["custom_tags"].pop("dcs_request") != shown["custom_tags"].pop("dcs_request")
    assert sent == shown


def test_rule_violations_exit_2_naming_each_field(db: str, workspace: FakeDatabricks) -> None:
    result = dcs(
        db,
        workspace,
        "launch",
        "team-pandas",
        "runtime=14.3.x-cpu-ml-scala2.12",
        "node_type=m6gd.large",
        "init_script=dbfs:/x.sh",
        "--user",
        "ann@example.com",
        "--json",
    )
    assert result.returncode == 2
    problems = {p["field"] for p in json.loads(result.stdout)["problems"]}
    assert problems == {"runtime", "node_type", "init_scripts"}
    assert workspace.created_specs() == []


def test_a_failed_launch_exits_with_advice(db: str, workspace: FakeDatabricks) -> None:
    workspace.script_next_cluster("TERMINATED", "DOCKER_INVALID_OS_EXCEPTION", "CLIENT_ERROR")
    result = dcs(db, workspace, *LAUNCH)
    assert result.returncode == 47, result.stderr
    assert "operating system" in result.stderr and "databricksruntime" in result.stderr


def test_user_is_required(db: str, workspace: FakeDatabricks) -> None:
    result = dcs(db, workspace, "launch", "team-pandas", "--dry-run", "--offline")
    assert result.returncode == 2 and "--user" in result.stderr


def test_a_create_answered_504_is_found_by_its_tag_not_sent_again(db: str, workspace: FakeDatabricks) -> None:
    workspace.fail_next("/clusters/create", 504, "DEADLINE_EXCEEDED", "upstream request timeout", applied=True)
    result = dcs(db, workspace, *LAUNCH, "--json")
    assert result.returncode == 0, result.stderr
    launch = json.loads(result.stdout)
    assert launch["status"] == "running" and list(workspace.clusters) == [launch["cluster_id"]]
    assert len(workspace.created_specs()) == 1
    assert "Found the cluster by this launch's tag" in result.stderr


def test_a_runtime_the_image_was_not_made_for_is_refused_unless_overridden(db: str, workspace: FakeDatabricks) -> None:
    args = ("launch", "team-pandas", "runtime=15.4.x-scala2.12", "node_type=m5d.large", "--user", "ann@example.com")
    refused = dcs(db, workspace, *args, "--dry-run", "--json")
    assert refused.returncode == 2, refused.stdout
    error = json.loads(refused.stdout)
    assert error["type"] == "InvalidInput" and "spark_version" not in error
    message = error["error"]
    assert message.startswith("runtime: '15.4.x-scala2.12' does not match the image")
    assert "made for DBR 14.3, not 15.4" in message and "Python 3.10" in message and "Python 3.11" in message
    assert "14.3.x-scala2.12" in message and "--allow-runtime-mismatch" in message

    allowed = dcs(db, workspace, *args, "--allow-runtime-mismatch", "--dry-run", "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["spark_version"] == "15.4.x-scala2.12"
    assert "overridden" in allowed.stderr
    assert workspace.created_specs() == []
