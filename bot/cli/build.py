"""`dcs build`, `dcs doctor`, `dcs digest`, `dcs status`, `dcs log`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bot.cli.context import CliContext, read_only
from bot.cli.table import cell, print_table
from bot.domain.build_steps import describe_step
from bot.domain.doctor import DoctorReport
from bot.domain.refs import short_digest
from bot.errors import BuildFailed, DoctorFailed
from bot.ops.build import Builder, BuildOutcome, BuildProgress, build_with_log, doctor_image, registry_digest
from bot.store import Build


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    build = sub.add_parser("build", help="build an image (then doctor, and push with --push)", parents=[common])
    build.add_argument("name")
    build.add_argument("--push", action="store_true", help="push the moving and the immutable tag")
    build.add_argument(
        "--force", action="store_true", help="build even if nothing changed (the doctor still decides the push)"
    )
    build.set_defaults(handler=cmd_build)

    doctor = sub.add_parser("doctor", help="check a local image for DCS compatibility", parents=[common])
    doctor.add_argument("image", metavar="IMAGE_REF")
    doctor.add_argument("--pull", action="store_true", help="pull the image first if it is not local")
    doctor.set_defaults(handler=cmd_doctor)

    digest = sub.add_parser(
        "digest", help="the registry digest of an image, by a manifest HEAD (no pull)", parents=[common]
    )
    digest.add_argument("image", metavar="IMAGE_REF")
    digest.set_defaults(handler=cmd_digest)

    status = sub.add_parser("status", help="recent builds, or one build", parents=[common])
    status.add_argument("build_id", nargs="?", type=int)
    status.add_argument("--image", help="only builds of this image")
    status.set_defaults(handler=cmd_status)

    logs = sub.add_parser("log", help="the stored log tail of a build", parents=[common])
    logs.add_argument("build_id", type=int)
    logs.set_defaults(handler=cmd_log)


def build_to_dict(build: Build) -> dict[str, Any]:
    return {
        "id": build.id,
        "image": build.image,
        "status": build.status,
        "requester": build.requester,
        "source": build.source,
        "started_at": build.started_at,
        "finished_at": build.finished_at,
        "duration_seconds": build.duration_seconds,
        "base_ref": build.base_ref,
        "base_digest": build.base_digest,
        "spec_hash": build.spec_hash,
        "image_id": build.image_id,
        "tags": list(build.tags),
        "pushed_digest": build.pushed_digest,
        "doctor": list(build.doctor),
        "error": build.error,
        "failed_step": build.failed_step,
        "owner": str(build.owner) if build.owner else None,
        "heartbeat_at": build.heartbeat_at,
    }


class _ProgressBar:
    """A rich progress bar on stderr; plain lines when stderr is not a terminal (CI logs)."""

    def __init__(self, ctx: CliContext, name: str) -> None:
        # Progress always goes to stderr, so `--json` output on stdout stays parseable in pipelines.
        self.quiet = ctx.quiet  # -q: no progress at all, only the result
        self.console: Console = ctx.console(stderr=True)
        self.live = self.console.is_terminal and not ctx.json and not ctx.quiet
        self.name = name
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last = ""

    def __enter__(self) -> _ProgressBar:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=30),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[line]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.name, total=100, line="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, p: BuildProgress) -> None:
        label = f"step {p.step}/{p.total} " if p.phase == "build" and p.total else ""
        doing = describe_step(p.message) if p.phase == "build" and p.step else p.message
        line = f"{p.phase}: {label}{doing}"[:100]
        if self._progress is not None and self._task is not None:
            # Keep the bar whole on narrow terminals: the step line gives way, not the bar.
            room = max(20, self.console.width - len(self.name) - 50)
            shown = line if len(line) <= room else line[: room - 1] + "…"
            self._progress.update(self._task, completed=round(p.fraction * 100), line=shown)
        elif not self.quiet and line != self._last:
            print(f"[{round(p.fraction * 100):3d}%] {line}", file=sys.stderr, flush=True)
        self._last = line


def print_doctor(ctx: CliContext, report: DoctorReport) -> None:
    print(f"DCS doctor: {report.image}")
    rows = [(c.name, c.status.upper(), c.detail, f"waived: {c.waiver}" if c.waiver else c.fix) for c in report.checks]
    print_table(("check", "result", "detail", "fix"), rows, width=ctx.width, optional=(3,))


def cmd_build(ctx: CliContext) -> int:
    builder = Builder(ctx.services)
    with _ProgressBar(ctx, ctx.args.name) as bar:
        outcome = builder.build(
            ctx.args.name, push=ctx.args.push, force=ctx.args.force, requester="cli", source="cli", progress=bar
        )
    data = {
        "skipped": outcome.skipped,
        "reason": outcome.reason,
        "build": build_to_dict(outcome.build) if outcome.build else None,
        "pushes": [p.__dict__ for p in ctx.services.store.pushes(outcome.build.id)]
        if outcome.build and not outcome.skipped
        else [],
    }
    ctx.emit(data, lambda: _print_outcome(ctx, outcome), quiet=lambda: _print_quiet(outcome))
    if outcome.error is not None:
        if not ctx.json:
            print(f"dcs: {outcome.error.message}", file=sys.stderr)
        return outcome.error.exit_code
    return 0


def _print_quiet(outcome: BuildOutcome) -> None:
    """-q: the pushed digest (or the local image id) of a build that worked; nothing otherwise."""
    build = outcome.build
    if build is not None and outcome.error is None:
        print(build.pushed_digest or build.image_id or "")


def _print_outcome(ctx: CliContext, outcome: BuildOutcome) -> None:
    console = ctx.console()
    build = outcome.build
    if outcome.skipped or build is None:
        console.print(outcome.reason)
        return
    if outcome.doctor is not None:
        print_doctor(ctx, outcome.doctor)
    duration = f" in {build.duration_seconds:.1f} s" if build.duration_seconds is not None else ""
    if build.status == "succeeded":
        console.print(f"[green]Build #{build.id} of {build.image} succeeded{duration}.[/green]")
        console.print(f"  image {build.image_id}")
        for push in ctx.services.store.pushes(build.id):
            console.print(
                f"  pushed {push.repository}:{push.tag} → {push.digest}{' (verified)' if push.verified else ''}"
            )
        release = outcome.release
        if release is not None and release.status != "promoted":
            why = f": {release.reason}" if release.reason else ""
            console.print(
                f"  a candidate ({release.status}{why}): the moving tag did not move; "
                f"`dcs promote {build.image} {build.id}` moves it by hand",
                markup=False,
            )
    else:
        console.print(f"[red]Build #{build.id} of {build.image} {build.status}{duration}.[/red]")
        if build.failed_step:
            console.print(f"  failing step: {build.failed_step}")
        if isinstance(outcome.error, BuildFailed) and build.log_tail:
            console.print("  last log lines:")
            for line in build.log_tail.splitlines()[-15:]:
                console.print(f"    {line}", markup=False)


def cmd_doctor(ctx: CliContext) -> int:
    image = ctx.args.image
    report = doctor_image(ctx.services, image, pull=ctx.args.pull)
    ctx.emit({"image": image, "status": report.status, "checks": report.to_rows()}, lambda: print_doctor(ctx, report))
    if not report.ok:
        return DoctorFailed.exit_code
    return 0


def cmd_digest(ctx: CliContext) -> int:
    answer = registry_digest(ctx.services, ctx.args.image)
    data = {"image": str(answer.ref), "digest": answer.digest, "media_type": answer.media_type, "pinned": answer.pinned}
    ctx.emit(data, lambda: print(answer.digest))
    return 0


_TIMES = ("started_at", "finished_at", "heartbeat_at")


@read_only
def cmd_status(ctx: CliContext) -> int:
    store = ctx.services.store
    if ctx.args.build_id is not None:
        build = store.get_build(ctx.args.build_id)
        data = build_to_dict(build)

        def human() -> None:
            for key, value in data.items():
                if key != "doctor" and value not in (None, [], ""):
                    shown = ctx.when(value) if key in _TIMES else cell(value)
                    print(f"{key:17} {shown}")
            if build.doctor:
                print_doctor(ctx, DoctorReport.from_rows(build.image, build.doctor))

        ctx.emit(data, human, quiet=lambda: print(build.status))
        return 0
    builds = store.builds(ctx.args.image, limit=20)

    def table() -> None:
        if not builds:
            print(f"No builds yet in {ctx.database}. Start one with `dcs build NAME`.")
            return
        rows = [
            (
                f"#{b.id}",
                b.image,
                b.status,
                ctx.when(b.finished_at or b.started_at or b.requested_at),
                short_digest(b.pushed_digest) if b.pushed_digest else (b.error or ""),
                b.requester,
            )
            for b in builds
        ]
        print_table(("build", "image", "status", "when", "digest / error", "by"), rows, width=ctx.width, optional=(5,))

    ctx.emit([build_to_dict(b) for b in builds], table, quiet=lambda: print("\n".join(str(b.id) for b in builds)))
    return 0


@read_only
def cmd_log(ctx: CliContext) -> int:
    build = build_with_log(ctx.services, ctx.args.build_id)
    inventory = ctx.services.store.inventory(build.id)
    text = build.log_tail or "(no log stored for this build)"
    if inventory is not None:
        text += f"\n\nBuild #{build.id} contains: {inventory.summary()}"
    data = {"id": build.id, "log_tail": build.log_tail, "inventory": inventory.to_dict() if inventory else None}
    ctx.emit(data, lambda: print(text))
    return 0
