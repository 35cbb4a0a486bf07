"""The image as a whole: its size and layer count against a budget, and its init scripts run the way Databricks
runs them. Pure: the engine client runs `INIT_RUNNER` and hands its output here.

Init scripts baked into the image live in INIT_SCRIPT_DIR (every `init_scripts` entry of the catalog, added to
each launch as a `file:` init script); a launch may name more `file:` scripts inside the image. Databricks runs
each with bash, as root, one after the other, and a non-zero exit stops the cluster (INIT_SCRIPT_FAILURE), so
the doctor does the same in a throw-away container (entrypoint overridden, a timeout) and shows the failing
script's last output lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.checks import FAIL, PASS, WARN, Check
from bot.domain.image_content import INIT_SCRIPT_DIR  # where the catalog's init_scripts are baked
from bot.domain.inventory import human_size

TAIL_LINES = 20
# A constant POSIX sh fragment for the probe: the scripts baked into the image, one tab-separated line each.
INIT_PROBE = rf"""
if [ -d {INIT_SCRIPT_DIR} ]; then
  for f in {INIT_SCRIPT_DIR}/*; do [ -f "$f" ] && printf 'initscript\t%s\n' "$f"; done
fi
"""
# Run as `sh -c INIT_RUNNER dcs-init PATH...`: the paths are arguments, never script text.
INIT_RUNNER = rf"""
for f in "$@"; do
  printf 'dcs-init\tstart\t%s\n' "$f"
  if [ ! -f "$f" ]; then printf 'dcs-init\tend\tmissing\t%s\n' "$f"; exit 0; fi
  bash "$f" > /tmp/dcs-init.out 2>&1
  rc=$?
  tail -n {TAIL_LINES} /tmp/dcs-init.out | while IFS= read -r line; do printf 'dcs-init\tline\t%s\n' "$line"; done
  printf 'dcs-init\tend\t%s\t%s\n' "$rc" "$f"
  [ "$rc" -eq 0 ] || exit 0
done
printf 'dcs-init\tdone\n'
"""
# What Databricks sets for init scripts (a driver of an all-purpose cluster), so scripts that branch on it run.
INIT_ENV = {
    "DB_IS_DRIVER": "TRUE",
    "DB_IS_JOB_CLUSTER": "FALSE",
    "DB_CLUSTER_ID": "dcs-doctor",
    "DB_CLUSTER_NAME": "dcs-doctor",
}


def baked_scripts(probe_output: str) -> list[str]:
    return [line.split("\t", 1)[1] for line in probe_output.splitlines() if line.startswith("initscript\t")]


@dataclass
class InitRun:
    """What INIT_RUNNER printed (None output: it timed out)."""

    scripts: Sequence[str]
    output: str | None
    timeout: int = 0
    lines: list[str] = field(default_factory=list)


def init_scripts_check(run: InitRun | None) -> Check:
    if run is None or not run.scripts:
        return Check("init_scripts", PASS, f"no init scripts in {INIT_SCRIPT_DIR} or the launch")
    started: list[str] = []
    tail: list[str] = []
    ended: dict[str, str] = {}
    done = False
    for line in (run.output or "").splitlines():
        parts = line.split("\t")
        if parts[:2] == ["dcs-init", "start"] and len(parts) >= 3:
            started.append(parts[2])
            tail = []
        elif parts[:2] == ["dcs-init", "line"]:
            tail.append("\t".join(parts[2:]))
        elif parts[:2] == ["dcs-init", "end"] and len(parts) >= 4:
            ended[parts[3]] = parts[2]
        elif parts[:2] == ["dcs-init", "done"]:
            done = True
    fix = (
        "Fix the script (Databricks would stop the cluster with INIT_SCRIPT_FAILURE); run it with `bash` in the image."
    )
    shown = " | ".join(line.strip() for line in tail[-5:] if line.strip())
    if run.output is None:
        current = started[-1] if started else run.scripts[0]
        return Check("init_scripts", FAIL, f"{current} did not finish within {run.timeout} s", fix)
    for script in started:
        rc = ended.get(script)
        if rc == "missing":
            return Check(
                "init_scripts", FAIL, f"{script} is not a file in the image", "Point file: at a script the image has."
            )
        if rc != "0":
            why = f"exit code {rc}" if rc else "it was killed"
            return Check("init_scripts", FAIL, f"{script} failed ({why})" + (f": {shown}" if shown else ""), fix)
    if not done:
        return Check("init_scripts", FAIL, "the init scripts did not run to the end", fix)
    return Check("init_scripts", PASS, f"{len(started)} ran with bash as root: {', '.join(started)}")


def size_check(inspect: dict[str, Any], budget_mb: int) -> Check:
    size = inspect.get("Size")
    layers = len(((inspect.get("RootFS") or {}).get("Layers")) or [])
    if not isinstance(size, int):
        return Check("size", WARN, "the engine reported no size", "Check `docker image inspect` for the image.")
    text = f"{human_size(size)} in {layers} layers (budget {human_size(budget_mb * 1_000_000)})"
    if size <= budget_mb * 1_000_000:
        return Check("size", PASS, text)
    return Check(
        "size",
        WARN,
        f"{text}: every node pulls it at start, so clusters start slower and can time out",
        "Slim the image (fewer packages, no build tools), or start clusters from an instance pool with the image "
        "preloaded (preloaded_docker_images) so nodes skip the pull; raise doctor.size_budget_mb if it is needed.",
    )
