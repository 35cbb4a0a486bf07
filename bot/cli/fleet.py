"""`dcs fleet [NAME] [--workspace W]`: every cluster, job, pool and policy that runs a catalog image, in every
workspace, with the digest or tag it uses; items on an older digest than the image's current one are stale.
Exit status 1 when a workspace could not be listed (the others are still shown).
"""

from __future__ import annotations

import argparse

from rich.table import Table

from bot.cli.context import CliContext
from bot.domain.refs import short_digest
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
