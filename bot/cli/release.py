"""`dcs promote NAME BUILD`, `dcs rollback NAME`: move an image's moving tag by hand (bot/ops/release.py);
`dcs diff NAME [BUILD_A BUILD_B]`: what changed inside between two builds (bot/ops/diff.py)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from bot.cli.context import CliContext
from bot.domain.refs import short_digest
from bot.errors import InvalidInput
from bot.ops.diff import build_changes
from bot.ops.release import CLI_ACTOR, TagMove, promote, rollback


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    promote_cmd = sub.add_parser(
        "promote",
        parents=[common],
        help="move an image's moving tag to a pushed build (its candidate, or any earlier build)",
        description="Store the manifest of BUILD's immutable tag under the image's moving tag (no rebuild), so "
        "clusters started from the moving tag get it. Audited; a second run does nothing.",
    )
    promote_cmd.add_argument("name", metavar="NAME")
    promote_cmd.add_argument("build", metavar="BUILD", type=int)
    promote_cmd.set_defaults(handler=cmd_promote)

    rollback_cmd = sub.add_parser(
        "rollback",
        parents=[common],
        help="move an image's moving tag back to the build promoted before the current one",
    )
    rollback_cmd.add_argument("name", metavar="NAME")
    rollback_cmd.set_defaults(handler=cmd_rollback)

    diff_cmd = sub.add_parser(
        "diff",
        parents=[common],
        help="what changed inside an image: OS and Python packages, versions, size (default promoted vs candidate)",
    )
    diff_cmd.add_argument("name", metavar="NAME")
    diff_cmd.add_argument("builds", metavar="BUILD", type=int, nargs="*", help="BUILD_A BUILD_B (old, new)")
    diff_cmd.set_defaults(handler=cmd_diff)


def _say(move: TagMove) -> str:
    if not move.done:
        return move.note
    before = (
        f"build #{move.previous_build_id} {short_digest(move.previous_digest)}" if move.previous_build_id else "nothing"
    )
    verb = "Rolled back" if move.how == "rollback" else "Promoted"
    now = f"build #{move.build_id} {short_digest(move.digest)}"
    return f"{verb} {move.image}: {move.tag} now points to {now} (was {before})."


def cmd_promote(ctx: CliContext) -> int:
    move = promote(ctx.services, ctx.args.name, ctx.args.build, actor=CLI_ACTOR)
    ctx.emit(asdict(move), lambda: print(_say(move)))
    return 0


def cmd_rollback(ctx: CliContext) -> int:
    move = rollback(ctx.services, ctx.args.name, actor=CLI_ACTOR)
    ctx.emit(asdict(move), lambda: print(_say(move)))
    return 0


def cmd_diff(ctx: CliContext) -> int:
    a = ctx.args
    builds = a.builds or []
    if len(builds) not in (0, 2):
        raise InvalidInput("BUILD", " ".join(map(str, builds)), "is one build id", "Give two build ids, or none.")
    changes = build_changes(ctx.services, a.name, *(builds or [None, None]))
    data = {"image": changes.image, "old_build": changes.old_build, "new_build": changes.new_build}
    data |= changes.diff.to_dict()

    def human() -> None:
        print(f"{changes.image}: build #{changes.old_build} → #{changes.new_build}")
        print(changes.diff.summary())
        if not changes.diff.empty:
            print()
            print("\n".join(changes.diff.lines()))

    ctx.emit(data, human)
    return 0
