"""The README documents every CLI command and every configuration variable (fails when one is added silently)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import VARIABLES

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "dcs") -> list[str]:
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = _commands(sub, f"{prefix} {name}")
                found.extend(nested or [f"{prefix} {name}"])
    return found


@pytest.mark.parametrize("command", _commands(build_parser()))
def test_every_cli_command_is_in_the_readme(command: str) -> None:
    assert f"`{command}" in README or f"{command} " in README, f"{command} is not documented in README.md"


@pytest.mark.parametrize("variable", sorted(VARIABLES))
def test_every_variable_is_in_the_readme(variable: str) -> None:
    assert f"`{variable}`" in README, f"{variable} is missing from the README configuration table"
