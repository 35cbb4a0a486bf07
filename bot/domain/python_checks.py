"""What notebooks need from the runtime Python, checked inside the doctor's probe container. Pure.

`PYTHON_PROBE` runs once in /databricks/python3/bin/python (started by the probe shell script): it lists the
distributions (the package inventory), checks every distribution's requirements against what is installed
(what `pip check` does, from importlib.metadata in the same process: 0.50 s instead of 1.43 s for pip's own
over 127 packages), and imports the top-level modules of the distributions named in DCS_DOCTOR_IMPORTS
(the catalog entry's pip requirements; an environment variable of the probe container, never script text).
Its output is tab-separated lines; `python_checks()` turns them into doctor rows.

What notebooks need, from databricks/containers: `ubuntu/python` installs ipython and ipykernel (the REPL) and
sets PYSPARK_PYTHON=/databricks/python3/bin/python3; `ubuntu/gpu/cuda-11.8/venv` (its shortest list for
notebooks) adds jedi, numpy, pandas, pyarrow, matplotlib, protobuf, grpcio, grpcio-status, databricks-sdk;
`ubuntu/minimal` sets LANG/LC_ALL=C.UTF-8; `ubuntu/dbfsfuse` (under standard) installs fuse for /dbfs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.domain.checks import FAIL, PASS, SKIP, WARN, Check

REPL_PACKAGES = ("ipython", "ipykernel")  # without them a Python notebook cannot start
NOTEBOOK_PACKAGES = (
    "jedi",
    "numpy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "protobuf",
    "grpcio",
    "grpcio-status",
    "databricks-sdk",
)
IMPORTS_ENV = "DCS_DOCTOR_IMPORTS"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")

# Python >= 3.8, standard library only (plus packaging, or pip's vendored copy, for the requirement check).
PYTHON_PROBE = r"""
import importlib, importlib.metadata as md, os, re, sys

def emit(*parts):
    print("\t".join(str(p).replace("\t", " ").replace("\n", " ") for p in parts), flush=True)

def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()

seen = {}
for dist in md.distributions():
    name = dist.metadata["Name"] or ""
    if name and canon(name) not in seen:
        seen[canon(name)] = dist
        emit("inv", "py", name, dist.version)
emit("py", "encoding", sys.getfilesystemencoding(), sys.stdout.encoding or "")

try:
    from packaging.requirements import Requirement
except ImportError:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except ImportError:
        Requirement = None
if Requirement is None:
    emit("deps", "skip", "neither packaging nor pip is installed in this Python")
else:
    for key in sorted(seen):
        dist = seen[key]
        for raw in dist.requires or ():
            try:
                req = Requirement(raw)
                if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                    continue
            except Exception:
                continue
            found = seen.get(canon(req.name))
            if found is None:
                emit("deps", "missing", dist.metadata["Name"], dist.version, raw)
            elif req.specifier and not req.specifier.contains(found.version, prereleases=True):
                emit("deps", "conflict", dist.metadata["Name"], dist.version, raw, found.version)
    emit("deps", "done")

def modules(dist):
    text = dist.read_text("top_level.txt")
    names = [n.strip() for n in (text or "").splitlines() if n.strip()]
    if not names:
        for path in dist.files or ():
            parts = path.parts
            if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith((".dist-info", ".egg-info")):
                continue
            if len(parts) == 1 and parts[0].endswith(".py"):
                names.append(parts[0][:-3])
            elif len(parts) > 1 and parts[1] == "__init__.py":
                names.append(parts[0])
    return sorted({n for n in names if n.isidentifier() and not n.startswith("_")})[:8]

os.environ.setdefault("MPLBACKEND", "Agg")
for name in filter(None, os.environ.get("DCS_DOCTOR_IMPORTS", "").split(",")):
    dist = seen.get(canon(name))
    if dist is None:
        emit("import", "absent", name)
        continue
    found = modules(dist)
    if not found:
        emit("import", "nomodule", name)
    for module in found:
        emit("import", "start", name, module)
        try:
            importlib.import_module(module)
            emit("import", "ok", name, module)
        except BaseException as exc:
            emit("import", "fail", name, module, "%s: %s" % (type(exc).__name__, str(exc)[:300]))
