"""The container environment Databricks' own images set up, checked from the probe's facts. Pure.

From databricks/containers: `ubuntu/minimal` sets LANG/LC_ALL=C.UTF-8 and adds a locked `libraries` user;
`ubuntu/python` sets PYSPARK_PYTHON=/databricks/python3/bin/python3; the GPU images start FROM nvidia/cuda
(CUDA_VERSION, /usr/local/cuda); `ubuntu/dbfsfuse` (the base of `standard`) installs fuse, without which /dbfs
is not mounted in the container. Databricks runs its set-up with sudo, so `sudo -n true` must work for the
container's default user.
"""

from __future__ import annotations

from bot.domain.bases import BaseInfo
from bot.domain.checks import FAIL, PASS, SKIP, WARN, Check

# A constant POSIX sh fragment (no user input reaches it); `find_bin` is defined by the doctor's probe.
ENV_PROBE = r"""
printf 'env.PYSPARK_PYTHON=%s\n' "${PYSPARK_PYTHON:-}"
if [ -n "${PYSPARK_PYTHON:-}" ] && [ -x "$PYSPARK_PYTHON" ]; then echo env.pyspark_ok=yes
else echo env.pyspark_ok=no; fi
printf 'env.LANG=%s\n' "${LANG:-}"
printf 'env.LC_ALL=%s\n' "${LC_ALL:-}"
printf 'bin.fusermount=%s\n' "$(find_bin fusermount || find_bin fusermount3)"
if grep -q '^libraries:' /etc/passwd 2>/dev/null; then echo user.libraries=yes; else echo user.libraries=no; fi
printf 'gpu.cuda_version=%s\n' "${CUDA_VERSION:-}"
if [ -d /usr/local/cuda ]; then echo gpu.cuda_dir=yes; else echo gpu.cuda_dir=no; fi
printf 'user.name=%s\n' "$(id -un 2>/dev/null || id -u 2>/dev/null)"
if [ -n "$(find_bin sudo)" ]; then
  if sudo -n true >/dev/null 2>&1; then echo sudo.works=yes
  else printf 'sudo.works=no %s\n' "$(sudo -n true 2>&1 | head -n 1)"; fi
fi
"""
VENV_PYSPARK = "/databricks/python3/bin/python3"


def environment_checks(facts: dict[str, str], base: BaseInfo | None, apk: bool) -> list[Check]:
    checks = [_sudo(facts)]
    if facts.get("venv.python") == "yes":
        checks.append(_pyspark(facts))
    checks.append(_locale(facts))
    checks.append(_fuse(facts, base, apk))
    checks.append(_libraries(facts))
    if base is not None and base.gpu:
        checks.append(_cuda(facts))
    return checks


def _cuda(facts: dict[str, str]) -> Check:
    version = facts.get("gpu.cuda_version", "")
    if version or facts.get("gpu.cuda_dir") == "yes":
        return Check("gpu", PASS, f"CUDA {version}" if version else "/usr/local/cuda")
    return Check(
        "gpu",
        WARN,
        "a GPU base, but no CUDA in the image (no CUDA_VERSION, no /usr/local/cuda): GPU nodes would run it "
        "without CUDA",
        "Keep the nvidia/cuda base's CUDA runtime (its CUDA_VERSION and /usr/local/cuda).",
    )


def _sudo(facts: dict[str, str]) -> Check:
    user = facts.get("user.name") or "the default user"
    works = facts.get("sudo.works", "")
    if not works:  # no sudo at all: the `sudo` row says so
        return Check("sudo_works", SKIP, "no sudo to run (see the sudo row)")
    if works == "yes":
        return Check("sudo_works", PASS, f"`sudo -n true` works for {user}")
    said = works.removeprefix("no").strip()
    return Check(
        "sudo_works",
        FAIL,
        f"`sudo -n true` fails for {user}" + (f": {said[:160]}" if said else ""),
        f"Databricks runs set-up steps with sudo: let {user} sudo without a password "
        f"(`echo '{user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{user}`), or make root the default user.",
    )


def _pyspark(facts: dict[str, str]) -> Check:
    value = facts.get("env.PYSPARK_PYTHON", "")
    fix = f"ENV PYSPARK_PYTHON={VENV_PYSPARK} (as databricksruntime/python sets it)"
    if not value:
        return Check("pyspark_python", WARN, "PYSPARK_PYTHON is not set: Spark may start another Python", fix)
    if facts.get("env.pyspark_ok") != "yes":
        return Check("pyspark_python", FAIL, f"PYSPARK_PYTHON={value} is not an executable file", fix)
    if not value.startswith("/databricks/python3/"):
        return Check("pyspark_python", WARN, f"PYSPARK_PYTHON={value}, not the notebook's virtualenv", fix)
    return Check("pyspark_python", PASS, f"PYSPARK_PYTHON={value}")


def _locale(facts: dict[str, str]) -> Check:
    shown = {k: facts.get(f"env.{k}", "") for k in ("LANG", "LC_ALL")}
    utf8 = [k for k, v in shown.items() if "utf-8" in v.lower() or "utf8" in v.lower()]
    text = ", ".join(f"{k}={v or '(unset)'}" for k, v in shown.items())
    if utf8:
        return Check("locale", PASS, text)
    return Check(
        "locale",
        WARN,
        f"{text}: no UTF-8 locale, so non-ASCII text in files and logs can fail",
        "ENV LANG=C.UTF-8 LC_ALL=C.UTF-8 (as databricksruntime/minimal sets them)",
    )


def _fuse(facts: dict[str, str], base: BaseInfo | None, apk: bool) -> Check:
    found = facts.get("bin.fusermount", "")
    if found:
        return Check("fuse", PASS, f"{found} (/dbfs can be mounted)")
    flavour = (
        f" ({base.flavour} images have none either; standard and dbfsfuse do)" if base and base.is_databricks else ""
    )
    return Check(
        "fuse",
        WARN,
        f"no fusermount: /dbfs will not be mounted in this container{flavour}",
        "apk add fuse" if apk else "apt-get install -y fuse (as databricksruntime/dbfsfuse does), if code reads /dbfs",
    )


def _libraries(facts: dict[str, str]) -> Check:
    if facts.get("user.libraries") == "yes":
        return Check("libraries_user", PASS, "user `libraries` exists")
    return Check(
        "libraries_user",
        WARN,
        "no `libraries` user (databricksruntime/minimal adds a locked one for library installs)",
        "RUN useradd libraries && usermod -L libraries",
    )
