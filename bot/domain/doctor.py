"""DCS compatibility checks ("doctor"), pure part.

The engine client runs `PROBE_SCRIPT` once in a throw-away container (entrypoint overridden, network
off) and hands its output plus the image's inspect data to `evaluate()`. Requirements come from the
Databricks docs: bash, iproute2, coreutils, procps, sudo, (acl), a JDK on PATH, Ubuntu or Alpine,
linux/amd64, and /databricks/python3 for Python images; CMD and ENTRYPOINT are ignored by Databricks.
"""

from __future__ import annotations

from typing import Any

from bot.domain.bases import VENV_PYTHON, BaseInfo
from bot.domain.checks import FAIL, PASS, SKIP, WARN, Check, DoctorReport
from bot.domain.image_checks import INIT_PROBE, InitRun, init_scripts_check, size_check
from bot.domain.inventory import INVENTORY_PROBE
from bot.domain.parity import parity_checks
from bot.domain.python_checks import parse_python, python_checks
from bot.domain.runtime_env import ENV_PROBE, environment_checks

COREUTILS = ("ls", "cat", "cp", "mv", "rm", "mkdir", "chmod", "ln")

# A constant script (no user input ever reaches it), POSIX sh so it runs on dash, ash and bash.
_TOOLS_PROBE = r"""
# Look for files on PATH rather than `command -v`: a busybox shell answers for applets it has built in.
find_bin() {
  old_ifs=$IFS; IFS=:
  for d in $PATH; do
    if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then IFS=$old_ifs; echo "$d/$1"; return 0; fi
  done
  IFS=$old_ifs; return 1
}
for c in bash ip ps sudo setfacl java ls cat cp mv rm mkdir chmod ln apt-get apk; do
  printf 'bin.%s=%s\n' "$c" "$(find_bin "$c")"
done
printf 'gnu.ls=%s\n' "$(ls --version 2>/dev/null | head -n 1)"
printf 'gnu.ps=%s\n' "$(ps --version 2>/dev/null | head -n 1)"
printf 'java.version=%s\n' "$(java -version 2>&1 | head -n 1)"
if [ -x /databricks/python3/bin/python ]; then echo venv.python=yes; else echo venv.python=no; fi
if [ -r /etc/os-release ]; then sed -e 's/^/os./' /etc/os-release; fi
"""
# One container for everything: the tools, then the package inventory; `probe=done` proves it ran to the end.
PROBE_SCRIPT = _TOOLS_PROBE + ENV_PROBE + INIT_PROBE + INVENTORY_PROBE + "echo probe=done\n"


