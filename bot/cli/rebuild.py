"""`dcs rebuild [NAME ... | --due]` and `dcs ratelimit`: scheduled work, run by hand.

A rebuild from the CLI takes the same lock as the bot's scheduled runs (jobs/scheduler.py), so the two
never build at once, and posts the same summary notice when SLACK_BOT_TOKEN is set.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bot.cli.context import CliContext
from bot.domain.ratelimit import BudgetReport, format_window
from bot.domain.rebuild import FAILED, REBUILT, RebuildDecision, RebuildResult
from bot.domain.refs import short_digest
from bot.errors import BuildFailed, InvalidInput
from bot.ops.budget import pull_budget
from bot.ops.build import BuildProgress
from bot.ops.rebuild import plan, rebuild_run
from bot.ops.runs import MANUAL_JOB
from bot.services import Services


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    rebuild = sub.add_parser(
        "rebuild",
        parents=[common],
        help="rebuild images whose base moved (--due), or the named images now",
        description="With NAME: rebuild, check and push those images now. With --due: check every base "
        "once (manifest HEAD, no pull) and rebuild only images whose base moved, whose spec "
        "changed or that are older than DCS_REBUILD_MAX_AGE_DAYS.",
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME")
    rebuild.add_argument("--due", action="store_true", help="the scheduled check over the whole catalog")
    rebuild.add_argument("--dry-run", action="store_true", help="with --due: show what is due, build nothing")
    rebuild.add_argument("--no-notify", action="store_true", help="do not post the Slack summary notice")
    rebuild.set_defaults(handler=cmd_rebuild)

    ratelimit = sub.add_parser(
        "ratelimit", parents=[common], help="the Docker Hub pull budget (read without spending a pull)"
    )
    ratelimit.add_argument("--cached", action="store_true", help="show the last stored sample, do not ask Docker Hub")
    ratelimit.set_defaults(handler=cmd_ratelimit)


# ---------------------------------------------------------------- rebuild


def decision_to_dict(d: RebuildDecision) -> dict[str, Any]:
    return {
        "image": d.image,
        "due": d.due,
        "reasons": list(d.reasons),
        "old_base_digest": d.old_base_digest,
        "new_base_digest": d.new_base_digest,
        "note": d.note,
    }


def result_to_dict(r: RebuildResult) -> dict[str, Any]:
    return {
        **decision_to_dict(r.decision),
        "status": r.status,
        "build_id": r.build.id if r.build else None,
        "pushed_digest": r.pushed_digest,
        "immutable_tag": r.immutable_tag,
        "error": r.error,
    }


def cmd_rebuild(ctx: CliContext) -> int:
    args = ctx.args
    if args.due == bool(args.names):
        raise InvalidInput(
            "NAME",
            " ".join(args.names) or "(none)",
            "is required unless --due is given, and cannot be combined with --due",
            "Use `dcs rebuild NAME` to rebuild one image now, or `dcs rebuild --due` for the scheduled check.",
        )
    if args.dry_run and not args.due:
        raise InvalidInput("--dry-run", True, "only applies to --due", "Use `dcs rebuild --due --dry-run`.")
    services = ctx.services
    names = list(dict.fromkeys(args.names)) or None
    for name in names or []:
        services.store.get_image(name)  # NotFound names the known images before anything runs
    if args.dry_run:
        return _dry_run(ctx, services)

    err = ctx.console(stderr=True)
    last_phase: dict[str, str] = {}

    def progress(image: str, report: BuildProgress) -> None:
        if ctx.json or last_phase.get(image) == report.phase:
            return
        last_phase[image] = report.phase
        err.print(f"[dim]{image}: {report.phase} {report.message}[/dim]")

    summary = rebuild_run(
        services,
        MANUAL_JOB,
        names,
        by_hand=not args.due,
        source="cli",
        busy="raise",
        notify=not args.no_notify,
        progress=progress,
    )
    assert summary is not None  # busy="raise": a busy run raised JobBusy instead
    run = summary.run
    data = {
        "results": [result_to_dict(r) for r in run.results],
        "base_checks": {k: {"digest": c.digest, "error": c.error} for k, c in run.checks.items()},
        "head_requests": run.head_requests,
        "stale_clusters": [vars(c) for c in summary.stale],
        "notified_channels": summary.posted,
        "problems": summary.problems,
    }

    def human() -> None:
        out = ctx.console()
        for r in run.results:
            if r.status == REBUILT:
                d = r.decision
                out.print(
                    f"[green]rebuilt[/green] {r.image} ({', '.join(d.reasons)}): base "
                    f"{short_digest(d.old_base_digest)} → {short_digest(d.new_base_digest)}, pushed "
                    f"{r.immutable_tag} = {short_digest(r.pushed_digest)} (build #{r.build.id if r.build else '?'})"
                )
            elif r.status == FAILED:
                build = f" (build #{r.build.id})" if r.build else ""
                out.print(f"[red]failed[/red]  {r.image}{build}: {r.error}")
            else:
                out.print(f"[dim]{r.status:<8}[/dim] {r.image}: {r.decision.note or r.error or ''}")
        for c in summary.stale:
            out.print(
                f"[yellow]cluster[/yellow] {c.cluster_name or c.cluster_id} ({c.cluster_id}) still runs "
                f"{c.image} at {short_digest(c.running_digest)}; new is {short_digest(c.new_digest)}"
            )
        for problem in summary.problems:
            out.print(f"[yellow]note[/yellow] {problem}")
        if summary.posted:
            out.print(f"[dim]notice posted to {', '.join(summary.posted)}[/dim]")

    ctx.emit(data, human)
    return BuildFailed.exit_code if run.failed else 0


def _dry_run(ctx: CliContext, services: Services) -> int:
    checks, decisions = plan(services, services.store.list_images())
    data = {
        "due": [decision_to_dict(d) for d in decisions if d.due],
        "not_due": [decision_to_dict(d) for d in decisions if not d.due],
        "base_checks": {k: {"digest": c.digest, "error": c.error} for k, c in checks.items()},
    }

    def human() -> None:
        out = ctx.console()
        for d in decisions:
            if d.due:
                out.print(
                    f"[bold]due[/bold]     {d.image} ({', '.join(d.reasons)}): base "
                    f"{short_digest(d.old_base_digest)} → {short_digest(d.new_base_digest)}"
                )
            else:
                out.print(f"[dim]not due[/dim] {d.image}: {d.note}")
        for key, check in checks.items():
            if check.error:
                out.print(f"[yellow]base {key} not checked:[/yellow] {check.error}")

    ctx.emit(data, human)
    return 0


# ---------------------------------------------------------------- ratelimit


def cmd_ratelimit(ctx: CliContext) -> int:
    reading = pull_budget(ctx.services, refresh=not ctx.args.cached)
    report, failure = reading.report, reading.failure
    b = report.budget
    data = {
        "limit": b.limit if b else None,
        "remaining": b.remaining if b else None,
        "window_seconds": b.window_seconds if b else None,
        "unlimited": b.unlimited if b else None,
        "source": b.source if b else None,
        "account": report.account,
        "checked_at": report.checked_at,
        "sparkline_24h": report.spark,
        "recent_launch_pulls": report.recent_pulls,
        "planned_launch_pulls": report.planned_pulls,
        "state": report.state,
        "warn_below": report.warn_below,
        "error": failure.message if failure else report.error,
    }

    def human() -> None:
        out = ctx.console()
        for line in budget_text(report):
            out.print(line, markup=False)
        if failure is not None:
            print(f"dcs: {failure.message}", file=sys.stderr)

    ctx.emit(data, human)
    return failure.exit_code if failure is not None else 0


def budget_text(report: BudgetReport) -> list[str]:
    """The pull budget as plain terminal lines (Slack's mrkdwn version is handlers/notices.py)."""
    if report.budget is None:
        why = report.error or "no sample yet: the periodic check has not run"
        return [f"Docker Hub pull budget: unknown ({why})."]
    b = report.budget
    if b.unlimited:
        lines = ["Docker Hub pulls: unlimited (no rate-limit headers)"]
    else:
        pct = f" ({b.percent_remaining:.0f}%)" if b.percent_remaining is not None else ""
        left = b.remaining if b.remaining is not None else "?"
        limit = b.limit if b.limit is not None else "?"
        lines = [f"Docker Hub pulls left: {left}/{limit}{pct} per {format_window(b.window_seconds)}"]
    who = report.account or "anonymous (this machine's IP)"
    lines.append(f"Counted for {who}; checked {report.checked_ago or 'just now'}")
    if report.spark.strip():
        lines.append(f"Last 24 h: {report.spark}")
    lines.append(
        f"Launches in this window need {report.recent_pulls} pull(s); planned ones {report.planned_pulls} more"
    )
    if report.error:
        lines.append(f"warning: last check failed: {report.error}")
    if report.state == "low":
        lines.append(f"warning: below the warning line ({report.warn_below} pulls)")
    return lines
