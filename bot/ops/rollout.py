"""Rollout and rollback: move everything that runs an image, in every workspace, to one digest — and back.

1. `plan` scans the fleet once (bot/ops/fleet.py) and computes each item's exact change (bot/domain/rollout.py):
   policies first, then clusters, then jobs; pools and items another tool manages get the way forward instead.
2. `create` stores the rollout and its items (one transaction); a rollout that touches a protected workspace
   waits for a second person (`approve`: not the requester; a builder or an admin).
3. `run` sends each item's one write: the rollout moves `ready → running` for exactly one caller (double clicks,
   Slack retries and a second process get the rollout as it is), and each item `pending → sending` for exactly
   one caller. Right before its write each item is read again: its previous value is what is stored (and what a
   rollback restores), and an item already on the target is not written. One item's failure does not stop the
   others; failures are listed with their reason and `retry` sends just those again.
4. `rollback` (once per rollout) sends each written item's restore body: the previous value, exactly.
Every step is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clients.databricks_fleet import READERS, WRITERS
from bot.domain.clock import stamp
from bot.domain.fleet import KINDS, FleetItem
from bot.domain.permissions import Role, allowed
from bot.domain.refs import is_sha256_digest, short_digest
from bot.domain.rollout import PLANNERS, Change, Target, managed_elsewhere, pool_users, pool_way_forward
from bot.domain.rollout_records import Rollout, RolloutItem, RolloutStatus
from bot.errors import DcsError, InvalidInput, NotAllowed, NotFound
from bot.ops.fleet import current_digests, scan_fleet
from bot.services import Services

log = logging.getLogger(__name__)
Progress = Callable[[Rollout], None]
CLI_ACTOR = "cli"
STUCK_SECONDS = 600  # a running rollout no process touched for this long was left by a stop
STOPPED = "the bot stopped while this item was being sent; Retry reads it again and writes only if it is not there"


@dataclass
class RolloutPlan:
    image: str
    target: Target
    build_id: int | None
    workspace: str | None
    force: bool = False  # items another tool manages are edited too (admins only)
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # workspaces that could not be listed

    @property
    def protected(self) -> list[str]:
        return sorted({i["workspace"] for i in self.items if i.get("protected") and i["action"] != "unchanged"})

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "target": self.target.url,
            "build_id": self.build_id,
            "workspaces_not_listed": self.errors,
            "protected_workspaces": self.protected,
            "items": [{k: v for k, v in i.items() if k != "protected"} for i in self.items],
        }


# ---------------------------------------------------------------- target


def target_for(services: Services, image: str, to: str | None) -> tuple[Target, int | None]:
    """The image's target URL: a build number, a digest of one of its pushed builds, or (None) its current one."""
    spec = services.store.get_image(image)
    if to is None or to == "":
        digest = current_digests(services).get(image)
        if not digest:
            raise NotFound(f"{image} has no pushed build to roll out. Push one: `dcs build {image} --push`.")
        build_id = next((b for b, d in services.store.pushed_digests([image]).items() if d == digest), None)
    elif to.isdigit():
        build = services.store.get_build(int(to))
        if build.image != image or not build.pushed_digest:
            raise InvalidInput(
                "--to", to, f"is not a pushed build of {image}", f"Use `dcs status {image}` to pick one."
            )
        digest, build_id = build.pushed_digest, build.id
    elif is_sha256_digest(to):
        builds = [b for b, d in services.store.pushed_digests([image]).items() if d == to]
        if not builds:
            raise InvalidInput(
                "--to",
                to,
                f"is not the digest of a build of {image} the bot pushed",
                "Give a build number or its digest.",
            )
        digest, build_id = to, max(builds)
    else:
        raise InvalidInput("--to", to, "is neither a build number nor a sha256 digest", "Use --to 42 or --to sha256:…")
    registry = services.push_registry(spec)
    auth = None
    if registry is not None and registry.username:
        if not registry.cluster_password_secret:
            raise InvalidInput(
                f"registry[{registry.name}].cluster_password_secret",
                None,
                "is not set, and a rollout writes only secret references into cluster specs",
                'Set cluster_password_secret = "{{secrets/SCOPE/KEY}}" on the registry entry.',
            )
        auth = {
            "username": registry.cluster_username or registry.username,
            "password": registry.cluster_password_secret,
        }
    url = f"{spec.repository_ref.repository}@{digest}"
    return Target(spec.repository_ref, url, auth), build_id


