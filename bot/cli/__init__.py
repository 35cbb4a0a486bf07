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
from importlib import import_module
from types import ModuleType
from typing import Any

from bot.cli.context import CliContext
from bot.config import Config, load_config, read_environment
from bot.domain.redact import RedactingFilter, Redactor
from bot.errors import DcsError, InvalidInputs, StopRequested

log = logging.getLogger("bot.cli")

# Feature modules; each adds its subcommands. Keep one per line (several engineers add theirs).
FEATURES: list[str] = [
    "bot.cli.images",
    "bot.cli.build",
    "bot.cli.rebuild",
    "bot.cli.launch",
    "bot.cli.fleet",
    "bot.cli.release",
    "bot.cli.completion",
]

# Every top-level command, its feature module and its one-line help: `dcs --help` is drawn from this table
# without importing a feature (their imports cost ten times Python's own start-up), and a command imports only
# its own module. tests/unit/test_cli_lazy.py checks that the table says what the modules register.
COMMANDS: dict[str, tuple[str, str]] = {
    "image": ("bot.cli.images", "add, update, list, show or remove image definitions"),
    "registry": ("bot.cli.images", "registries to push to (passwords are named, never stored)"),
    "catalog": ("bot.cli.images", "import or export the catalog as a TOML file"),
    "render": ("bot.cli.images", "print the Dockerfile an image definition produces"),
    "build": ("bot.cli.build", "build an image (then doctor, and push with --push)"),
    "doctor": ("bot.cli.build", "check a local image for DCS compatibility"),
    "digest": ("bot.cli.build", "the registry digest of an image, by a manifest HEAD (no pull)"),
    "status": ("bot.cli.build", "recent builds, or one build"),
    "log": ("bot.cli.build", "the stored log tail of a build"),
    "rebuild": ("bot.cli.rebuild", "rebuild images whose base moved (--due), or the named images now"),
    "ratelimit": ("bot.cli.rebuild", "the Docker Hub pull budget (read without spending a pull)"),
    "launch": ("bot.cli.launch", "launch a Databricks cluster on an image's pushed digest"),
    "launches": ("bot.cli.launch", "recent cluster launches"),
    "workspace": (
        "bot.cli.launch",
        "is Container Services (enableDcs) on, and can the bot switch it on? (every workspace by default)",
    ),
    "fleet": (
        "bot.cli.fleet",
        "what runs each image: clusters, jobs, instance pools, cluster policies, in every workspace",
    ),
    "rollout": (
        "bot.cli.fleet",
        "move every cluster, job and policy running an image to one digest (or roll a rollout back)",
    ),
    "promote": (
        "bot.cli.release",
        "move an image's moving tag to a pushed build (its candidate, or any earlier build)",
    ),
    "rollback": ("bot.cli.release", "move an image's moving tag back to the build promoted before the current one"),
    "diff": (
        "bot.cli.release",
        "what changed inside an image: OS and Python packages, versions, size (default promoted vs candidate)",
    ),
    "completion": ("bot.cli.completion", "print shell completion code (bash, zsh or fish)"),
}
_GLOBAL_FLAGS = ("-h", "--help", "--json", "-q", "--quiet", "--version")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `dcs` parser. With `argv`, only the feature module of the command it names is imported; the other
    commands are listed from COMMANDS (enough for `dcs --help` and for a mistyped command's suggestions)."""
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
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = FEATURES if argv is None else _modules_for(argv)
    for name in modules:
        _feature(name).register(sub, common)
    for command, (_, text) in COMMANDS.items():
        if command not in sub.choices:
            sub.add_parser(command, help=text, parents=[common])
    return parser


def _global_flags(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--json", action="store_true", default=default, help="machine-readable output")
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="only names, ids or digests; no progress"
    )


def _modules_for(argv: list[str]) -> list[str]:
    command = next((a for a in argv if not a.startswith("-")), None)
    entry = COMMANDS.get(command or "")
    if entry is not None:
        return [entry[0]]
    # a command the table does not know: every feature, so argparse answers with the whole truth
    return [] if command is None else FEATURES


def _feature(name: str) -> ModuleType:
    return import_module(name)


class _Version(argparse.Action):
    """`--version`, reading the installed metadata only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"dcs {_version()}")  # on stdout, as `--version` always was (and docker, gh, git do)
        parser.exit()


def _version() -> str:
    # Imported when asked on purpose: importlib.metadata costs as much as the rest of `dcs --help`.
    from importlib.metadata import PackageNotFoundError, version

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
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions: answer from the whole parser, then exit
        import argcomplete

        argcomplete.autocomplete(build_parser())
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
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
