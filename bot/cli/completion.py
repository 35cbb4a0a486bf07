"""`dcs completion bash|zsh|fish`: the shell code that completes commands, options and image names.

argcomplete does the work: the shell calls `dcs` with its completion variables set and
`argcomplete.autocomplete()` (in `main`) answers before anything else runs. Install with e.g.
`eval "$(dcs completion bash)"` in ~/.bashrc, `dcs completion fish > ~/.config/fish/completions/dcs.fish`.
"""

from __future__ import annotations

import argparse

import argcomplete

from bot.cli.context import CliContext

SHELLS = ("bash", "zsh", "fish")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    completion = sub.add_parser("completion", help="print shell completion code (bash, zsh or fish)", parents=[common])
    completion.add_argument("shell", choices=SHELLS)
    completion.set_defaults(handler=cmd_completion)


def cmd_completion(ctx: CliContext) -> int:
    print(argcomplete.shellcode(["dcs"], shell=ctx.args.shell), end="")
    return 0
