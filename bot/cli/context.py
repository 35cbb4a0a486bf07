"""What a `dcs` subcommand gets: parsed args, config, lazily built services, output helpers."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.config import Config

if TYPE_CHECKING:  # the services and rich are imported when a command uses them, not for `dcs --help`
    from rich.console import Console

    from bot.services import Services


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
    def services(self) -> Services:
        if self._services is None:
            # Imported on first use on purpose: the composition root brings the Slack delivery (slack_sdk,
            # slack_bolt), which `--help`, parse errors and configuration errors should not pay for.
            from bot.compose import build_services

            self._services = build_services(self.config)
        return self._services

    def console(self, stderr: bool = False) -> Console:
        # Imported on first use on purpose: rich's import time is paid only by commands that draw with it.
        from rich.console import Console

        return Console(stderr=stderr, highlight=False, soft_wrap=True)

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """Print `data` as JSON with --json, otherwise call `human` to draw it."""
        if self.json:
            print(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            human()
