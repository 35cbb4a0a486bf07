"""`dcs`: the command-line interface. Human output by default, `--json` for pipelines.

Exit codes (the README lists them all): 0 success (or nothing to do), 2 invalid input, 4 not found,
5 already exists, 10-13 build/doctor failures, 14 not allowed, 20-25 registry problems, 40-47 Databricks
and launches, 69 engine unavailable, 78 configuration, 141 the reader of the output left (a closed pipe),
1 anything unexpected.
Each feature lives in its own module with `register(subparsers, common)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import uuid
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Any

import argcomplete

from bot.cli import build as build_commands
from bot.cli import completion as completion_commands
from bot.cli import fleet as fleet_commands
from bot.cli import images as image_commands
from bot.cli import launch as launch_commands
from bot.cli import rebuild as rebuild_commands
from bot.cli import release as release_commands
from bot.cli.context import CliContext
from bot.config import Config, load_config, read_environment
from bot.domain.redact import RedactingFilter, Redactor
from bot.errors import DcsError, InvalidInputs, StopRequested

log = logging.getLogger("bot.cli")

# Feature modules; each adds its subcommands. Keep one per line (several engineers add theirs).
FEATURES: list[ModuleType] = [
    image_commands,
    build_commands,
    rebuild_commands,
    launch_commands,
    fleet_commands,
    release_commands,
    completion_commands,
]


def build_parser() -> argparse.ArgumentParser:
    # The global flags work before or after the command (`dcs --json image list`, `dcs image list --json`):
    # the copies the subcommands inherit default to SUPPRESS, so they never overwrite a value given earlier.
    common = argparse.ArgumentParser(add_help=False)
    _global_flags(common, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="dcs",
        description="Build, check and push Databricks Container Services images; launch clusters on them.",
        epilog="The database is DCS_DB (default ./dcs.db); commands that only read refuse to create one. "
        "Shell completion: `dcs completion bash|zsh|fish`.",
    )
    _global_flags(parser, default=False)
    parser.add_argument("--version", action="version", version=f"dcs {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in FEATURES:
        module.register(sub, common)
    return parser


def _global_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--json", action="store_true", default=default, help="machine-readable output")
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="only names, ids or digests; no progress"
    )


def _version() -> str:
    try:
        return version("dcs-bot")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "dev"


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(config.secret_values())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # The CLI talks to people: only warnings and errors from libraries unless asked for more.
    root.setLevel(config.log_level if config.log_level == "DEBUG" else "WARNING")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argcomplete.autocomplete(parser)  # answers the shell's completion request (and exits) when there is one
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # `dcs image list | head -3`: the reader left. Exit quietly like other CLIs (128 + SIGPIPE), and point
        # stdout at /dev/null so that the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _run(args: argparse.Namespace) -> int:
    wants_json = bool(getattr(args, "json", False))
    try:
        config = load_config(read_environment(os.environ))
    except DcsError as exc:
        return _fail(exc, wants_json)
    setup_logging(config)
    ctx = CliContext(args=args, config=config)
    previous = _stop_on_sigterm()
    try:
        code = args.handler(ctx)
        return int(code or 0)
    except DcsError as exc:
        return _fail(exc, wants_json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except StopRequested as exc:
        print(f"stopped by {exc.signal_name}", file=sys.stderr)
        return int(exc.code or 1)
    except BrokenPipeError:
        raise  # the reader of our output left: main() exits quietly
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error (ref %s)", ref)
        print(f"dcs: internal error (ref {ref}); the log above has the details.", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """SIGTERM unwinds like Ctrl-C (a running build marks itself interrupted) instead of killing the process.

    Returns the handler it replaced (None when not on the main thread, where signals cannot be handled)."""

    def handler(signum: int, frame: object) -> None:
        raise StopRequested("SIGTERM", 128 + signum)

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _fail(exc: DcsError, wants_json: bool) -> int:
    if wants_json:
        payload: dict[str, Any] = {"error": exc.message, "type": type(exc).__name__}
        if isinstance(exc, InvalidInputs):
            payload["problems"] = [{"field": p.field, "reason": p.reason, "fix": p.fix} for p in exc.problems]
        print(json.dumps(payload, indent=2))
    else:
        print(f"dcs: {exc.message}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
