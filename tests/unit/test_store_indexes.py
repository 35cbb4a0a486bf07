"""Every query path of the store has an index: each statement the store runs with a WHERE clause is looked up
in SQLite's own query plan, and none may read a table from start to end."""

from __future__ import annotations

import re
from pathlib import Path

from bot.domain.catalog import image_from_dict, registry_from_dict
from bot.domain.clock import utcnow
from bot.domain.inventory import PackageInventory
from bot.domain.records import ImageCheck, ProcessOwner
from bot.ops.runs import claim_run
from bot.store import Store

FULL_SCAN = re.compile(r"^SCAN (\w+)$")  # "SCAN builds" (no "USING ... INDEX"): a whole-table read


def exercise(store: Store) -> None:
    """Call every store method once, on a small database, the way the bot does."""
    store.add_registry(registry_from_dict({"name": "acr", "host": "myacr.azurecr.io"}))
    spec = image_from_dict(
        {"name": "team-pandas", "base": "databricksruntime/standard:15.4-LTS", "repository": "myacr.azurecr.io/t/p"}
    )
    store.add_image(spec)
    store.add_image(spec, replace=True)
    store.get_image("team-pandas")
    store.list_images(), store.image_names(), store.list_registries(), store.get_registry("acr")
    store.catalog_fingerprint()
    store.image_overview()
    build = store.create_build("team-pandas", requester="U1", source="cli", stale_after_seconds=60)
    store.update_build(build.id, status="running", started_at=utcnow())
    store.active_build("team-pandas")
    store.add_push(
        build.id, registry="acr", repository="myacr.azurecr.io/t/p", tag="latest", digest="sha256:x", verified=True
    )
    store.pushes(build.id)
    store.save_inventory(build.id, PackageInventory(os_packages={"bash": "5.1"})), store.inventory(build.id)
    store.update_build(build.id, status="succeeded", pushed_digest="sha256:" + "a" * 64)
    store.builds("team-pandas", status="succeeded", limit=5), store.builds(status="queued"), store.builds()
    store.last_build("team-pandas", status="succeeded")
    store.pushed_digests(["team-pandas"])
    store.current_digests()
    rollout = store.create_rollout(
        {
            "image": "team-pandas",
            "kind": "rollout",
            "target_url": "r@sha256:x",
            "target_digest": "sha256:x",
            "status": "ready",
            "requester": "U1",
        },
        [{"workspace": "dev", "kind": "cluster", "item_id": "c-1", "action": "cluster_update", "status": "pending"}],
    )
    (
        store.rollouts_of("team-pandas"),
        store.rollback_of(rollout.id),
        store.rollout_of_message("C", "1"),
        store.attach_rollout_message(rollout.id, "C", "1"),
    )
    store.move_rollout(rollout.id, to="running", frm=("ready",)), store.claim_item(rollout.items[0].id)
    store.finish_item(rollout.items[0].id, "failed", error="x"), store.retry_failed_items(rollout.id)
    store.release_stuck_items(rollout.id, utcnow(), "stopped")
    store.discard_queued_build(build.id)
    store.mark_interrupted()
    owned = store.create_build(
        "team-pandas", requester="U1", source="cli", owner=ProcessOwner("h", 1, "1"), death_reason=lambda b: None
    )
    store.start_build(owned.id, ProcessOwner("h", 1, "1")), store.beat([owned.id])
    store.mark_interrupted(lambda b: None), store.interrupt_build(owned.id, "stopped")
    launch = store.insert_launch(image="team-pandas", build_id=build.id, requester="U1", status="creating")
    store.update_launch(launch.id, status="pending", cluster_id="c-1")
    store.get_launch(launch.id), store.launches(), store.launches(statuses=("creating", "pending"), limit=5)
    store.launched_builds(["team-pandas"])
    store.save_form("V1", kind="launch", user="U1", state={"image": "team-pandas"}), store.form("V1", "launch")
    store.drop_form("V1"), store.build_of_message("C1", "1.2"), store.launch_of_message("C1", "1.2")
    store.approval_of_message("C1", "1.2")
    store.launch_demand_rows(utcnow(), ("creating", "blocked"))
    request_id = store.insert_approval(
        kind="enableDcs", requester="U1", expires_at=utcnow(), note=None, created_at=utcnow()
    )
    store.get_approval(request_id), store.open_approvals("enableDcs"), store.approvals_due(utcnow())
    store.transition_approval(request_id, to="expired", frm=("pending",), at=utcnow(), unexpired=True)
    store.attach_approval_message(request_id, "C1", "1.2")
    run_id = claim_run(store, "rebuild:lts")
    store.running_run("rebuild:manual"), store.running_runs(), store.job_runs("rebuild:lts"), store.job_runs()
    store.record_skip("rebuild:manual", "busy")
    assert run_id is not None
    store.finish_run(run_id, "succeeded", "ok")
    store.add_sample(account=None, limit=100, remaining=90, window_seconds=21600, source="x", keep_after=utcnow())
    store.latest_sample(), store.samples_since(utcnow())
    store.set_alert_state("k", "ok"), store.alert_state("k")
    store.record_base_check("docker.io/databricksruntime/standard:15.4-LTS", "sha256:x", utcnow(), None)
    store.base_checks()
    store.audit(actor="U1", action="x", target=None, outcome="ok")
    store.audit_events(5), store.audit_events(5, action="x")
    store.claim("k1", "build"), store.claim_ref("k1"), store.set_claim_ref("k1", "1")
    store.add_release(
        build_id=build.id,
        image="team-pandas",
        digest="sha256:x",
        immutable_tag="t",
        policy="approval",
        requester="U1",
        approvals_needed=1,
        expires_at=utcnow(),
    )
    store.release(build.id), store.find_release(build.id), store.releases("team-pandas")
    store.open_release("team-pandas"), store.open_releases(), store.releases_in("waiting")
    store.releases_expired(utcnow()), store.record_canary(build.id, {"cluster_id": "c"})
    store.move_release(build.id, to="waiting"), store.attach_release_message(build.id, "C1", "1.2")
    store.vote(build.id, "U2", "approve"), store.votes(build.id), store.drop_claim("k1")
    promotion = store.add_promotion(
        image="team-pandas", build_id=build.id, tag="latest", digest="d", how="x", actor=None
    )
    store.promotions("team-pandas"), store.promoted("team-pandas"), store.promoted_builds()
    store.undo_promotion(promotion.id)
    store.prune(runs_before=utcnow(), claims_before=utcnow(), audit_before=utcnow(), logs_before=utcnow())
    store.queue_images(["team-pandas"], "rebuild:lts"), store.queued_images(), store.queue_size()
    store.dequeue_images(["team-pandas"], utcnow())
    store.record_image_checks([ImageCheck("team-pandas", utcnow(), "unchanged", "up to date", "schedule")])
    store.image_check("team-pandas"), store.image_checks()
    store.remove_image("team-pandas")


def test_every_filtered_query_uses_an_index(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "dcs.db"))
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    exercise(store)
    store.db.conn.set_trace_callback(None)
    tables = {r[0] for r in store.db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    checked, scans = 0, []
    for sql in dict.fromkeys(statements):
        if not re.match(r"\s*(SELECT|UPDATE|DELETE)\b", sql, re.I) or not re.search(r"\bWHERE\b", sql, re.I):
            continue
        if "sqlite_master" in sql or "schema_migrations" in sql:
            continue
        checked += 1
        for row in store.db.conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
            scan = FULL_SCAN.match(row[-1])
            if scan and scan.group(1) in tables:  # not a subquery's own result ("SCAN last")
                scans.append(f"{row[-1]}: {sql}")
    assert checked > 30  # the exercise reached the store's queries
    assert scans == []
    store.close()