# ---------------------------------------------------------------- planning


def plan(
    services: Services, image: str, to: str | None = None, *, workspace: str | None = None, force: bool = False
) -> RolloutPlan:
    """Every item's change; nothing is written. `force` (admins): edit items another tool manages too."""
    target, build_id = target_for(services, image, to)
    report = scan_fleet(services, images=[image], workspace=workspace)
    result = RolloutPlan(image, target, build_id, workspace, force, errors=report.errors)
    for scan in report.scans:
        raw = scan.raw
        if raw is None:
            continue
        by_id = {
            "cluster": {str(c.get("cluster_id")): c for c in raw.clusters},
            "job": {str(j.get("job_id")): j for j in raw.jobs},
            "policy": {str(p.get("policy_id")): p for p in raw.policies},
            "pool": {str(p.get("instance_pool_id")): p for p in raw.pools},
        }
        protected = services.config.workspace(scan.workspace).protected
        seen: set[tuple[str, str]] = set()
        for item in sorted(scan.items, key=lambda i: KINDS.index(i.kind)):
            if (item.kind, item.item_id) in seen:
                continue
            seen.add((item.kind, item.item_id))
            detail = by_id[item.kind].get(item.item_id) or {}
            change = _change(item, detail, target, raw, force)
            result.items.append(_planned(item, change, protected))
    return result


def _change(item: FleetItem, detail: dict[str, Any], target: Target, raw: Any, force: bool) -> Change:
    if item.kind == "pool":
        users = pool_users(item.item_id, raw.clusters, raw.jobs, raw.policies)
        return pool_way_forward(detail, target, users)
    change = PLANNERS[item.kind](detail, target)
    if item.managed_by and not force and change.action != "unchanged":
        return managed_elsewhere(item.managed_by, change, target)
    return change


def _planned(item: FleetItem, change: Change, protected: bool) -> dict[str, Any]:
    status = {"manual": "manual", "unchanged": "unchanged"}.get(change.action, "pending")
    detail = change.note
    if change.problems:
        status, detail = "refused", "Not changed, it breaks the DCS launch rules: " + "; ".join(change.problems)
    return {
        "workspace": item.workspace,
        "kind": item.kind,
        "item_id": item.item_id,
        "name": item.name,
        "action": change.action,
        "status": status,
        "locations": list(change.locations),
        "detail": detail,
        "request": change.request,
        "restore": change.restore,
        "managed_by": item.managed_by,
        "protected": protected,
    }


# ---------------------------------------------------------------- creating, approving, running


def may_roll_out(services: Services, actor: str, *, force: bool = False) -> None:
    config = services.config
    if actor == CLI_ACTOR:
        return
    if force and actor not in config.admins:
        raise NotAllowed("Only a bot admin can force a rollout onto items another tool manages.")
    if not allowed(actor, Role.BUILDER, config):
        raise NotAllowed("Only builders (DCS_BUILDERS) and admins can move the fleet to a new image.")


def create(services: Services, planned: RolloutPlan, actor: str, *, propose: bool = False) -> Rollout:
    """Store the rollout; it waits for a second person when a protected workspace is in it (not from the CLI).
    `propose`: stored for the requester to confirm first (the Slack modal lists it; `confirm` starts it)."""
    force = planned.force
    may_roll_out(services, actor, force=force)
    protected = bool(planned.protected)
    status: RolloutStatus = "awaiting_approval" if protected and actor != CLI_ACTOR else "ready"
    if propose:
        status = "proposed"
    rollout = services.store.create_rollout(
        {
            "image": planned.image,
            "kind": "rollout",
            "target_url": planned.target.url,
            "target_digest": planned.target.url.split("@", 1)[1],
            "build_id": planned.build_id,
            "workspace": planned.workspace,
            "status": status,
            "requester": actor,
            "protected": protected,
            "force": force,
        },
        planned.items,
    )
    _audit(services, actor, "rollout.create", rollout, status, f"{len(rollout.writes)} item(s) to {planned.target.url}")
    return rollout


