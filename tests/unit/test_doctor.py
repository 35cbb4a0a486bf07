"""The DCS doctor's verdicts on probe outputs: what passes, warns and fails, and the fix it suggests."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.bases import BaseInfo, classify_base
from bot.domain.doctor import FAIL, PASS, SKIP, WARN, DoctorReport, evaluate, parse_probe
from bot.domain.python_checks import NOTEBOOK_PACKAGES
from bot.domain.refs import parse_ref

STANDARD = classify_base(parse_ref("databricksruntime/standard:15.4-LTS"))
MINIMAL = classify_base(parse_ref("databricksruntime/minimal:15.4-LTS"))
CONDA = classify_base(parse_ref("databricksruntime/standard:8.x"))
CUSTOM = classify_base(parse_ref("myacr.azurecr.io/team/base:1"))
AMD64 = {"Os": "linux", "Architecture": "amd64", "Config": {"Entrypoint": None, "Cmd": None}}

UBUNTU_OS = {"ID": "ubuntu", "VERSION_ID": '"22.04"', "PRETTY_NAME": '"Ubuntu 22.04.4 LTS"'}
ALPINE_OS = {"ID": "alpine", "VERSION_ID": "3.20.0", "PRETTY_NAME": '"Alpine Linux v3.20"'}
CENTOS_OS = {"ID": '"centos"', "VERSION_ID": '"7"', "PRETTY_NAME": '"CentOS Linux 7 (Core)"'}
ALL_BINARIES = (
    "bash", "ip", "ps", "sudo", "setfacl", "java", "ls", "cat", "cp", "mv", "rm", "mkdir", "chmod", "ln", "apt-get",
    "fusermount",
)  # fmt: skip
# What a healthy /databricks/python3 prints (bot/domain/python_checks.py PYTHON_PROBE)
PYTHON_LINES = [
    *(f"inv\tpy\t{name}\t1.0" for name in ("ipython", "ipykernel", *NOTEBOOK_PACKAGES)),
    "py\tencoding\tutf-8\tutf-8",
    "deps\tdone",
    "import\tdone",
]
HEALTHY_ENV = [
    "env.PYSPARK_PYTHON=/databricks/python3/bin/python3",
    "env.pyspark_ok=yes",
    "env.LANG=C.UTF-8",
    "env.LC_ALL=C.UTF-8",
    "user.libraries=yes",
    "user.name=root",
]
BIN_DIR = {"bash": "/bin", "ip": "/sbin", "sudo": "/usr/bin", "setfacl": "/usr/bin", "java": "/usr/bin", "ps": "/bin"}


def probe(
    *,
    missing: tuple[str, ...] = (),
    gnu_ls: str = "ls (GNU coreutils) 8.32",
    gnu_ps: str = "ps from procps-ng 3.3.17",
    java: str = 'openjdk version "1.8.0_412"',
    venv: bool = True,
    os_release: dict[str, str] | None = None,
    done: bool = True,
    python: str = "Python 3.11.11",
) -> str:
    """What PROBE_SCRIPT prints inside an image with the given traits."""
    lines = [f"bin.{b}={'' if b in missing else BIN_DIR.get(b, '/bin') + '/' + b}" for b in ALL_BINARIES]
    lines += [
        f"gnu.ls={gnu_ls}",
        f"gnu.ps={gnu_ps}",
        f"java.version={java if 'java' not in missing else ''}",
        f"venv.python={'yes' if venv else 'no'}",
        f"python.version={python if venv else ''}",
        *HEALTHY_ENV,
        *([] if "sudo" in missing else ["sudo.works=yes"]),
        *(PYTHON_LINES if venv else []),
    ]
    for key, value in (UBUNTU_OS if os_release is None else os_release).items():
        lines.append(f"os.{key}={value}")
    if done:
        lines.append("probe=done")
    return "\n".join(lines) + "\n"


def statuses(report: DoctorReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def check(report: DoctorReport, name: str):
    return next(c for c in report.checks if c.name == name)


def test_full_ubuntu_image_passes_every_check() -> None:
    report = evaluate("team/app:1", probe(), AMD64, STANDARD)
    assert statuses(report) == {
        "platform": PASS,
        "bash": PASS,
        "iproute2": PASS,
        "coreutils": PASS,
        "procps": PASS,
        "sudo": PASS,
        "acl": PASS,
        "java": PASS,
        "python": PASS,
        "os": PASS,
        "runtime": PASS,
        "os_version": PASS,
        "python_version": PASS,
        "java_version": PASS,
        "notebook": PASS,
        "dependencies": PASS,
        "imports": SKIP,
        "sudo_works": PASS,
        "pyspark_python": PASS,
        "locale": PASS,
        "fuse": PASS,
        "libraries_user": PASS,
        "entrypoint": PASS,
    }
    assert report.status == PASS and report.ok and report.failures == []
    assert check(report, "os").detail == "Ubuntu 22.04.4 LTS"
    assert check(report, "java").detail == 'openjdk version "1.8.0_412"'
    assert check(report, "iproute2").detail == "/sbin/ip"
    assert check(report, "python").detail == "/databricks/python3/bin/python"


@pytest.mark.parametrize(
    ("kwargs", "inspect", "base", "name", "status", "detail", "fix"),
    [
        ({"missing": ("sudo",)}, AMD64, STANDARD, "sudo", FAIL, "`sudo` not found on PATH", "apt-get install -y sudo"),
        (
            {"missing": ("ip",)},
            AMD64,
            STANDARD,
            "iproute2",
            FAIL,
            "`ip` not found on PATH",
            "apt-get install -y iproute2",
        ),
        ({"missing": ("bash",)}, AMD64, STANDARD, "bash", FAIL, "`bash` not found on PATH", "apt-get install -y bash"),
        ({"missing": ("ps",)}, AMD64, STANDARD, "procps", FAIL, "`ps` not found on PATH", "apt-get install -y procps"),
        (
            {"missing": ("cp", "ln")},
            AMD64,
            STANDARD,
            "coreutils",
            FAIL,
            "missing: cp, ln",
            "apt-get install -y coreutils",
        ),
        (
            {"missing": ("setfacl",)},
            AMD64,
            STANDARD,
            "acl",
            WARN,
            "setfacl not found (newer Databricks docs list acl)",
            "apt-get install -y acl",
        ),
        (
            {"gnu_ls": "BusyBox v1.36.1 (2023-06-10) multi-call binary."},
            AMD64,
            STANDARD,
            "coreutils",
            WARN,
            "present, but not GNU coreutils (busybox applets?)",
            "apt-get install -y coreutils",
        ),
        (
            {"gnu_ps": ""},
            AMD64,
            STANDARD,
            "procps",
            WARN,
            "`ps` present, but not from procps (busybox?)",
            "apt-get install -y procps",
        ),
        (
            {"missing": ("java",)},
            AMD64,
            STANDARD,
            "java",
            FAIL,
            "no `java` on PATH; Databricks needs a JDK in the container",
            "Install the JDK matching the runtime",
        ),
        ({"java": ""}, AMD64, STANDARD, "java", PASS, "/usr/bin/java", ""),
        (
            {"os_release": {}},
            AMD64,
            STANDARD,
            "os",
            FAIL,
            "no /etc/os-release",
            "Base the image on Ubuntu (recommended) or Alpine.",
        ),
        (
            {"os_release": CENTOS_OS},
            AMD64,
            STANDARD,
            "os",
            FAIL,
            "CentOS Linux 7 (Core) is not supported by DCS",
            "Base the image on Ubuntu (recommended) or Alpine.",
        ),
        (
            {"os_release": {"ID": "debian", "VERSION_ID": '"12"'}},
            AMD64,
            STANDARD,
            "os",
            WARN,
            "debian 12: DCS supports Ubuntu and Alpine, and Databricks checks the OS when the cluster starts "
            "(a refused one ends with DOCKER_INVALID_OS_EXCEPTION), so running Debian is the team's informed choice",
            'Base the image on Ubuntu (recommended), or record the decision: doctor.waive = { os = "why" }.',
        ),
        (
            {"os_release": ALPINE_OS},
            AMD64,
            STANDARD,
            "os",
            PASS,
            "Alpine Linux v3.20 (Alpine needs GNU coreutils, procps, sudo and a hand-made venv)",
            "",
        ),
        (
            {"venv": False},
            AMD64,
            STANDARD,
            "python",
            FAIL,
            "/databricks/python3/bin/python missing",
            "Keep the base's /databricks/python3 virtualenv.",
        ),
        (
            {"venv": False},
            AMD64,
            CUSTOM,
            "python",
            WARN,
            "/databricks/python3/bin/python missing: Python notebooks will not work",
            "Create a virtualenv at /databricks/python3",
        ),
        (
            {"venv": False},
            AMD64,
            None,
            "python",
            WARN,
            "/databricks/python3/bin/python missing: Python notebooks will not work",
            "Create a virtualenv",
        ),
        ({"venv": True}, AMD64, None, "python", PASS, "/databricks/python3/bin/python", ""),
        (
            {"venv": False},
            AMD64,
            MINIMAL,
            "python",
            SKIP,
            "base has no Python (Scala/R only); notebooks need a Python image",
            "",
        ),
        (
            {"venv": False},
            AMD64,
            CONDA,
            "python",
            SKIP,
            "conda base (DBR <= 8.x): Python lives in /databricks/conda",
            "",
        ),
        (
            {},
            {**AMD64, "Config": {"Cmd": ["/bin/bash"], "Entrypoint": None}},
            STANDARD,
            "entrypoint",
            WARN,
            "CMD/ENTRYPOINT set (/bin/bash); Databricks ignores them",
            "Move start-up work into an init script.",
        ),
        (
            {},
            {**AMD64, "Config": {"Cmd": ["--serve"], "Entrypoint": ["/init.sh"]}},
            STANDARD,
            "entrypoint",
            WARN,
            "CMD/ENTRYPOINT set (/init.sh --serve); Databricks ignores them",
            "Move start-up work into an init script.",
        ),
        ({}, {**AMD64, "Config": {"Cmd": [], "Entrypoint": []}}, STANDARD, "entrypoint", PASS, "no CMD/ENTRYPOINT", ""),
        (
            {},
            {"Os": "linux", "Architecture": "arm64"},
            STANDARD,
            "platform",
            FAIL,
            "linux/arm64",
            "Build for linux/amd64: Databricks runs only that platform.",
        ),
        (
            {},
            {"Os": "windows", "Architecture": "amd64"},
            STANDARD,
            "platform",
            FAIL,
            "windows/amd64",
            "Build for linux/amd64",
        ),
        ({}, {}, STANDARD, "platform", FAIL, "?/?", "Build for linux/amd64"),
    ],
)
def test_each_check(
    kwargs: dict[str, Any],
    inspect: dict[str, Any],
    base: BaseInfo | None,
    name: str,
    status: str,
    detail: str,
    fix: str,
) -> None:
    report = evaluate("team/app:1", probe(**kwargs), inspect, base)
    found = check(report, name)
    assert found.status == status
    assert found.detail == detail
    assert found.fix.startswith(fix)
    # every other check is unaffected
    others = {n: s for n, s in statuses(report).items() if n != name}
    assert set(others.values()) <= {PASS, SKIP}
    assert report.status == (FAIL if status == FAIL else WARN if status == WARN else PASS)
    assert report.ok is (status != FAIL)


def test_base_lacking_sudo_and_ip_fails_with_both_named() -> None:
    report = evaluate("databricksruntime/standard:15.4-LTS", probe(missing=("sudo", "ip")), AMD64, STANDARD)
    assert report.status == FAIL
    assert not report.ok
    assert [(c.name, c.fix) for c in report.failures] == [
        ("iproute2", "apt-get install -y iproute2"),
        ("sudo", "apt-get install -y sudo"),
    ]


def test_busybox_image_warns_for_coreutils_and_ps() -> None:
    report = evaluate("busybox-base", probe(gnu_ls="", gnu_ps=""), AMD64, STANDARD)
    assert statuses(report)["coreutils"] == WARN
    assert statuses(report)["procps"] == WARN
    assert report.status == WARN and report.ok


def test_alpine_passes_with_a_note() -> None:
    report = evaluate("alpine-base", probe(os_release=ALPINE_OS), AMD64, CUSTOM)
    assert report.status == PASS
    assert "Alpine needs GNU coreutils, procps, sudo and a hand-made venv" in check(report, "os").detail


@pytest.mark.parametrize("output", [None, "", "sh: exec format error\n", probe(done=False)])
def test_no_shell_fails_and_checks_nothing_else(output: str | None) -> None:
    report = evaluate("scratch-image", output, AMD64, STANDARD)
    assert [c.name for c in report.checks] == ["platform", "shell", "entrypoint"]
    shell = check(report, "shell")
    assert shell.status == FAIL
    assert shell.detail == "the image could not run /bin/sh, so nothing else could be checked"
    assert "bash" in shell.fix
    assert report.status == FAIL


def test_no_shell_still_reports_platform_and_entrypoint() -> None:
    inspect = {"Os": "linux", "Architecture": "arm64", "Config": {"Entrypoint": ["/app"], "Cmd": None}}
    report = evaluate("scratch-image", None, inspect, None)
    assert statuses(report) == {"platform": FAIL, "shell": FAIL, "entrypoint": WARN}


def test_minimal_base_skips_python_and_still_passes() -> None:
    report = evaluate("databricksruntime/minimal:15.4-LTS", probe(venv=False), AMD64, MINIMAL)
    assert check(report, "python").status == SKIP
    assert report.status == PASS


def test_several_problems_at_once() -> None:
    report = evaluate(
        "bad",
        probe(missing=("java", "sudo", "setfacl"), os_release=CENTOS_OS, gnu_ps=""),
        {"Os": "linux", "Architecture": "arm64", "Config": {"Cmd": ["sh"]}},
        STANDARD,
    )
    assert statuses(report) == {
        "platform": FAIL,
        "bash": PASS,
        "iproute2": PASS,
        "coreutils": PASS,
        "procps": WARN,
        "sudo": FAIL,
        "acl": WARN,
        "java": FAIL,
        "python": PASS,
        "os": FAIL,
        "runtime": PASS,
        "python_version": PASS,
        "notebook": PASS,
        "dependencies": PASS,
        "imports": SKIP,
        "sudo_works": SKIP,
        "pyspark_python": PASS,
        "locale": PASS,
        "fuse": PASS,
        "libraries_user": PASS,
        "entrypoint": WARN,
    }
    assert [c.name for c in report.failures] == ["platform", "sudo", "java", "os"]


def test_rows_round_trip_for_the_database() -> None:
    report = evaluate("team/app:1", probe(missing=("sudo",)), AMD64, STANDARD)
    rows = report.to_rows()
    assert rows[0] == {"name": "platform", "status": PASS, "detail": "linux/amd64", "fix": ""}
    assert DoctorReport.from_rows("team/app:1", rows) == report
    assert DoctorReport.from_rows("team/app:1", tuple(rows)).status == FAIL


@pytest.mark.parametrize(
    ("output", "facts"),
    [
        ("bin.bash=/bin/bash\n", {"bin.bash": "/bin/bash"}),
        ('os.PRETTY_NAME="Ubuntu 22.04 LTS"\n', {"os.PRETTY_NAME": "Ubuntu 22.04 LTS"}),
        ('java.version=openjdk version "17.0.2" 2022-01-18\n', {"java.version": 'openjdk version "17.0.2" 2022-01-18'}),
        ('java.version=openjdk version "1.8.0_412"\n', {"java.version": 'openjdk version "1.8.0_412"'}),
        ("garbage line\nkey with space=x\n=novalue\nprobe=done\n", {"probe": "done"}),
        ("a=b=c\r\n", {"a": "b=c"}),
    ],
)
def test_parse_probe(output: str, facts: dict[str, str]) -> None:
    assert parse_probe(output) == facts


def test_missing_ipykernel_fails_a_databricks_base_and_warns_an_own_base() -> None:
    output = probe().replace("inv\tpy\tipykernel\t1.0\n", "")
    standard = check(evaluate("team/app:1", output, AMD64, STANDARD), "notebook")
    assert standard.status == FAIL and standard.detail.startswith("ipykernel not installed")
    own = check(evaluate("team/app:1", output, AMD64, CUSTOM), "notebook")
    assert own.status == WARN and own.detail.endswith("(Python jobs still run)")
