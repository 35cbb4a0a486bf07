"""Runtime parity: what each supported Databricks Runtime LTS expects inside its container, and how an image
compares. Pure.

Every row cites where it comes from; nothing here is guessed:
- Ubuntu, Python and the default JDK: `databricks/containers` release branches (`release-X.Y-LTS`):
  `ubuntu/minimal/Dockerfile` (its `FROM ubuntu:…`, the JDK packages and `update-java-alternatives -s …`)
  and `ubuntu/python/Dockerfile` (`ARG python_version=…`).
- Apache Spark and the end of support: the Databricks Runtime release notes' versions table
  (https://docs.databricks.com/release-notes/runtime/ ; "Supported Databricks Runtime LTS releases").
- Scala: 16.4 LTS ships a Scala 2.12 and a Scala 2.13 variant, and "starting with Databricks Runtime 17
  (Spark 4), only Scala 2.13 will be supported" (https://docs.databricks.com/aws/release-notes/runtime/16.4lts);
  the older LTS releases name Scala 2.12 in their `clusters/spark-versions` keys and names
  (`15.4.x-scala2.12`, "15.4 LTS (includes Apache Spark 3.5.0, Scala 2.12)").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.bases import BaseInfo
from bot.domain.checks import FAIL, PASS, SKIP, WARN, Check

CONTAINERS = "https://github.com/databricks/containers/tree/release-{version}-LTS/ubuntu"
RELEASE_NOTES = "https://docs.databricks.com/release-notes/runtime/"
NOTES_164 = "https://docs.databricks.com/aws/release-notes/runtime/16.4lts"


@dataclass(frozen=True)
class RuntimeTarget:
    """What one Databricks Runtime LTS expects of its container."""

    version: str  # "15.4"
    ubuntu: tuple[str, ...]  # Ubuntu releases its base images use ("22.04",)
    python: str  # major.minor of /databricks/python3
    jdk: int  # the default JDK's major version (8, 17)
    jdk_name: str  # as the base image installs it
    scala: tuple[str, ...]  # Scala versions of its spark_version keys
    spark: str
    end_of_support: str  # ISO date
    sources: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.version} LTS"

    def summary(self) -> str:
        return (
            f"DBR {self.label}: Ubuntu {' or '.join(self.ubuntu)}, Python {self.python}, {self.jdk_name}, "
            f"Scala {' / '.join(self.scala)}"
        )


def _row(
    version: str,
    ubuntu: tuple[str, ...],
    python: str,
    jdk: int,
    jdk_name: str,
    scala: tuple[str, ...],
    spark: str,
    end_of_support: str,
    *extra: str,
) -> RuntimeTarget:
    sources = (CONTAINERS.format(version=version), RELEASE_NOTES, *extra)
    return RuntimeTarget(version, ubuntu, python, jdk, jdk_name, scala, spark, end_of_support, sources)


# Ubuntu: minimal's FROM; Python: python's ARG python_version; JDK: minimal's packages and alternatives.
PARITY: dict[str, RuntimeTarget] = {
    r.version: r
    for r in (
        # release-9.1-LTS: FROM ubuntu:18.04 (release-9.1-ubuntu20-LTS: ubuntu:20.04), python 3.8, openjdk-8-jdk
        _row(
            "9.1",
            ("18.04", "20.04"),
            "3.8",
            8,
            "OpenJDK 8",
            ("2.12",),
            "3.1.2",
            "2024-09-23",
            "https://github.com/databricks/containers/tree/release-9.1-ubuntu20-LTS/ubuntu",
        ),
        _row("10.4", ("20.04",), "3.8", 8, "OpenJDK 8", ("2.12",), "3.2.1", "2025-03-18"),
        _row("11.3", ("20.04",), "3.9", 8, "OpenJDK 8", ("2.12",), "3.3.0", "2025-10-19"),
        _row("12.2", ("20.04",), "3.9", 8, "OpenJDK 8", ("2.12",), "3.3.2", "2026-03-01"),
        _row("13.3", ("22.04",), "3.10", 8, "OpenJDK 8", ("2.12",), "3.4.1", "2026-08-22"),
        _row("14.3", ("22.04",), "3.10", 8, "OpenJDK 8", ("2.12",), "3.5.0", "2027-02-01"),
        # zulu8 and zulu17 installed, `update-java-alternatives -s zulu8-ca-amd64`
        _row("15.4", ("22.04",), "3.11", 8, "Zulu 8 (Zulu 17 also installed)", ("2.12",), "3.5.0", "2027-08-19"),
        # zulu8 and zulu17 installed, `update-java-alternatives -s zulu17-ca-amd64`
        _row(
            "16.4",
            ("24.04",),
            "3.12",
            17,
            "Zulu 17 (Zulu 8 also installed)",
            ("2.12", "2.13"),
            "3.5.2",
            "2028-05-09",
            NOTES_164,
        ),
        _row(
            "17.3",
            ("24.04",),
            "3.12",
            17,
            "Zulu 17 (Zulu 8 also installed)",
            ("2.13",),
            "4.0.0",
            "2028-10-22",
            NOTES_164,
        ),
    )
}

_JAVA_MAJOR = re.compile(r"^(?:1\.(\d+)|(\d+))")


def target_for(base: BaseInfo | None) -> RuntimeTarget | None:
    """The LTS runtime an image's base was made for (`databricksruntime/*:15.4-LTS` → 15.4), if known."""
    if base is None or base.runtime is None or base.runtime[1] is None:
        return None
    return PARITY.get(f"{base.runtime[0]}.{base.runtime[1]}")