def confirm(services: Services, rollout_id: int, actor: str) -> tuple[Rollout, bool]:
    """The requester's go (the modal's submit): proposed → ready, or → awaiting approval when protected. Once:
    the second element says whether this call moved it (False for a second submit)."""
    rollout = services.store.get_rollout(rollout_id)
    if actor != rollout.requester:
        raise NotAllowed("Only the person who opened this rollout can start it. Nothing changed.")
    to: RolloutStatus = "awaiting_approval" if rollout.protected else "ready"
    moved = services.store.move_rollout(rollout_id, to=to, frm=("proposed",))
    if moved:
        _audit(services, actor, "rollout.confirm", rollout, to)
    return services.store.get_rollout(rollout_id), moved


def approve(services: Services, rollout_id: int, actor: str) -> Rollout:
    """The second person of a protected rollout: not its requester; a builder or an admin. Once."""
    rollout = services.store.get_rollout(rollout_id)
    if actor == rollout.requester:
        raise NotAllowed("You asked for this rollout, so someone else has to approve it (four eyes). Nothing changed.")
    may_roll_out(services, actor)
    if not services.store.move_rollout(rollout_id, to="ready", frm=("awaiting_approval",), approved_by=actor):
        current = services.store.get_rollout(rollout_id)
        raise NotAllowed(f"Rollout #{rollout_id} is already {current.status.replace('_', ' ')}. Nothing changed.")
    _audit(services, actor, "rollout.approve", rollout, "approved")
    return services.store.get_rollout(rollout_id)


def run(services: Services, rollout_id: int, actor: str, progress: Progress | None = None) -> Rollout:
    """Send every pending item's write, once; returns the rollout as it ended (or as another run left it)."""
    store = services.store
    if not store.move_rollout(rollout_id, to="running", frm=("ready",)):
        return store.get_rollout(rollout_id)  # a double click, a retry of the request, or not approved yet
    return _drive(services, rollout_id, actor, progress)


def retry(services: Services, rollout_id: int, actor: str, progress: Progress | None = None) -> Rollout:
    """Send the failed items again (once, whoever clicks). A rollout whose process stopped mid-way (still
    `running`, untouched for STUCK_SECONDS) is taken over: each item is read again before any write, so an item
    whose write did reach Databricks is found already there and not written twice."""
    may_roll_out(services, actor)
    store = services.store
    cutoff = stamp(datetime.now(UTC) - timedelta(seconds=STUCK_SECONDS))
    if store.release_stuck_items(rollout_id, cutoff, STOPPED):
        _audit(services, actor, "rollout.resume", store.get_rollout(rollout_id), "partial", "taken over after a stop")
    if not store.move_rollout(rollout_id, to="running", frm=("partial", "failed")):
        return store.get_rollout(rollout_id)
    count = store.retry_failed_items(rollout_id)
    _audit(services, actor, "rollout.retry", store.get_rollout(rollout_id), "running", f"{count} item(s)")
    return _drive(services, rollout_id, actor, progress)


def rollback(services: Services, rollout_id: int, actor: str, progress: Progress | None = None) -> Rollout:
    """Restore every item the rollout changed to its previous value. One rollback per rollout."""
    may_roll_out(services, actor)
    store = services.store
    original = store.get_rollout(rollout_id)
    if original.kind != "rollout":
        raise InvalidInput("rollout", rollout_id, "is itself a rollback", "Roll out the build you want instead.")
    if original.status in ("awaiting_approval", "ready", "running"):
        raise NotAllowed(f"Rollout #{rollout_id} is {original.status.replace('_', ' ')}: roll back once it ended.")
    if not store.claim(f"rollback:{rollout_id}", "rollback"):
        existing = store.rollback_of(rollout_id)
        if existing is None:
            raise NotAllowed(f"Rollout #{rollout_id} is being rolled back already.")
        return existing
    items = [
        {
            "workspace": i.workspace,
            "kind": i.kind,
            "item_id": i.item_id,
            "name": i.name,
            "action": i.action,
            "status": "pending",
            "locations": list(i.locations),
            "detail": f"restores the value it had before rollout #{rollout_id}",
            "request": i.restore,
            "restore": i.request,
        }
        for i in original.items
        if i.status == "done" and i.restore
    ]
    back = store.create_rollout(
        {
            "image": original.image,
            "kind": "rollback",
            "target_url": original.target_url,
            "target_digest": original.target_digest,
            "build_id": original.build_id,
            "workspace": original.workspace,
            "status": "running",
            "requester": actor,
            "parent_id": rollout_id,
            "protected": original.protected,
        },
        items,
    )
    store.set_claim_ref(f"rollback:{rollout_id}", str(back.id))
    _audit(services, actor, "rollback.create", back, "running", f"{len(items)} item(s) of rollout #{rollout_id}")
    return _drive(services, back.id, actor, progress)


