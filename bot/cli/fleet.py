"""`dcs fleet [NAME] [--workspace W]`: every cluster, job, pool and policy that runs a catalog image, in every
workspace, with the digest or tag it uses; items on an older digest than the image's current one are stale.
Exit status 1 when a workspace could not be listed (the others are still shown).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.table import Table

from bot.cli.context import CliContext
from bot.domain.refs import short_digest
from bot.domain.rollout_records import Rollout
from bot.errors import InvalidInput
from bot.ops import rollout as rollouts
from bot.ops.fleet import FleetReport, scan_fleet


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    fleet = sub.add_parser(
        "fleet",
        parents=[common],
        help="what runs each image: clusters, jobs, instance pools, cluster policies, in every workspace",
        description="One inventory pass per workspace: clusters (running and terminated), jobs (task, "
        "for-each and job clusters), instance pools (preloaded images) and cluster policies whose "
        "docker_image.url names a catalog image's repository, whoever created them.",
    )
    fleet.add_argument("name", nargs="?", help="one image (default: the whole catalog)")
    fleet.add_argument("--workspace", help="one workspace from DCS_WORKSPACES (default: all)")
    fleet.add_argument("--stale", action="store_true", help="only items on an older digest")
    fleet.set_defaults(handler=cmd_fleet)

    rollout = sub.add_parser(
        "rollout",
        parents=[common],
        help="move every cluster, job and policy running an image to one digest (or roll a rollout back)",
        description="Policies first, then clusters (clusters/update of docker_image; a running cluster restarts), "
        "then jobs (jobs/update with complete tasks). Pools and items another tool manages are listed with the "
        "change to make in their source. --dry-run prints the exact request bodies.",
    )
    rollout.add_argument("name", nargs="?", help="the image")
    rollout.add_argument("--to", help="a build number or sha256 digest of the image (default: its current build)")
    rollout.add_argument("--workspace", help="one workspace from DCS_WORKSPACES (default: all)")
    rollout.add_argument("--dry-run", action="store_true", help="print what would be sent; change nothing")
    rollout.add_argument("--force", action="store_true", help="also edit items managed by bundles or tagged tools")
    rollout.add_argument("--retry", type=int, metavar="ROLLOUT", help="send the failed items of a rollout again")
    rollout.add_argument("--rollback", type=int, metavar="ROLLOUT", help="restore what a rollout changed")
    rollout.set_defaults(handler=cmd_rollout)


def cmd_fleet(ctx: CliContext) -> int:
    args = ctx.args
    report = scan_fleet(ctx.services, images=[args.name] if args.name else None, workspace=args.workspace)
    if args.stale:
        for scan in report.scans:
            scan.items = [i for i in scan.items if i.stale]
    ctx.emit(report.to_dict(), lambda: _human(ctx, report))
    return 1 if report.errors else 0


def _human(ctx: CliContext, report: FleetReport) -> None:
    out = ctx.console()
    several = len(report.scans) > 1 or bool(ctx.services.config.workspaces)
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in (["workspace"] if several else []) + ["image", "kind", "id", "name", "where", "uses", "state"]:
        table.add_column(column)
    rows = 0
    for scan in report.scans:
        for item in scan.items:
            uses = short_digest(item.digest_or_tag) if item.pinned else item.digest_or_tag
            state = "[yellow]stale[/]" if item.stale else ""
            if item.managed_by:
                state += f" managed by {item.managed_by}"
            if item.state:
                state = f"{item.state} {state}".strip()
            cells = [item.image, item.kind, item.item_id, item.name, item.location, uses, state]
            table.add_row(*([scan.workspace] if several else []), *cells)
            rows += 1
    if rows:
        out.print(table)
    else:
        out.print("Nothing in the listed workspaces names a catalog image.")
    stale = len(report.stale())
    if stale:
        out.print(f"{stale} item(s) on an older digest: `dcs rollout NAME --to BUILD` moves them.")
    for name, error in report.errors.items():
        out.print(f"[red]{name}[/]: not listed: {error}", highlight=False)


def cmd_rollout(ctx: CliContext) -> int:
    args, services, actor = ctx.args, ctx.services, rollouts.CLI_ACTOR
    progress = None if ctx.json else _progress(ctx)
    if args.rollback is not None:
        done = rollouts.rollback(services, args.rollback, actor, progress)
        return _finish(ctx, done)
    if args.retry is not None:
        done = rollouts.retry(services, args.retry, actor, progress)
        return _finish(ctx, done)
    if not args.name:
        raise InvalidInput("NAME", None, "is missing", "Usage: dcs rollout NAME --to BUILD [--dry-run].")
    planned = rollouts.plan(services, args.name, args.to, workspace=args.workspace, force=args.force)
    if args.dry_run:
        ctx.emit(planned.to_dict(), lambda: _show_plan(ctx, planned))
        return 1 if planned.errors else 0
    created = rollouts.create(services, planned, actor)
    done = rollouts.run(services, created.id, actor, progress)
    return _finish(ctx, done, planned.errors)


def _show_plan(ctx: CliContext, planned: rollouts.RolloutPlan) -> None:
    out = ctx.console()
    out.print(f"Rollout of {planned.image} to {planned.target.url}", highlight=False)
    for item in planned.items:
        out.print(
            f"- {item['workspace']} {item['kind']} {item['item_id']} {item['name'] or ''}: {item['status']}"
            + (f" — {item['detail']}" if item["detail"] else ""),
            highlight=False,
            markup=False,
        )
        if item["request"] and item["status"] == "pending":
            out.print("  " + json.dumps(item["request"], sort_keys=True), highlight=False, markup=False)
    for name, error in planned.errors.items():
        out.print(f"{name}: not listed: {error}", highlight=False, markup=False)


def _progress(ctx: CliContext) -> rollouts.Progress:
    def show(rollout: Rollout) -> None:
        done = rollout.count("done", "unchanged", "failed", "refused")
        print(f"rollout #{rollout.id}: {done}/{len(rollout.writes)} {rollout.status}", file=sys.stderr)

    return show


def _finish(ctx: CliContext, rollout: Rollout, errors: dict[str, str] | None = None) -> int:
    data = rollout_dict(rollout)
    data["workspaces_not_listed"] = errors or {}

    def human() -> None:
        out = ctx.console()
        out.print(f"{rollout.kind} #{rollout.id} of {rollout.image} to {rollout.target_url}: {rollout.status}")
        for item in rollout.items:
            why = item.error or item.detail or ""
            out.print(f"- {item.label}: {item.status}" + (f" — {why}" if why else ""), highlight=False, markup=False)
        if rollout.count("failed"):
            out.print(f"Retry the failed ones: dcs rollout --retry {rollout.id}")
        if rollout.kind == "rollout" and rollout.count("done"):
            out.print(f"Undo: dcs rollout --rollback {rollout.id}")

    ctx.emit(data, human)
    return 1 if rollout.count("failed") or errors or rollout.status == "awaiting_approval" else 0


def rollout_dict(rollout: Rollout) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "kind": rollout.kind,
        "image": rollout.image,
        "target": rollout.target_url,
        "status": rollout.status,
        "items": [
            {
                "workspace": i.workspace,
                "kind": i.kind,
                "item_id": i.item_id,
                "name": i.name,
                "status": i.status,
                "error": i.error,
                "detail": i.detail,
                "request": i.request,
            }
            for i in rollout.items
        ],
    }
