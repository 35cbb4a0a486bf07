"""`dcs --help` and each command import only what they need: the top-level table is honest, and the heavy
libraries stay out of the help (its speed against `python -c pass` is measured in bench/scale.py)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import bot.cli as cli
from bot.domain.catalog import image_from_dict
from bot.domain.clock import utcnow
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("bot.services", "bot.store", "sqlite_utils", "requests", "docker", "rich", "slack_sdk", "slack_bolt")
# What listing the catalog must not load: the HTTP, Docker, Databricks and Slack libraries, requirement
# parsing (stored entries were validated when written), our clients, the builder, the Slack glue and jobs.
NOT_FOR_A_LISTING = (
    "requests",
    "urllib3",
    "docker",
    "databricks",
    "slack_sdk",
    "slack_bolt",
    "rich",
    "packaging",
    "bot.clients",
    "bot.ops.build",
    "handlers",
    "jobs",
)


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


def test_image_list_loads_no_client_library_even_on_the_bots_host(tmp_path: Path) -> None:
    """`dcs image list` on the bot's machine (a Slack token in the environment) prints the catalog with each
    image's last build, and loads neither a client library nor the builder to do it."""
    db = str(tmp_path / "dcs.db")
    store = Store(db)
    for name in ("team-pandas", "team-polars"):
        spec = {"name": name, "base": "databricksruntime/standard:15.4-LTS", "repository": f"r.example/t/{name}"}
        store.add_image(image_from_dict({**spec, "pip": ["pandas==2.2.2"]}))
    build = store.create_build("team-pandas", requester="U1", source="cli")
    store.update_build(build.id, status="succeeded", finished_at=utcnow(), pushed_digest="sha256:" + "a" * 64)
    store.close()
    code = (
        "import json, sys\n"
        "import bot.cli\n"
        "status = bot.cli.main(['image', 'list'])\n"
        "print(json.dumps({'status': status, 'modules': sorted(sys.modules)}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "SLACK_", "DATABRICKS_", "DOCKER"))}
    env.update({"DCS_DB": db, "SLACK_BOT_TOKEN": "xoxb-test", "PYTHONPATH": str(ROOT)})
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stderr.strip().splitlines()[-1])
    assert result["status"] == 0
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "REPOSITORY", "LAST"]
    assert lines[1].split()[:4] == ["team-pandas", "r.example/t/team-pandas", f"#{build.id}", "succeeded"]
    assert lines[2].split()[:4] == ["team-polars", "r.example/t/team-polars", "never", "built"]
    loaded = set(result["modules"])
    assert sorted(m for m in loaded for h in NOT_FOR_A_LISTING if m == h or m.startswith(h + ".")) == []
