"""Rollouts and rollbacks against two fake workspaces, proven by the fake's write records: each kind changed the
way its API allows (policy first; clusters/update of docker_image; jobs/update with only the tasks that use the
image, complete), pools and bundle jobs left with the way forward, one write per item under double clicks,
partial failure and retry, exact rollback, four eyes for a protected workspace, dry-run bodies.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.clients.databricks_fleet import update_cluster
from bot.errors import NotAllowed
from bot.ops import rollout as rollouts
from bot.services import Services
from tests.fakes.http import wait_until
from tests.support.cli import dcs_command
from tests.support.workspaces import (
    NEW,
    OLD,
    VOLUMES,
    SeededFleet,
    TwoWorkspaces,
    fleet_services,
    seed_fleet,
    two_workspaces,
    url,
)

THIRD = "sha256:" + "2f" * 32
U1, U2, ADMIN = "UBUILD01", "UBUILD02", "UADMIN01"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[TwoWorkspaces]:
    with two_workspaces(tmp_path) as fleet:
        yield fleet


@pytest.fixture
def services(pair: TwoWorkspaces, tmp_db: str) -> Services:
    return fleet_services(pair, tmp_db, DCS_ADMINS=ADMIN, DCS_BUILDERS=f"{U1},{U2}")


def new_build(services: Services, digest: str = THIRD) -> int:
    build = services.store.create_build("team-pandas", requester=U1, source="test", push=True)
    services.store.update_build(build.id, status="succeeded", pushed_digest=digest)
    return build.id


def snapshot(pair: TwoWorkspaces) -> dict[str, object]:
    fake = pair.dev
    return {
        "clusters": {cid: copy.deepcopy(c.spec) for cid, c in fake.clusters.items()},
        "jobs": {jid: copy.deepcopy(j.settings) for jid, j in fake.jobs.items()},
        "policies": copy.deepcopy(fake.policies),
        "pools": copy.deepcopy(fake.instance_pools),
    }


def test_each_kind_moves_the_way_its_api_allows(services: Services, pair: TwoWorkspaces) -> None:
    dev: SeededFleet = seed_fleet(pair.dev)
    build = new_build(services)
    target = url(THIRD)
    planned = rollouts.plan(services, "team-pandas", str(build), workspace="dev")
    done = rollouts.run(services, rollouts.create(services, planned, U1).id, U1)

    assert done.status == "done", [(i.label, i.status, i.error) for i in done.items]
    writes = pair.dev.writes_to()
    assert [w.kind for w in writes][0] == "policy"  # first: the running cluster's policy fixes the URL
    per_item = [(w.kind, str(w.resource_id)) for w in writes]
    assert len(per_item) == len(set(per_item))  # one write per item
    policy = json.loads(pair.dev.policies[dev.policy]["definition"])
    assert policy["docker_image.url"] == {"type": "fixed", "value": target}
    for cid in (dev.running, dev.terminated, dev.current):
        spec = pair.dev.clusters[cid].spec
        assert spec["docker_image"]["url"] == target and spec["spark_conf"][VOLUMES] == "true"
    (update,) = pair.dev.writes_to("cluster", dev.running)
    assert update.action == "update" and update.body["update_mask"] == "docker_image,spark_conf"
    assert update.after["spark_conf"] == {"spark.x": "1", VOLUMES: "true"} and update.after["policy_id"] == dev.policy
    assert (
        pair.dev.clusters[dev.running].state == "RESTARTING" and pair.dev.clusters[dev.terminated].state == "TERMINATED"
    )
    assert pair.dev.clusters[dev.other_image].spec["docker_image"]["url"] == "other.example.com/x/y:1"
    assert pair.dev.writes_to("cluster", dev.job_made) == []  # a job's cluster changes through its job
    (etl,) = pair.dev.writes_to("job", dev.etl_job)
    assert [t["task_key"] for t in etl.body["new_settings"]["tasks"]] == ["extract"]  # report has no image
    assert "job_clusters" not in etl.body["new_settings"]
    assert etl.after["tasks"][1] == etl.before["tasks"][1]
    assert etl.after["tasks"][0]["new_cluster"]["docker_image"] == {"url": target}
    assert etl.after["tasks"][0]["notebook_task"] == etl.before["tasks"][0]["notebook_task"]  # sent complete
    (loop,) = pair.dev.writes_to("job", dev.loop_job)
    inner = loop.after["tasks"][0]["for_each_task"]["task"]["new_cluster"]["docker_image"]["url"]
    assert inner == target and loop.after["job_clusters"][0]["new_cluster"]["docker_image"]["url"] == target
    (wide,) = pair.dev.writes_to("job", dev.wide_job)
    assert [t["task_key"] for t in wide.body["new_settings"]["tasks"]] == ["t120"] and len(wide.after["tasks"]) == 150
    assert pair.dev.writes_to("job", dev.bundle_job) == [] and pair.dev.writes_to("instance_pool") == []
    manual = {i.kind + ":" + i.item_id: i for i in done.items if i.status == "manual"}
    bundle = manual[f"job:{dev.bundle_job}"].detail or ""
    assert "Asset Bundle" in bundle and f'tasks[main].new_cluster.docker_image.url = "{target}"' in bundle
    pool = manual[f"pool:{dev.pool}"].detail or ""
    assert "cannot be changed" in pool and target in pool
    assert pair.prod.writes_to() == []  # only the named workspace


def test_a_double_click_sends_each_write_once(services: Services, pair: TwoWorkspaces) -> None:
    seed_fleet(pair.dev)
    created = rollouts.create(services, rollouts.plan(services, "team-pandas", str(new_build(services))), U1)
    threads = [threading.Thread(target=rollouts.run, args=(services, created.id, U1)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    per_item = [(w.kind, str(w.resource_id)) for w in pair.dev.writes_to()]
    assert len(per_item) == 7 and len(per_item) == len(set(per_item))
    assert services.store.get_rollout(created.id).status == "done"
    again = rollouts.run(services, created.id, U2)  # a late Slack retry
    assert again.status == "done" and len(pair.dev.writes_to()) == 7


def test_one_item_failing_leaves_the_others_moved_and_can_be_retried(services: Services, pair: TwoWorkspaces) -> None:
    dev = seed_fleet(pair.dev)
    pair.dev.fail_next("/clusters/update", 500, "INTERNAL_ERROR", "Internal error: disk full", item=dev.terminated)
    created = rollouts.create(services, rollouts.plan(services, "team-pandas", str(new_build(services))), U1)
    done = rollouts.run(services, created.id, U1)
    assert done.status == "partial"
    failed = [i for i in done.items if i.status == "failed"]
    assert [i.item_id for i in failed] == [dev.terminated] and "disk full" in (failed[0].error or "")
    assert pair.dev.clusters[dev.running].spec["docker_image"]["url"] == url(THIRD)
    assert pair.dev.writes_to("cluster", dev.terminated) == []
    retried = rollouts.retry(services, created.id, U2)
    assert retried.status == "done" and len(pair.dev.writes_to("cluster", dev.terminated)) == 1
    assert rollouts.retry(services, created.id, U2).status == "done"  # nothing left to retry
    assert len(pair.dev.writes_to()) == 7
    trail = [(e.action, e.outcome) for e in services.store.audit_events(limit=50) if e.action.startswith("rollout")]
    assert ("rollout.item", "failed") in trail and ("rollout.retry", "running") in trail


def test_rollback_restores_exactly_what_was_there(services: Services, pair: TwoWorkspaces) -> None:
    dev = seed_fleet(pair.dev)
    before = snapshot(pair)
    created = rollouts.create(services, rollouts.plan(services, "team-pandas", str(new_build(services))), U1)
    rollouts.run(services, created.id, U1)
    assert snapshot(pair) != before
    back = rollouts.rollback(services, created.id, U2)
    # the running cluster is still restarting onto the new image: Databricks refuses to change it until it settles
    assert back.kind == "rollback" and back.status == "partial"
    (refused,) = [i for i in back.items if i.status == "failed"]
    assert refused.item_id == dev.running and "RESTARTING" in (refused.error or "") and "Retry" in (refused.error or "")
    client = services.workspace("dev")
    wait_until(lambda: client.get_cluster(dev.running).state == "RUNNING" or None, 30, lambda: "never settled")
    back = rollouts.retry(services, back.id, U2)
    assert back.status == "done", [(i.label, i.error) for i in back.items]
    assert snapshot(pair) == before
    writes = len(pair.dev.writes_to())
    assert rollouts.rollback(services, created.id, U1).id == back.id and len(pair.dev.writes_to()) == writes


def test_a_protected_workspace_needs_a_second_person(services: Services, pair: TwoWorkspaces) -> None:
    seed_fleet(pair.prod)
    planned = rollouts.plan(services, "team-pandas", str(new_build(services)), workspace="prod")
    assert planned.protected == ["prod"]
    created = rollouts.create(services, planned, U1)
    assert created.status == "awaiting_approval"
    assert rollouts.run(services, created.id, U1).status == "awaiting_approval" and pair.prod.writes_to() == []
    with pytest.raises(NotAllowed, match="someone else"):
        rollouts.approve(services, created.id, U1)
    with pytest.raises(NotAllowed):
        rollouts.approve(services, created.id, "UOUTSIDER")
    assert rollouts.approve(services, created.id, U2).status == "ready"
    with pytest.raises(NotAllowed, match="already ready"):
        rollouts.approve(services, created.id, ADMIN)
    assert rollouts.run(services, created.id, U2).status == "done" and len(pair.prod.writes_to()) == 7


def test_items_managed_elsewhere_are_edited_only_when_an_admin_forces(services: Services, pair: TwoWorkspaces) -> None:
    dev = seed_fleet(pair.dev)
    build = str(new_build(services))
    with pytest.raises(NotAllowed):
        rollouts.create(services, rollouts.plan(services, "team-pandas", build, workspace="dev", force=True), U1)
    forced = rollouts.create(
        services, rollouts.plan(services, "team-pandas", build, workspace="dev", force=True), ADMIN
    )
    rollouts.run(services, forced.id, ADMIN)
    (write,) = pair.dev.writes_to("job", dev.bundle_job)
    assert write.after["tasks"][0]["new_cluster"]["docker_image"]["url"] == url(THIRD)


def test_dry_run_prints_the_exact_bodies_and_changes_nothing(
    services: Services, pair: TwoWorkspaces, tmp_db: str
) -> None:
    dev = seed_fleet(pair.dev)
    build = new_build(services)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "DCS_"))}
    env.update({k: v for k, v in pair.env().items() if v}, DCS_DB=tmp_db, DCS_DATABRICKS_TIMEOUT="3")
    done = subprocess.run(
        [*dcs_command(), "rollout", "team-pandas", "--to", str(build), "--workspace", "dev", "--dry-run", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["target"] == url(THIRD) and pair.dev.writes_to() == []
    by_id = {(i["kind"], i["item_id"]): i for i in plan["items"]}
    cluster = by_id[("cluster", dev.terminated)]["request"]
    assert cluster == {
        "cluster_id": dev.terminated,
        "update_mask": "docker_image,spark_conf",
        "cluster": {"docker_image": {"url": url(THIRD)}, "spark_conf": {VOLUMES: "true"}},
    }
    assert by_id[("pool", dev.pool)]["status"] == "manual"
    assert [i["kind"] for i in plan["items"]][0] == "policy"
    # the same run for real sends exactly these bodies
    real = subprocess.run(
        [*dcs_command(), "rollout", "team-pandas", "--to", str(build), "--workspace", "dev", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert real.returncode == 0, real.stderr
    (sent,) = pair.dev.writes_to("cluster", dev.terminated)
    assert sent.body == cluster
    assert OLD not in json.dumps(pair.dev.clusters[dev.terminated].spec) and NEW


def test_a_rollout_left_by_a_stop_is_taken_over_without_writing_twice(services: Services, pair: TwoWorkspaces) -> None:
    dev = seed_fleet(pair.dev)
    created = rollouts.create(services, rollouts.plan(services, "team-pandas", str(new_build(services))), U1)
    store = services.store
    assert store.move_rollout(created.id, to="running", frm=("ready",))
    first = next(i for i in created.items if i.kind == "cluster" and i.item_id == dev.terminated)
    assert store.claim_item(first.id)  # the process sent this write, then stopped before recording it
    planned = rollouts.plan(services, "team-pandas", str(created.build_id))
    body = next(i["request"] for i in planned.items if i["item_id"] == dev.terminated)
    update_cluster(services.workspace("dev"), body)  # the write reached Databricks
    assert rollouts.retry(services, created.id, U2).status == "running"  # too fresh: another process may be on it
    assert len(pair.dev.writes_to("cluster", dev.terminated)) == 1
    with store.transaction() as conn:
        conn.execute("UPDATE rollouts SET updated_at = '2020-01-01T00:00:00.000000Z' WHERE id = ?", (created.id,))
        conn.execute(
            "UPDATE rollout_items SET updated_at = '2020-01-01T00:00:00.000000Z' WHERE rollout_id = ?", (created.id,)
        )
    done = rollouts.retry(services, created.id, U2)
    assert done.status == "done", [(i.label, i.status, i.error) for i in done.items]
    assert len(pair.dev.writes_to("cluster", dev.terminated)) == 1  # found already there: not written again
    assert next(i for i in done.items if i.id == first.id).status == "unchanged"
    per_item = [(w.kind, str(w.resource_id)) for w in pair.dev.writes_to()]
    assert len(per_item) == len(set(per_item)) == 7
