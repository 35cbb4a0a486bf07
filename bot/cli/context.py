"""What a `dcs` subcommand gets: parsed args, config, lazily built services, output helpers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import Config
from bot.domain.clock import ago
from bot.errors import NotFound

if TYPE_CHECKING:  # the services and rich are imported when a command uses them, not for `dcs --help`
    from rich.console import Console

    from bot.services import Services

Handler = TypeVar("Handler", bound=Callable[..., Any])


def read_only(handler: Handler) -> Handler:
    """Marks a command that only reads: it refuses to run on a database that does not exist (opening one
    would create an empty dcs.db wherever the command happens to run, and then report an empty catalog)."""
    handler.read_only = True  # type: ignore[attr-defined]
    return handler


def database_path(config: Config) -> Path:
    return Path(config.db_path).expanduser().resolve()


@dataclass
class CliContext:
    """What a subcommand gets: parsed args, config, lazily built services, output helpers."""

    args: argparse.Namespace
    config: Config
    _services: Services | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def quiet(self) -> bool:
        """`-q`: only the essentials (names, ids, a digest), nothing else; for scripts and `xargs`."""
        return bool(getattr(self.args, "quiet", False))

    @property
    def services(self) -> Services:
        if self._services is None:
            handler = getattr(self.args, "handler", None)
            if getattr(handler, "read_only", False) and not database_path(self.config).exists():
                raise NotFound(
                    f"No dcs database at {database_path(self.config)} (DCS_DB, default ./dcs.db in the current "
                    "directory). Run this where the bot's dcs.db is, or set DCS_DB=/path/to/dcs.db; "
                    "`dcs image add` or `dcs catalog import` creates a new one."
                )
            # Imported on first use on purpose: the composition root brings the Slack delivery (slack_sdk,
            # slack_bolt), which `--help`, parse errors and configuration errors should not pay for.
            from bot.compose import build_services

            self._services = build_services(self.config)
        return self._services

    @property
    def database(self) -> str:
        return str(database_path(self.config))

    def console(self, stderr: bool = False) -> Console:
        """Styles only on a real terminal (rich's own check) and never with NO_COLOR set (https://no-color.org:
        no colour, no bold either); a pipe or a file gets plain text."""
        # Imported on first use on purpose: rich's import time is paid only by commands that draw with it.
        from rich.console import Console

        plain = bool(os.environ.get("NO_COLOR"))
        return Console(stderr=stderr, highlight=False, soft_wrap=True, color_system=None if plain else "auto")

    @property
    def width(self) -> int | None:
        """Columns to fit tables in on a terminal; None in a pipe (full values for scripts)."""
        if not sys.stdout.isatty():
            columns = os.environ.get("COLUMNS", "")
            return int(columns) if columns.isdigit() and int(columns) > 0 else None
        return shutil.get_terminal_size((100, 24)).columns

    def when(self, stamp: str | None) -> str:
        """A stored time for people ("3 min ago"); --json keeps the ISO stamp."""
        return ago(stamp, datetime.now(UTC)) if stamp else "–"

    def emit(self, data: Any, human: Callable[[], None], quiet: Callable[[], None] | None = None) -> None:
        """Print `data` as JSON with --json, the essentials with -q (when the command has them), else `human`."""
        if self.json:
            print(json.dumps(data, indent=2, sort_keys=True, default=str))
        elif self.quiet and quiet is not None:
            quiet()
        else:
            human()