emit("import", "done")
"""


@dataclass
class PythonFacts:
    ran: bool = False  # the script printed anything at all
    packages: dict[str, str] = field(default_factory=dict)  # canonical name -> version
    encoding: str = ""
    deps_done: bool = False
    deps_skipped: str = ""
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # (dist, version, requirement)
    conflicts: list[tuple[str, str, str, str]] = field(default_factory=list)  # (+ installed version)
    imports_done: bool = False
    imports_started: list[tuple[str, str]] = field(default_factory=list)
    imports_ok: list[tuple[str, str]] = field(default_factory=list)
    import_failures: list[tuple[str, str, str]] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    no_module: list[str] = field(default_factory=list)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imports_value(distributions: Iterable[str]) -> str:
    """The DCS_DOCTOR_IMPORTS value: validated distribution names, comma-separated (never a shell word)."""
    names = sorted({canonical(n) for n in distributions if _NAME.match(n)})
    return ",".join(names)


def parse_python(output: str) -> PythonFacts:
    facts = PythonFacts()
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or parts[0] not in ("inv", "py", "deps", "import"):
            continue
        kind, what, rest = parts[0], parts[1], parts[2:]
        facts.ran = True
        if kind == "inv" and what == "py" and len(rest) >= 2:
            facts.packages.setdefault(canonical(rest[0]), rest[1])
        elif kind == "py" and what == "encoding" and rest:
            facts.encoding = rest[0]
        elif kind == "deps":
            if what == "done":
                facts.deps_done = True
            elif what == "skip":
                facts.deps_skipped = rest[0] if rest else "skipped"
            elif what == "missing" and len(rest) >= 3:
                facts.missing.append((rest[0], rest[1], rest[2]))
            elif what == "conflict" and len(rest) >= 4:
                facts.conflicts.append((rest[0], rest[1], rest[2], rest[3]))
        elif kind == "import":
            if what == "done":
                facts.imports_done = True
            elif what == "start" and len(rest) >= 2:
                facts.imports_started.append((rest[0], rest[1]))
            elif what == "ok" and len(rest) >= 2:
                facts.imports_ok.append((rest[0], rest[1]))
            elif what == "fail" and len(rest) >= 3:
                facts.import_failures.append((rest[0], rest[1], rest[2]))
            elif what == "absent" and rest:
                facts.absent.append(rest[0])
            elif what == "nomodule" and rest:
                facts.no_module.append(rest[0])
    return facts


def python_checks(facts: PythonFacts, requested: Iterable[str], *, databricks_base: bool = True) -> list[Check]:
    """Notebook packages, dependency consistency and the import smoke test of `requested` distributions.

    A Databricks base without the REPL packages is broken (fail); an own base may be meant for Python jobs
    only, so there it is a warning."""
    if not facts.ran:
        return [
            Check(
                "notebook",
                WARN,
                "/databricks/python3/bin/python ran no check script (not a working CPython?): notebook "
                "packages, dependencies and imports were not checked",
                "Make /databricks/python3 a CPython virtualenv (see databricks/containers ubuntu/python).",
            )
        ]
    return [_notebook(facts, databricks_base), _dependencies(facts), _imports(facts, list(requested))]


def _notebook(facts: PythonFacts, databricks_base: bool) -> Check:
    missing = [p for p in REPL_PACKAGES if p not in facts.packages]
    if missing:
        jobs = "" if databricks_base else " (Python jobs still run)"
        return Check(
            "notebook",
            FAIL if databricks_base else WARN,
            f"{', '.join(missing)} not installed in /databricks/python3: Python notebooks cannot start their REPL"
            + jobs,
            f"Add {' '.join(missing)} to pip (databricksruntime/python installs them), or keep the base's.",
        )
    others = [p for p in NOTEBOOK_PACKAGES if p not in facts.packages]
    shown = ", ".join(f"{p} {facts.packages[p]}" for p in REPL_PACKAGES)
    if others:
        return Check(
            "notebook",
            WARN,
            f"{shown}; missing what Databricks' images also install for notebooks: {', '.join(others)}",
            f"Add {' '.join(others)} to pip unless you know no notebook needs them.",
        )
    return Check("notebook", PASS, shown)


def _dependencies(facts: PythonFacts) -> Check:
    if facts.deps_skipped:
        return Check("dependencies", SKIP, facts.deps_skipped)
    if not facts.deps_done:
        return Check(
            "dependencies",
            FAIL,
            "the dependency check did not finish (the runtime Python crashed?)",
            "Run `/databricks/python3/bin/pip check` in the image to see why.",
        )
    problems = [f"{d} {v} requires {r}, which is not installed" for d, v, r in facts.missing]
    problems += [f"{d} {v} requires {r}, but {installed} is installed" for d, v, r, installed in facts.conflicts]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        return Check(
            "dependencies",
            FAIL,
            shown,
            "Pin compatible versions in pip (or add the missing ones); `pip check` in the image lists the same.",
        )
    return Check("dependencies", PASS, f"{len(facts.packages)} distributions, every requirement satisfied")


def _imports(facts: PythonFacts, requested: list[str]) -> Check:
    if not requested:
        return Check("imports", SKIP, "the entry has no pip requirements to import")
    problems = [f"{d} ({m}): {why}" for d, m, why in facts.import_failures]
    problems += [f"{d}: not installed in /databricks/python3" for d in facts.absent]
    done = set(facts.imports_ok) | {(d, m) for d, m, _ in facts.import_failures}
    crashed = [f"{d} ({m}): the interpreter died importing it" for d, m in facts.imports_started if (d, m) not in done]
    problems += crashed
    if problems or not facts.imports_done and not crashed:
        return Check(
            "imports",
            FAIL,
            "; ".join(problems[:5]) or "the import test did not finish",
            "Fix the failing package (a missing system library? a wheel for another Python?): try "
            "`/databricks/python3/bin/python -c 'import MODULE'` in the image.",
        )
    modules = sorted({m for _, m in facts.imports_ok})
    extra = f" ({', '.join(facts.no_module)}: no module to import)" if facts.no_module else ""
    return Check("imports", PASS, f"imported {', '.join(modules)}{extra}")
