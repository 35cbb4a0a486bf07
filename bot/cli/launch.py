"""`dcs launch`, `dcs launches`, `dcs workspace`: clusters on an image's pinned digest, from a terminal.

`dcs launch NAME` takes the same options as `/dcs launch` (flags or key=value words) and the same
validation. `--dry-run --json` prints exactly the `clusters/create` body (secrets as references only),
so a pipeline can review or post it itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import replace
from typing import Any

from bot.cli.context import CliContext
from bot.domain.clusterspec import LaunchPlan, LaunchRequest, parse_launch_args
from bot.errors import DcsError, InvalidInput, LaunchBlocked, LaunchFailed, WorkspaceUnreachable
from bot.ops.approvals import WorkspaceStatus, workspace_status
from bot.ops.launch import Launcher, launch_advice, launcher_for
from bot.ops.launch_scripts import check_file_init_scripts
from bot.store import Launch


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    launch = sub.add_parser(
        "launch",
        parents=[common],
        help="launch a Databricks cluster on an image's pushed digest",
        description="Launch a dedicated-mode cluster on the last pushed build of NAME and "
        "follow it until it runs. Options can also be given as key=value words, "
        "like in Slack: runtime=15.4.x-scala2.12 workers=2 spark.x=y tag.team=z.",
    )
    launch.add_argument("name")
    launch.add_argument("options", nargs="*", metavar="KEY=VALUE", help="options as in Slack (see above)")
    launch.add_argument("--runtime", help="spark_version key, e.g. 15.4.x-scala2.12 (`--list-runtimes` shows them)")
    launch.add_argument("--node-type", help="node type id, e.g. m5d.large")
    launch.add_argument("--driver-node-type", help="driver node type id (default: --node-type)")
    launch.add_argument("--workers", type=int, help="fixed number of workers (default 1; 0 = single node)")
    launch.add_argument("--min-workers", type=int, help="autoscale: fewest workers")
    launch.add_argument("--max-workers", type=int, help="autoscale: most workers (above --min-workers)")
    launch.add_argument("--autotermination", type=int, help="minutes of inactivity before it stops (default 60)")
    launch.add_argument(
        "--init-script",
        action="append",
        default=[],
        metavar="LOCATION",
        help="file:/in/image.sh, /Workspace/..., /Volumes/..., s3://...?region=..., abfss://, gs://",
    )
    launch.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    launch.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    launch.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a Spark environment variable (spark_env_vars)"
    )
    launch.add_argument("--name", dest="cluster_name", help="cluster name (default: dcs NAME (user))")
    launch.add_argument("--build", type=int, help="launch this pushed build instead of the last one")
    launch.add_argument("--workspace", help="workspace name from DCS_WORKSPACES (default: the first)")
    launch.add_argument("--user", help="Databricks user (email) the dedicated cluster belongs to (required)")
    launch.add_argument("--dry-run", action="store_true", help="validate and print the request; create nothing")
    launch.add_argument(
        "--offline",
        action="store_true",
        help="with --dry-run: do not ask the workspace which runtimes and node types exist",
    )
    launch.add_argument("--force", action="store_true", help="launch even when the Docker Hub pull budget is 0")
    launch.add_argument(
        "--allow-runtime-mismatch",
        action="store_true",
        help="launch an image made for another runtime than --runtime (refused otherwise)",
    )
    launch.add_argument("--no-wait", action="store_true", help="return once the cluster is created")
    launch.add_argument("--list-runtimes", action="store_true", help="list the runtimes and node types to choose")
    launch.set_defaults(handler=cmd_launch)

    launches = sub.add_parser("launches", parents=[common], help="recent cluster launches")
    launches.add_argument("--limit", type=int, default=20)
    launches.set_defaults(handler=cmd_launches)

    workspace = sub.add_parser(
        "workspace",
        parents=[common],
        help="is Container Services (enableDcs) on, and can the bot switch it on? (every workspace by default)",
    )
    workspace.add_argument("name", nargs="?", help="one workspace from DCS_WORKSPACES (default: all of them)")
    workspace.set_defaults(handler=cmd_workspace)


def _pairs(values: list[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise InvalidInput(flag, value, "is not KEY=VALUE", f"Write {flag} key=value.")
        pairs.append((key.strip(), rest.strip()))
    return pairs


def request_from_args(args: argparse.Namespace) -> LaunchRequest:
    """Flags and key=value words merged (flags win), then the same shape checks as Slack."""
    tokens = list(args.options)
    flags = {
        "runtime": args.runtime,
        "node_type": args.node_type,
        "driver_node_type": args.driver_node_type,
        "workers": args.workers,
        "min_workers": args.min_workers,
        "max_workers": args.max_workers,
        "autotermination": args.autotermination,
        "name": args.cluster_name,
        "workspace": args.workspace,
    }
    given = {k for k, v in flags.items() if v is not None}
    tokens = [t for t in tokens if t.partition("=")[0].strip() not in given]
    tokens += [f"{k}={v}" for k, v in flags.items() if v is not None]
    tokens += [f"init_script={s}" for s in args.init_script]
    if args.allow_runtime_mismatch:
        tokens = [t for t in tokens if t.partition("=")[0].strip() != "allow_runtime_mismatch"]
        tokens.append("allow_runtime_mismatch=yes")
    request = parse_launch_args(args.name, tokens)
    return replace(
        request,
        spark_conf=(*request.spark_conf, *_pairs(args.spark_conf, "--spark-conf")),
        tags=(*request.tags, *_pairs(args.tag, "--tag")),
        spark_env_vars=(*request.spark_env_vars, *_pairs(args.env, "--env")),
    )


def cmd_launch(ctx: CliContext) -> int:
    args = ctx.args
    launcher = launcher_for(ctx.services)
    if args.list_runtimes:
        return _list_options(ctx, launcher)
    request = request_from_args(args)
    if not args.user:
        raise InvalidInput(
            "--user",
            None,
            "is missing",
            "Clusters run in dedicated mode for one Databricks user: pass --user you@example.com.",
        )
    request_key = f"cli:{uuid.uuid4().hex}"
    if args.dry_run:
        _source, plan = launcher.plan(
            request,
            requester=args.user,
            user_email=args.user,
            request_key=request_key,
            build_id=args.build,
            check_workspace=not args.offline,
        )
        untried = check_file_init_scripts(ctx.services, _source, request)  # a failing one exits 2
        for warning in (*plan.warnings, *([untried] if untried else [])):
            print(f"warning: {warning}", file=sys.stderr)
        ctx.emit(plan.shown_body, lambda: _show_plan(ctx, plan))
        return 0
    outcome = launcher.launch(
        request,
        requester=args.user,
        user_email=args.user,
        request_key=request_key,
        build_id=args.build,
        force=args.force,
    )
    launch = outcome.launch
    assert launch is not None
    err = ctx.console(stderr=True)
    for warning in outcome.plan.warnings if outcome.plan else ():
        err.print(f"[yellow]warning:[/] {warning}")
    if outcome.budget and outcome.budget.status in ("low", "unknown"):
        err.print(f"[yellow]pull budget:[/] {outcome.budget.message}")
    if launch.status == "blocked":
        raise LaunchBlocked(
            f"{outcome.budget.message if outcome.budget else 'The pull budget is exhausted.'} "
            "Run again with --force to launch anyway."
        )
    if not args.no_wait:

        def show(state: Launch) -> None:
            err.print(f"launch #{state.id}: {state.state} {state.state_message or ''}".rstrip())

        if launch.status == "checking":
            err.print(f"launch #{launch.id}: {launch.state_message}")
        elif launch.cluster_id:
            err.print(
                f"launch #{launch.id}: cluster {launch.cluster_id}: {launch.state_message} Waiting for it to run "
                f"({launcher.client_of(launch).cluster_url(launch.cluster_id)})"
            )
        launch = launcher.track(launch.id, show)
    ctx.emit(launch_to_dict(launch, launcher), lambda: _show_launch(ctx, launch, launcher))
    if launch.status == "checking":
        raise WorkspaceUnreachable(
            f"Launch #{launch.id}: Databricks did not confirm the create and the cluster could not be looked up "
            f"yet ({launch.lookup_error or launch.state_message}). Nothing was created again; `dcs-bot` on this "
            "database keeps looking for it when it starts, or run `dcs launches` later."
        )
    if launch.status in ("failed", "unknown"):
        advice = launch_advice(launch)
        raise LaunchFailed(
            f"Launch #{launch.id} ended {launch.state}: {launch.state_message or ''}"
            + (f"\n{advice.text()}" if advice else "")
        )
    return 0


def launch_to_dict(launch: Launch, launcher: Launcher) -> dict[str, Any]:
    return {
        "id": launch.id,
        "image": launch.image,
        "build_id": launch.build_id,
        "status": launch.status,
        "state": launch.state,
        "state_message": launch.state_message,
        "cluster_id": launch.cluster_id,
        "cluster_name": launch.cluster_name,
        "cluster_url": launcher.client_of(launch).cluster_url(launch.cluster_id) if launch.cluster_id else None,
        "image_url": launch.image_url,
        "termination_code": launch.termination_code,
        "lookup_error": launch.lookup_error,
        "duplicates_terminated": list(launch.duplicates_terminated),
        "requester": launch.requester,
        "created_at": launch.created_at,
        "advice": advice.text() if (advice := launch_advice(launch)) else None,
    }


def _show_plan(ctx: CliContext, plan: LaunchPlan) -> None:
    out = ctx.console()
    out.print(f"[bold]Would create[/] {plan.body['cluster_name']!r} on {plan.runtime.key} with {plan.image_url}")
    out.print(f"Pulls at start: {plan.pulls_at_start}, at most: {plan.pulls_ceiling}; registry login: {plan.auth}")
    out.print(json.dumps(plan.shown_body, indent=2))


def _show_launch(ctx: CliContext, launch: Launch, launcher: Launcher) -> None:
    out = ctx.console()
    style = {"running": "green", "failed": "red", "unknown": "yellow"}.get(launch.status, "")
    where = launcher.client_of(launch).cluster_url(launch.cluster_id) if launch.cluster_id else ""
    out.print(f"launch #{launch.id} [{style}]{launch.status}[/] {launch.cluster_id or ''} {where}".rstrip())


def _list_options(ctx: CliContext, launcher: Launcher) -> int:
    options = launcher.options(ctx.args.name, ctx.args.build)
    data = {
        "image": options.source.spec.name,
        "image_url": options.source.url,
        "preselected_runtime": options.preselected.key if options.preselected else None,
        "runtimes": [{"key": r.key, "name": r.name} for r in options.runtimes],
        "node_types": [n.node_type_id for n in options.node_types],
    }

    def human() -> None:
        out = ctx.console()
        out.print(f"[bold]{data['image']}[/] → {data['image_url']}")
        out.print("Runtimes (DCS-compatible, LTS first):")
        for r in options.runtimes:
            mark = " [green](matches the base)[/]" if options.preselected and r.key == options.preselected.key else ""
            out.print(f"  {r.key:<28} {r.name}{mark}")
        out.print("Node types: " + ", ".join(n.label for n in options.node_types))

    ctx.emit(data, human)
    return 0


def cmd_launches(ctx: CliContext) -> int:
    launcher = launcher_for(ctx.services)
    rows = ctx.services.store.launches(limit=ctx.args.limit)

    def human() -> None:
        out = ctx.console()
        if not rows:
            out.print("No launches yet. Launch one with `dcs launch NAME --user you@example.com`.")
        for launch in rows:
            out.print(
                f"#{launch.id} {launch.image} {launch.status} {launch.state or ''} {launch.cluster_id or ''} "
                f"{launch.created_at}"
            )

    ctx.emit([launch_to_dict(r, launcher) for r in rows], human)
    return 0


def cmd_workspace(ctx: CliContext) -> int:
    """Each workspace on its own: one that cannot be reached is reported and the others still answer."""
    names = [ctx.services.config.workspace(ctx.args.name).name] if ctx.args.name else ctx.services.workspace_names
    rows: list[dict[str, Any]] = []
    statuses: list[WorkspaceStatus | DcsError] = []
    for name in names:
        try:
            status = workspace_status(ctx.services, name)
        except DcsError as exc:
            statuses.append(exc)
            rows.append({"workspace": name, "error": exc.message})
            continue
        statuses.append(status)
        rows.append(
            {
                "workspace": name,
                "host": status.host,
                "enableDcs": status.value,
                "bot_user": status.identity.user_name,
                "bot_is_admin": status.identity.is_admin,
            }
        )

    def human() -> None:
        out = ctx.console()
        for name, status in zip(names, statuses, strict=True):
            label = f"{name} " if ctx.services.config.workspaces else ""
            if isinstance(status, DcsError):
                out.print(f"{label}[red]error[/]: {status.message}", markup=True, highlight=False)
                continue
            on = status.enabled
            out.print(
                f"{label}{status.host}: Container Services {'[green]on[/]' if on else '[red]off[/]'} "
                f"(enableDcs={status.value!r})"
            )
            out.print(
                f"The bot acts as {status.identity.user_name}, "
                + ("a workspace admin." if status.identity.is_admin else "[yellow]not[/] a workspace admin.")
            )
            if not on:
                where = f" {name}" if ctx.services.config.workspaces else ""
                out.print(f"To switch it on, ask in Slack with `/dcs enable{where}`: another admin approves it there.")

    if len(names) == 1:
        if isinstance(statuses[0], DcsError):
            raise statuses[0]  # one workspace: its error, as before
        ctx.emit(rows[0], human)
        return 0
    ctx.emit(rows, human)
    return 1 if any(isinstance(s, DcsError) for s in statuses) else 0
