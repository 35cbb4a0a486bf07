"""`dcs`: the command-line interface. Human output by default, `--json` for pipelines.

Exit codes (the README lists them all): 0 success (or nothing to do), 2 invalid input, 4 not found,
5 already exists, 10-13 build/doctor failures, 14 not allowed, 20-25 registry problems, 40-47 Databricks
and launches, 69 engine unavailable, 78 configuration, 1 anything unexpected.
Each feature lives in its own module with `register(subparsers, common)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import Config, load_config, read_environment
from bot.errors import DcsError, InvalidInputs

log = logging.getLogger("bot.cli")

# Feature modules; each adds its subcommands. Keep one per line (several engineers add theirs).
FEATURES = [
    "bot.cli.images",
    "bot.cli.build",
    "bot.cli.rebuild",
    "bot.cli.launch",
]


@dataclass
class CliContext:
    """What a subcommand gets: parsed args, config, lazily built services, output helpers."""

    args: argparse.Namespace
    config: Config
    _services: Any = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def services(self):  # noqa: ANN201 - bot.services.Services, imported lazily
        if self._services is None:
            from bot.services import Services

            self._services = Services.from_config(self.config)
        return self._services

    def console(self, stderr: bool = False):  # noqa: ANN201 - rich Console
        from rich.console import Console

        return Console(stderr=stderr, highlight=False, soft_wrap=True)

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """Print `data` as JSON with --json, otherwise call `human` to draw it."""
        if self.json:
            print(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            human()


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="dcs",
        description="Build, check and push Databricks Container Services images; launch clusters on them.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"dcs {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    import importlib

    for module in FEATURES:
        importlib.import_module(module).register(sub, common)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dcs-bot")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "dev"


def setup_logging(config: Config) -> None:
    from bot.redact import RedactingFilter, Redactor

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(Redactor(config.secret_values())))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # The CLI talks to people: only warnings and errors from libraries unless asked for more.
    root.setLevel(config.log_level if config.log_level == "DEBUG" else "WARNING")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    wants_json = bool(getattr(args, "json", False))
    try:
        config = load_config(read_environment(os.environ))
    except DcsError as exc:
        return _fail(exc, wants_json)
    setup_logging(config)
    ctx = CliContext(args=args, config=config)
    try:
        code = args.handler(ctx)
        return int(code or 0)
    except DcsError as exc:
        return _fail(exc, wants_json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error (ref %s)", ref)
        print(f"dcs: internal error (ref {ref}); the log above has the details.", file=sys.stderr)
        return 1


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
