"""`dcs --help` and each command import only what they need: the top-level table is honest, and the heavy
libraries stay out of the help (its speed against `python -c pass` is measured in bench/scale.py)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import bot.cli as cli

HEAVY = ("bot.services", "bot.store", "sqlite_utils", "requests", "docker", "rich", "slack_sdk", "slack_bolt")


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_command_table_says_what_the_feature_modules_register() -> None:
    full = _subparsers(cli.build_parser())
    helps = {a.dest: a.help for a in full._choices_actions}
    assert list(full.choices) == list(cli.COMMANDS)  # same commands, same order
    for command, (module, text) in cli.COMMANDS.items():
        assert helps[command] == text, command
        alone = _subparsers(cli.build_parser([command]))
        assert alone.choices[command]._subparsers is not None or alone.choices[command]._defaults, command
        assert module in cli.FEATURES


def loaded_after(*argv: str) -> set[str]:
    code = (
        "import json, sys\n"
        "import bot.cli\n"
        "try:\n"
        f"    bot.cli.main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_and_version_import_no_feature_and_no_heavy_library() -> None:
    for argv in (("--help",), ("--version",), ()):
        loaded = loaded_after(*argv)
        assert not {m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")}, argv
        assert not set(cli.FEATURES) & loaded, argv


def test_a_command_imports_its_own_feature_only() -> None:
    loaded = loaded_after("image", "--help")
    assert "bot.cli.images" in loaded
    assert not (set(cli.FEATURES) - {"bot.cli.images"}) & loaded