def java_major(version: str | None) -> int | None:
    """8 for `1.8.0_392`, 17 for `17.0.10`."""
    match = _JAVA_MAJOR.match(version or "")
    if not match:
        return None
    return int(match.group(1) or match.group(2))


def runtime_mismatch(base: BaseInfo | None, major: int | None, minor: int | None) -> str | None:
    """Why an image made for one runtime should not run on the runtime `major.minor`, or None when they match
    (or the base names no runtime)."""
    if base is None or base.runtime is None or major is None:
        return None
    want_major, want_minor = base.runtime
    if want_major == major and (want_minor is None or want_minor == minor):
        return None
    made_for = base.runtime_label
    target = target_for(base)
    asked = PARITY.get(f"{major}.{minor}")
    detail = f" ({target.summary()}" + (f"; {asked.summary()})" if asked else ")") if target else ""
    return f"the image was made for DBR {made_for}, not {major}.{minor}{detail}"


def parity_checks(facts: dict[str, str], base: BaseInfo | None) -> list[Check]:
    """The image against the runtime its base targets: Ubuntu release, Python minor, default JDK."""
    target = target_for(base)
    if target is None:
        why = "the base names no LTS runtime (own base, GPU or x.x tag): nothing to compare with"
        return [Check("runtime", SKIP, why)]
    checks = [Check("runtime", PASS, target.summary())]
    os_id, os_version = facts.get("os.ID", "").lower(), facts.get("os.VERSION_ID", "")
    if os_id == "ubuntu":
        if os_version in target.ubuntu:
            checks.append(Check("os_version", PASS, f"Ubuntu {os_version}, as DBR {target.label}"))
        else:
            checks.append(
                Check(
                    "os_version",
                    WARN,
                    f"Ubuntu {os_version or '?'}; DBR {target.label} images use Ubuntu {' or '.join(target.ubuntu)}",
                    f"Base the image on ubuntu:{target.ubuntu[-1]} (as databricksruntime/*:{target.version}-LTS), "
                    "or target the runtime made for this Ubuntu.",
                )
            )
    python = facts.get("python.version", "")
    match = re.search(r"Python (\d+\.\d+)", python)
    if facts.get("venv.python") == "yes":
        if match is None:
            checks.append(
                Check(
                    "python_version",
                    FAIL,
                    f"`/databricks/python3/bin/python -V` answered {python[:80]!r}",
                    "Repair the /databricks/python3 virtualenv (recreate it with the runtime's Python).",
                )
            )
        elif match.group(1) == target.python:
            checks.append(Check("python_version", PASS, f"{python}, as DBR {target.label}"))
        else:
            checks.append(
                Check(
                    "python_version",
                    FAIL,
                    f"{python}; DBR {target.label} runs Python {target.python}: notebooks and UDFs fail "
                    "(pickled code and compiled wheels are per Python minor)",
                    f"Create /databricks/python3 with Python {target.python} (keep the base's virtualenv), "
                    f"or build on the base of the runtime that runs Python {match.group(1)}.",
                )
            )
    java = re.search(r'version "([^"]+)"', facts.get("java.version", ""))
    found = java_major(java.group(1)) if java else None
    if found is not None:
        if found == target.jdk:
            checks.append(Check("java_version", PASS, f"Java {found}, as DBR {target.label}"))
        else:
            checks.append(
                Check(
                    "java_version",
                    WARN,
                    f"the default `java` is Java {found}; DBR {target.label} defaults to {target.jdk_name}",
                    f"Make JDK {target.jdk} the default (`update-java-alternatives -s …`), as "
                    f"databricksruntime/minimal:{target.version}-LTS does.",
                )
            )
    return checks
