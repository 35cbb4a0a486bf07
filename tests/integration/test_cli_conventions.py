"""The `dcs` CLI behaves like the CLIs people know (docker, gh): tried through a pseudo-terminal and through pipes.

Global `--json` before or after the command, a reader that leaves (`| head -3`) ends it quietly, plain tables
that fit 60 or 120 columns and keep names apart, full values in a pipe, relative times for people and ISO in
JSON, `-q`, NO_COLOR, shell completion, `--version`, and read-only commands that never create a database.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.catalog import image_from_dict
from bot.store import Store
from tests.support.cli import dcs_command

DIGEST = "sha256:" + "5e" * 32
PREFIX = "127.0.0.1:5000/dcs-tests/data-platform-team"
BOX = set("─│┃┏┓┗┛━┡┩╇┼┌┐└┘")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A catalog whose repositories share a long prefix, one image built an hour ago."""
    path = tmp_path / "dcs.db"
    store = Store(str(path))
    for name in ("team-pandas", "team-polars"):
        store.add_image(
            image_from_dict(
                {
                    "name": name,
                    "base": "databricksruntime/standard:15.4-LTS",
                    "repository": f"{PREFIX}/{name}",
                    "pip": ["pandas==2.2.2", "pyarrow==16.1.0"],
                    "schedule": "0 3 * * 1",
                }
            )
        )
    build = store.create_build("team-pandas", requester="cli", source="cli", push=True)
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.update_build(
        build.id, status="succeeded", started_at=hour_ago, finished_at=hour_ago, pushed_digest=DIGEST, tags=["latest"]
    )
    return path


def env_for(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "SLACK_", "NO_COLOR", "COLUMNS"))}
    return {**env, "DCS_DB": str(db), **extra}


def run(args: list[str], db: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*dcs_command(), *args], env=env_for(db, **extra), capture_output=True, text=True, timeout=60, check=False
    )


def run_in_terminal(args: list[str], db: Path, columns: int, **extra: str) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal of `columns` columns; returns (exit code, output)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [*dcs_command(), *args], env=env_for(db, TERM="xterm-256color", **extra), stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = process.wait(timeout=30)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


def test_global_json_works_before_and_after_the_command(db: Path) -> None:
    before, after = run(["--json", "image", "list"], db), run(["image", "list", "--json"], db)
    assert before.returncode == after.returncode == 0, before.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert [r["name"] for r in json.loads(before.stdout)] == ["team-pandas", "team-polars"]
    assert json.loads(run(["--json", "status"], db).stdout)[0]["finished_at"].endswith("Z")  # ISO for machines