def parse_probe(output: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and not any(ch.isspace() for ch in key):
            # os-release quotes its values; other lines are verbatim (`java -version` ends in a quote)
            facts[key.strip()] = value.strip().strip('"') if key.startswith("os.") else value.strip()
    return facts


def _binary(facts: dict[str, str], name: str) -> str:
    return facts.get(f"bin.{name}", "")


def evaluate(
    image: str,
    probe_output: str | None,
    inspect: dict[str, Any],
    base: BaseInfo | None,
    requested: tuple[str, ...] = (),
    *,
    init: InitRun | None = None,
    size_budget_mb: int | None = None,
) -> DoctorReport:
    """Turn the probe's output and `docker image inspect` data into a pass/warn/fail table.

    `requested`: the distributions the catalog entry pip-installs (their import test is in the probe output);
    `init`: what running the image's init scripts printed; `size_budget_mb`: check the size against it.
    """
    checks: list[Check] = [_platform(inspect)]
    facts = parse_probe(probe_output or "")
    if facts.get("probe") != "done":
        checks.append(
            Check(
                "shell",
                FAIL,
                "the image could not run /bin/sh, so nothing else could be checked",
                "Databricks starts processes with bash: base the image on Ubuntu with bash installed.",
            )
        )
        checks.append(_entrypoint(inspect))
        return DoctorReport(image, tuple(checks))
    apk = _is_apk(facts)
    checks.append(_need(facts, "bash", "bash", apk))
    checks.append(_need(facts, "ip", "iproute2", apk))
    checks.append(_coreutils(facts, apk))
    checks.append(_procps(facts, apk))
    checks.append(_need(facts, "sudo", "sudo", apk))
    setfacl = _binary(facts, "setfacl")
    checks.append(
        Check("acl", PASS, setfacl)
        if setfacl
        else Check("acl", WARN, "setfacl not found (newer Databricks docs list acl)", install("acl", apk))
    )
    checks.append(_java(facts))
    checks.append(_python(facts, base))
    checks.append(_os(facts))
    checks.extend(parity_checks(facts, base))
    if facts.get("venv.python") == "yes":
        databricks_base = base is not None and base.is_databricks
        checks.extend(python_checks(parse_python(probe_output or ""), requested, databricks_base=databricks_base))
    checks.extend(environment_checks(facts, base, apk))
    if init is not None:
        checks.append(init_scripts_check(init))
    if size_budget_mb is not None:
        checks.append(size_check(inspect, size_budget_mb))
    checks.append(_entrypoint(inspect))
    return DoctorReport(image, tuple(checks))


def _is_apk(facts: dict[str, str]) -> bool:
    """Alpine (or anything with apk and no apt-get): fixes say `apk add`."""
    return facts.get("os.ID", "").lower() == "alpine" or (bool(_binary(facts, "apk")) and not _binary(facts, "apt-get"))


def install(package: str, apk: bool) -> str:
    return f"apk add {package}" if apk else f"apt-get install -y {package}"


def _need(facts: dict[str, str], binary: str, name: str, apk: bool) -> Check:
    path = _binary(facts, binary)
    if path:
        return Check(name, PASS, path)
    return Check(name, FAIL, f"`{binary}` not found on PATH", install(name, apk))


def _coreutils(facts: dict[str, str], apk: bool) -> Check:
    missing = [c for c in COREUTILS if not _binary(facts, c)]
    if missing:
        return Check("coreutils", FAIL, f"missing: {', '.join(missing)}", install("coreutils", apk))
    gnu = facts.get("gnu.ls", "")
    if "coreutils" in gnu:
        return Check("coreutils", PASS, gnu)
    return Check("coreutils", WARN, "present, but not GNU coreutils (busybox applets?)", install("coreutils", apk))


def _procps(facts: dict[str, str], apk: bool) -> Check:
    if not _binary(facts, "ps"):
        return Check("procps", FAIL, "`ps` not found on PATH", install("procps", apk))
    version = facts.get("gnu.ps", "")
    if "procps" in version:
        return Check("procps", PASS, version)
    return Check("procps", WARN, "`ps` present, but not from procps (busybox?)", install("procps", apk))


def _java(facts: dict[str, str]) -> Check:
    if not _binary(facts, "java"):
        return Check(
            "java",
            FAIL,
            "no `java` on PATH; Databricks needs a JDK in the container",
            "Install the JDK matching the runtime (Zulu/OpenJDK 8 up to DBR 15.4, 17 from 16.4).",
        )
    version = facts.get("java.version", "")
    return Check("java", PASS, version or _binary(facts, "java"))


def _python(facts: dict[str, str], base: BaseInfo | None) -> Check:
    has_venv = facts.get("venv.python") == "yes"
    if base is not None and base.python == "none":
        return Check("python", SKIP, "base has no Python (Scala/R only); notebooks need a Python image")
    if base is not None and base.python == "conda":
        return Check("python", SKIP, "conda base (DBR <= 8.x): Python lives in /databricks/conda")
    if has_venv:
        return Check("python", PASS, VENV_PYTHON)
    if base is not None and base.is_databricks:
        return Check("python", FAIL, f"{VENV_PYTHON} missing", "Keep the base's /databricks/python3 virtualenv.")
    return Check(
        "python",
        WARN,
        f"{VENV_PYTHON} missing: Python notebooks will not work",
        "Create a virtualenv at /databricks/python3 (see databricks/containers python Dockerfile).",
    )


def _os(facts: dict[str, str]) -> Check:
    os_id = facts.get("os.ID", "").lower()
    version = facts.get("os.VERSION_ID", "")
    pretty = facts.get("os.PRETTY_NAME", "") or f"{os_id} {version}".strip()
    if os_id == "ubuntu":
        return Check("os", PASS, pretty)
    if os_id == "alpine":
        return Check("os", PASS, f"{pretty} (Alpine needs GNU coreutils, procps, sudo and a hand-made venv)")
    if not os_id:
        return Check("os", FAIL, "no /etc/os-release", "Base the image on Ubuntu (recommended) or Alpine.")
    if os_id == "debian":
        return Check(
            "os",
            WARN,
            f"{pretty}: DCS supports Ubuntu and Alpine, and Databricks checks the OS when the cluster starts "
            "(a refused one ends with DOCKER_INVALID_OS_EXCEPTION), so running Debian is the team's informed choice",
            'Base the image on Ubuntu (recommended), or record the decision: doctor.waive = { os = "why" }.',
        )
    return Check("os", FAIL, f"{pretty} is not supported by DCS", "Base the image on Ubuntu (recommended) or Alpine.")


def _platform(inspect: dict[str, Any]) -> Check:
    os_name = inspect.get("Os") or "?"
    arch = inspect.get("Architecture") or "?"
    if os_name == "linux" and arch == "amd64":
        return Check("platform", PASS, "linux/amd64")
    return Check("platform", FAIL, f"{os_name}/{arch}", "Build for linux/amd64: Databricks runs only that platform.")


def _entrypoint(inspect: dict[str, Any]) -> Check:
    config = inspect.get("Config") or {}
    entrypoint, cmd = config.get("Entrypoint"), config.get("Cmd")
    if entrypoint or cmd:
        shown = " ".join(entrypoint or []) + (" " if entrypoint and cmd else "") + " ".join(cmd or [])
        return Check(
            "entrypoint",
            WARN,
            f"CMD/ENTRYPOINT set ({shown.strip()}); Databricks ignores them",
            "Move start-up work into an init script.",
        )
    return Check("entrypoint", PASS, "no CMD/ENTRYPOINT")
