"""The fleet inventory against two fake workspaces the bot never created anything in: clusters (UI, terminated,
not the job-run ones), jobs (a task's new_cluster, a for-each task, job clusters, 150 tasks paged by jobs/get),
pools, policies (fixed and family allowlist), ownership, one pass per workspace, one workspace down.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.ops.fleet import scan_fleet
from tests.support.cli import dcs_command
from tests.support.workspaces import (
    NEW,
    OLD,
    SeededFleet,
    TwoWorkspaces,
    add_image,
    fleet_services,
    seed_fleet,
    two_workspaces,
    url,
)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[TwoWorkspaces]:
    with two_workspaces(tmp_path) as fleet:
        yield fleet


def test_everything_naming_the_image_is_found_whoever_made_it(pair: TwoWorkspaces, tmp_db: str) -> None:
    dev: SeededFleet = seed_fleet(pair.dev)
    pair.prod.add_cluster({"docker_image": {"url": url(OLD)}, "custom_tags": {"managed_by": "terraform"}})
    family = "fam-dcs"
    pair.prod.add_policy_family(family, "DCS family", {"spark_version": {"type": "unlimited"}})
    allow = {"docker_image.url": {"type": "allowlist", "values": [url(OLD), url(NEW)]}}
    prod_policy = pair.prod.add_policy("prod-dcs", policy_family_id=family, policy_family_definition_overrides=allow)
    services = fleet_services(pair, tmp_db, DCS_MANAGED_TAGS="managed_by=terraform")

    report = scan_fleet(services)

    assert report.errors == {} and report.current == {"team-pandas": NEW}
    found = {(i.workspace, i.kind, i.item_id, i.location): i for i in report.items}
    dev_keys = {k[1:] for k in found if k[0] == "dev"}
    assert dev_keys == {
        ("policy", dev.policy, "definition (fixed)"),
        ("cluster", dev.running, "docker_image"),
        ("cluster", dev.terminated, "docker_image"),
        ("cluster", dev.current, "docker_image"),
        ("job", str(dev.etl_job), "tasks[extract].new_cluster"),
        ("job", str(dev.loop_job), "tasks[each].for_each_task.task.new_cluster"),
        ("job", str(dev.loop_job), "job_clusters[shared].new_cluster"),
        ("job", str(dev.wide_job), "tasks[t120].new_cluster"),
        ("job", str(dev.bundle_job), "tasks[main].new_cluster"),
        ("pool", dev.pool, "preloaded_docker_images[0]"),
    }
    stale = {k[2] for k, i in found.items() if i.stale and k[0] == "dev"}
    assert dev.current not in stale and {dev.running, dev.terminated, dev.policy, dev.pool} <= stale
    assert found[("dev", "cluster", dev.terminated, "docker_image")].state == "TERMINATED"
    shared = found[("dev", "job", str(dev.loop_job), "job_clusters[shared].new_cluster")]
    assert shared.digest_or_tag == ":latest" and not shared.stale and not shared.pinned
    assert "Asset Bundle" in (found[("dev", "job", str(dev.bundle_job), "tasks[main].new_cluster")].managed_by or "")
    prod = [i for i in report.items if i.workspace == "prod"]
    assert [(i.kind, i.managed_by) for i in prod if i.kind == "cluster"] == [("cluster", "tag managed_by=terraform")]
    allowed = sorted((i.digest_or_tag, i.stale) for i in prod if i.kind == "policy")
    assert [i.item_id for i in prod if i.kind == "policy"] == [prod_policy, prod_policy]
    assert allowed == sorted([(OLD, True), (NEW, False)])
    assert {i.location for i in prod if i.kind == "policy"} == {"policy_family_definition_overrides (allowlist)"}


def test_one_pass_per_workspace_lists_each_kind_once_whatever_the_catalog_size(
    pair: TwoWorkspaces, tmp_db: str
) -> None:
    seed_fleet(pair.dev)
    services = fleet_services(pair, tmp_db)
    for i in range(30):
        add_image(services, f"img-{i:02d}", f"myacr.azurecr.io/team/img{i:02d}")
    before = len(pair.dev.requests)
    scan_fleet(services)
    paths = [r.path for r in pair.dev.requests[before:] if not r.path.startswith("/.well-known")]
    assert paths.count("/api/2.1/clusters/list") == 1  # 6 clusters: one page
    assert paths.count("/api/2.2/jobs/list") == 1
    assert paths.count("/api/2.2/jobs/get") == 2  # only the 150-task job, its two pages
    assert paths.count("/api/2.0/instance-pools/list") == 1
    assert paths.count("/api/2.0/policies/clusters/list") == 1
    assert len(paths) == 6


def test_one_workspace_down_is_reported_and_the_other_listed(pair: TwoWorkspaces, tmp_db: str) -> None:
    seed_fleet(pair.dev)
    pair.prod.go_down()
    fleet_services(pair, tmp_db)  # the catalog and builds in the database the CLI reads
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DCS_"))}
    env.update({k: v for k, v in pair.env().items() if v}, DCS_DB=tmp_db, DCS_DATABRICKS_TIMEOUT="2")
    done = subprocess.run(
        [*dcs_command(), "fleet", "team-pandas", "--json"], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    dev, prod = data["workspaces"]
    assert dev["workspace"] == "dev" and dev["error"] is None and len(dev["items"]) == 10
    assert prod["workspace"] == "prod" and "prod" in prod["error"] and prod["items"] == []
    human = subprocess.run(
        [*dcs_command(), "fleet", "--stale", "--workspace", "dev"], env=env, capture_output=True, text=True, timeout=90
    )
    assert human.returncode == 0, human.stderr
    assert "ui-made" in human.stdout and "fresh" not in human.stdout and "dcs rollout" in human.stdout
