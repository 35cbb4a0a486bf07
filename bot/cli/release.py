"""`dcs promote NAME BUILD` and `dcs rollback NAME`: move an image's moving tag by hand (bot/ops/release.py)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from bot.cli.context import CliContext
from bot.domain.refs import short_digest
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
