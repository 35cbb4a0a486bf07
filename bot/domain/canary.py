"""The canary's smoke command, pure: what runs on a canary cluster through the command execution API.

For an image with the runtime Python: import every pip requirement of the catalog entry (by the distribution's
own top-level modules, as installed, so `scikit-learn` imports `sklearn`), then the entry's `canary_snippet`.
Without Python (minimal, rbase): only the snippet, in its language (R or Scala), or nothing: RUNNING with the
init scripts passed is then the canary. Requirement names reach the code as a JSON literal only (the catalog
validated them as PEP 508 names); the snippet is the catalog author's code, run on the bot's own cluster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.domain.catalog import ImageSpec
from bot.domain.packages import pip_name

CANARY_TAG = "dcs_canary"  # custom tag on canary clusters: the build id they test
OK_MARKER = "dcs canary ok"

_IMPORT_ALL = """import importlib, importlib.metadata as _md
_failed, _done = [], []
def _modules(dist):
    d = _md.distribution(dist)
    top = d.read_text("top_level.txt")
    names = [n for n in (top or "").split() if n and not n.startswith("_")]
    if not names:
        for f in d.files or []:
            first = str(f).split("/")[0]
            if first.endswith((".dist-info", ".data", ".egg-info")) or first in ("..", "__pycache__", "bin"):
                continue
            first = first[:-3] if first.endswith(".py") else first
            if first.isidentifier() and not first.startswith("_") and first not in names:
                names.append(first)
    return names or [dist.replace("-", "_")]
for _dist in {requirements}:
    try:
        for _m in _modules(_dist):
            importlib.import_module(_m)
            _done.append(_m)
    except Exception as _e:
        _failed.append("%s: %s: %s" % (_dist, type(_e).__name__, _e))
if _failed:
    raise ImportError("could not import " + "; ".join(_failed))
print("{marker}: imported " + (", ".join(_done) or "nothing (no pip requirements)"))
"""


@dataclass(frozen=True)
class SmokeCommand:
    language: str  # python, r, scala (the command execution API's Language values)
    command: str


def smoke_commands(spec: ImageSpec) -> list[SmokeCommand]:
    """The commands a canary runs, in order; empty: the cluster reaching RUNNING is the whole canary."""
    policy = spec.release
    commands = []
    python_snippet = policy.canary_snippet if policy.canary_language == "python" else ""
    if spec.base_info.python != "none":
        names = sorted({pip_name(r) for r in spec.pip if r})
        code = _IMPORT_ALL.replace("{requirements}", json.dumps(names)).replace("{marker}", OK_MARKER)
        if python_snippet:
            code += "\n# the catalog's canary_snippet\n" + python_snippet + "\n"
        commands.append(SmokeCommand("python", code))
    elif python_snippet:
        commands.append(SmokeCommand("python", python_snippet))
    if policy.canary_snippet and policy.canary_language != "python":
        commands.append(SmokeCommand(policy.canary_language, policy.canary_snippet))
    return commands