def test_a_reader_that_leaves_ends_the_command_quietly(tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    store = Store(str(db))
    for i in range(600):  # ~150 KB of JSON: more than a pipe holds, so the write outlives `head`
        store.add_image(image_from_dict({"name": f"img-{i:03d}", "base": "busybox:1.36", "repository": f"r/t/i{i}"}))
    line = " ".join([*dcs_command(), "image", "list", "--json"])
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {line} | head -3"],
        env=env_for(db),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.count("\n") == 3
    assert result.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"
    assert result.returncode == 141  # 128 + SIGPIPE, as docker, gh and git end in a pipe


@pytest.mark.parametrize("columns", [60, 120])
def test_tables_fit_the_terminal_and_keep_names_apart(db: Path, columns: int) -> None:
    code, out = run_in_terminal(["image", "list"], db, columns, NO_COLOR="1")
    assert code == 0, out
    lines = out.strip("\n").splitlines()
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    assert not BOX & set(out)  # plain, no box drawing
    pandas, polars = (next(line for line in lines if line.startswith(n)) for n in ("team-pandas ", "team-polars "))
    assert "#1 succeeded 1 h ago" in pandas and "never built" in polars  # relative times for people
    assert not ISO.search(out)
    if columns == 120:
        assert "sha256:5e5e5e5e5e5e…" in pandas and "REPOSITORY" in lines[0]
        # A cut repository keeps its end: the part that tells team-pandas from team-polars.
        assert "team-pandas" in pandas.split("  ", 1)[1] and "team-polars" in polars.split("  ", 1)[1]


def test_a_pipe_gets_full_values_without_box_drawing_or_escapes(db: Path) -> None:
    out = run(["image", "list"], db).stdout
    assert f"{PREFIX}/team-pandas" in out and f"{PREFIX}/team-polars" in out
    assert not BOX & set(out) and "\x1b" not in out
    assert out.splitlines()[0].split() == ["IMAGE", "REPOSITORY", "LAST", "BUILD", "DIGEST", "BASE", "SCHEDULE"]


def test_image_show_and_status_read_like_text_not_python(db: Path) -> None:
    show = run(["image", "show", "team-pandas"], db).stdout
    assert "pandas==2.2.2, pyarrow==16.1.0" in show
    assert "['" not in show and "None" not in show and "{'" not in show
    status = run(["status", "1"], db).stdout
    assert "1 h ago" in status and "None" not in status and "['" not in status
    assert not ISO.search(status) and not ISO.search(run(["status"], db).stdout)


def test_quiet_prints_only_names_and_ids(db: Path) -> None:
    assert run(["-q", "image", "list"], db).stdout == "team-pandas\nteam-polars\n"
    assert run(["status", "-q"], db).stdout == "1\n"


def test_colours_only_on_a_terminal_and_never_with_no_color(db: Path) -> None:
    _, styled = run_in_terminal(["image", "show", "team-pandas"], db, 100)
    assert "\x1b[" in styled  # a real terminal gets styles
    _, plain = run_in_terminal(["image", "show", "team-pandas"], db, 100, NO_COLOR="1")
    assert "\x1b" not in plain and "team-pandas" in plain
    assert "\x1b" not in run(["image", "show", "team-pandas"], db).stdout  # a pipe: plain text


def test_shell_completion_for_bash_zsh_and_fish(db: Path, tmp_path: Path) -> None:
    for shell, marker in (("bash", "complete"), ("zsh", "compdef"), ("fish", "complete")):
        code = run(["completion", shell], db)
        assert code.returncode == 0 and marker in code.stdout and "dcs" in code.stdout
    answer = tmp_path / "completions"
    subprocess.run(
        dcs_command(),
        env=env_for(
            db, _ARGCOMPLETE="1", COMP_LINE="dcs ima", COMP_POINT="7", _ARGCOMPLETE_STDOUT_FILENAME=str(answer)
        ),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert answer.read_text().replace("\x0b", " ").split() == ["image"]


def test_versions() -> None:
    bot = subprocess.run(
        [str(Path(sys.executable).with_name("dcs-bot")), "--version"], capture_output=True, text=True, check=False
    )
    cli = subprocess.run([*dcs_command(), "--version"], capture_output=True, text=True, check=False)
    assert bot.returncode == cli.returncode == 0
    assert bot.stdout.startswith("dcs-bot ") and cli.stdout.startswith("dcs ")


@pytest.mark.parametrize("command", [["image", "list"], ["status"], ["registry", "list"], ["image", "show", "x"]])
def test_read_only_commands_never_create_a_database(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "elsewhere" / "dcs.db"
    missing.parent.mkdir()
    result = run(command, missing)
    assert result.returncode == 4
    assert f"No dcs database at {missing}" in result.stderr and "DCS_DB" in result.stderr
    assert list(missing.parent.iterdir()) == []  # nothing was created


def test_the_quick_start_wrapper_runs_the_cli_from_its_venv(tmp_path: Path) -> None:
    """scripts/dcs (README quick start): uses the venv it made, reinstalls only when pyproject.toml changed."""
    root = Path(__file__).parents[2]
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "dcs").symlink_to(Path(dcs_command()[0]) if len(dcs_command()) == 1 else sys.executable)
    digest = subprocess.run(
        ["sha256sum", str(root / "pyproject.toml")], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    (venv / ".dcs-installed").write_text(digest + "\n")
    result = subprocess.run(
        [str(root / "scripts" / "dcs"), "--version"],
        env={**os.environ, "DCS_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("dcs "), result.stderr
    assert "installing" not in result.stderr  # nothing changed: no pip run