def _drive(services: Services, rollout_id: int, actor: str, progress: Progress | None) -> Rollout:
    store = services.store
    rollout = store.get_rollout(rollout_id)
    target = _target_of(services, rollout)
    for item in rollout.items:
        if item.status != "pending" or not store.claim_item(item.id):
            continue
        _send(services, rollout, item, target, actor)
        if progress is not None:
            progress(store.get_rollout(rollout_id))
    rollout = store.get_rollout(rollout_id)
    final: RolloutStatus = "partial" if rollout.count("failed") else "done"
    if rollout.count("failed") and not rollout.count("done", "unchanged"):
        final = "failed"
    store.move_rollout(rollout_id, to=final, frm=("running",))
    rollout = store.get_rollout(rollout_id)
    _audit(
        services,
        actor,
        f"{rollout.kind}.finish",
        rollout,
        final,
        f"{rollout.count('done')} changed, {rollout.count('unchanged')} already there, "
        f"{rollout.count('failed')} failed",
    )
    if progress is not None:
        progress(rollout)
    return rollout


def _target_of(services: Services, rollout: Rollout) -> Target | None:
    if rollout.kind != "rollout":
        return None
    target, _ = target_for(services, rollout.image, rollout.target_digest)
    return target


def _send(services: Services, rollout: Rollout, item: RolloutItem, target: Target | None, actor: str) -> None:
    """The item's one write; its previous value is read right before it."""
    store = services.store
    where = f"{item.kind} {item.item_id} in {item.workspace}"
    try:
        client = services.workspace(item.workspace)
        request = item.request
        previous = None
        restore = item.restore
        if target is not None:  # a rollout: plan again on a fresh read, so the restore body is exact
            previous = READERS[item.kind](client, item.item_id)
            change = PLANNERS[item.kind](previous, target)
            if change.action == "unchanged":
                store.finish_item(item.id, "unchanged", previous=previous, error=None)
                return
            if change.problems:
                store.finish_item(item.id, "refused", previous=previous, detail="; ".join(change.problems))
                return
            request, restore = change.request, change.restore
        if request is None:
            raise NotFound(f"nothing to send for {where}")
        WRITERS[item.action](client, request)
    except DcsError as exc:
        reason = services.redactor(exc.message)
        if item.kind == "cluster" and "unexpected state" in reason.lower():
            reason += (
                ". Only RUNNING or TERMINATED clusters can change: Retry once it has settled "
                "(a starting or restarting cluster takes a few minutes)."
            )
        store.finish_item(item.id, "failed", error=reason)
        _audit(services, actor, f"{rollout.kind}.item", rollout, "failed", f"{where}: {reason}")
        log.warning("rollout %s: %s failed: %s", rollout.id, where, reason)
        return
    store.finish_item(item.id, "done", request=request, previous=previous, restore=restore, error=None)
    _audit(services, actor, f"{rollout.kind}.item", rollout, "done", f"{where}: {item.action}")


def _audit(services: Services, actor: str, action: str, rollout: Rollout, outcome: str, detail: str = "") -> None:
    services.store.audit(
        actor=actor,
        action=action,
        target=f"{rollout.image}#rollout{rollout.id}",
        outcome=outcome,
        detail=detail or f"to {short_digest(rollout.target_digest)}",
    )
