"""What import-linter cannot see: SQL outside the store, import circles, function-level imports.

The layering contracts themselves are in pyproject.toml (`lint-imports`, run by ./scripts/test); these read
the source with `ast`, so they cover imports inside functions too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "jobs")
SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|WITH|REPLACE|DROP|ALTER)\s")
# Deliberate lazy loading of a heavy optional dependency (each says why in a comment next to the import).
LAZY_ON_PURPOSE = {
    ("bot.services", "bot.clients.engines"),  # the docker SDK's import time, for commands that never build
    ("bot.services", "bot.clients.registry"),  # requests, which `dcs image list` and other catalog reads
    ("bot.services", "bot.clients.dockerhub"),  # never need (nor the Databricks client module)
    ("bot.services", "bot.clients.databricks"),
    ("bot.cli.images", "bot.ops.render"),  # `dcs render` alone needs the build plan and the builder
    ("bot.cli.context", "bot.compose"),  # slack_bolt/slack_sdk, which --help and parse errors do not need
    ("bot.compose", "bot.clients.slack"),  # the Slack notifier is made at its first report
    ("bot.compose", "handlers.notifier"),  # (a read-only CLI command never loads slack_bolt)
    ("bot.compose", "jobs.clusters"),  # only a running bot follows launches
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def resolve(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """(our module imported, inside a function?) for every runtime import (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for sub in ast.walk(node)
    }
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if id(child) not in skipped:
                names: list[str] = []
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                    names = [f"{child.module}.{a.name}" for a in child.names]
                for name in names:
                    if name.split(".")[0] in PACKAGES and (target := resolve(name)):
                        found.append((target, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


GRAPH = {name: {t for t, _ in imports_of(path) if t != name} for name, path in MODULES.items()}


def sql_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    found = []
    for node in ast.walk(tree):
        if id(node) in inner:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        else:
            continue
        if SQL.match(text):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text.strip()[:60]}")
    return found


def test_the_modules_are_found() -> None:
    assert {"bot.store", "bot.ops.build", "handlers.commands", "jobs.scheduler"} <= set(MODULES)


def test_all_sql_lives_in_the_store() -> None:
    outside = [hit for name, path in MODULES.items() if not name.startswith("bot.store") for hit in sql_literals(path)]
    assert outside == []


def test_the_check_for_sql_would_see_a_query() -> None:
    # The scan above must not pass by looking at nothing: the store's own SQL is found.
    assert any("SELECT" in hit for hit in sql_literals(MODULES["bot.store.builds"]))


def test_jobs_never_import_the_slack_surfaces() -> None:
    offenders = sorted(
        f"{m} -> {t}" for m in MODULES if m.startswith("jobs") for t in GRAPH[m] if t.startswith("handlers")
    )
    assert offenders == []


def test_no_import_circles_anywhere() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def strong(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                strong(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in GRAPH:
        if node not in index:
            strong(node)
    assert circles == []


def test_no_function_level_imports_of_our_own_modules() -> None:
    found = {
        (name, target)
        for name, path in MODULES.items()
        for target, in_function in imports_of(path)
        if in_function and target != name
    }
    assert found - LAZY_ON_PURPOSE == set()


@pytest.mark.parametrize(("source", "target"), sorted(LAZY_ON_PURPOSE))
def test_each_lazy_import_says_why(source: str, target: str) -> None:
    text = MODULES[source].read_text()
    before = text[: text.rindex(f"from {target} import")].rstrip().splitlines()
    comment: list[str] = []
    while before and before[-1].strip().startswith("#"):
        comment.insert(0, before.pop().strip())
    assert "on purpose" in " ".join(comment), f"{source}: say why {target} is imported lazily"
