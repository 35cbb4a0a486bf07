"""Every doctor row on the real Python base: variants of the realistic base (~130 distributions) that differ in
exactly one respect, each making its row fail or warn with its fix while every other row stays as it was.

The catalog entry names `databricksruntime/standard:15.4-LTS` as its base, so the runtime the image must match is
15.4 LTS (Ubuntu 22.04, Python 3.11, Java 8): exactly what the realistic base is.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable

import pytest

from bot.compose import build_services
from bot.config import load_config
from bot.domain.catalog import RegistrySpec, image_from_dict
from bot.domain.checks import Check
from bot.ops.build import Builder
from bot.services import Services
from bot.store import Store
from tests.support.cli import dcs_command
from tests.support.containers import run_script
from tests.support.namespace import local

TARGET = "databricksruntime/standard:15.4-LTS"
PY = "/databricks/python3/bin/python"
SITE = "/databricks/python3/lib/python3.11/site-packages"
Rows = dict[str, Check]

PYTHON_312 = f"""#!/bin/sh
case "$1" in -V|--version) echo "Python 3.12.3"; exit 0 ;; esac
exec {PY}3 "$@"
"""
JAVA_17 = """#!/bin/sh
echo 'openjdk version "17.0.13" 2024-10-15 LTS' >&2
echo 'OpenJDK Runtime Environment Zulu17.54+21-CA (build 17.0.13+11-LTS)' >&2
"""


def dist_info(name: str, *requires: str, top_level: str | None = None) -> dict[str, str]:
    folder = f"{SITE}/{name.replace('-', '_')}-1.0.dist-info"
    meta = "Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n{}".format(
        name, "".join(f"Requires-Dist: {r}\n" for r in requires)
    )
    files = {f"{folder}/METADATA": meta, f"{folder}/RECORD": ""}
    if top_level:
        files[f"{folder}/top_level.txt"] = top_level + "\n"
    return files


@pytest.fixture(scope="module")
def services(tmp_path_factory) -> Services:
    environ = {"DCS_DB": str(tmp_path_factory.mktemp("rows") / "dcs.db")}
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return build_services(load_config(environ))


@pytest.fixture(scope="module")
def doctor(services) -> Callable[..., Rows]:
    def run(image: str, **fields) -> Rows:
        spec = image_from_dict({"name": "rows", "base": TARGET, "repository": local("rows/image"), **fields})
        report, _ = Builder(services).probe(image, spec)
        return {c.name: c for c in report.checks}

    return run


@pytest.fixture(scope="module")
def reference(doctor, realistic_base) -> Rows:
    return doctor(realistic_base)


def changed(reference: Rows, rows: Rows) -> dict[str, str]:
    names = set(reference) | set(rows)
    return {
        n: rows[n].status if n in rows else "gone"
        for n in sorted(names)
        if n not in reference or n not in rows or reference[n].status != rows[n].status
    }


def test_the_realistic_base_passes_every_row_but_the_expected_warnings(reference):
    assert {n: c.status for n, c in reference.items() if c.status != "pass"} == {
        "imports": "skip",  # the entry has no pip requirements
        "fuse": "warn",  # python flavour: no fusermount
        "entrypoint": "warn",  # CMD /bin/bash
    }
    assert set(reference) >= {
        "platform", "bash", "iproute2", "coreutils", "procps", "sudo", "acl", "java", "python", "os", "runtime",
        "os_version", "python_version", "java_version", "notebook", "dependencies", "imports", "sudo_works",
        "pyspark_python", "locale", "fuse", "libraries_user", "entrypoint",
    }  # fmt: skip
    assert reference["python_version"].detail.startswith("Python 3.11")
    assert "ipykernel" in reference["notebook"].detail
    assert reference["dependencies"].detail.endswith("every requirement satisfied")


VARIANTS: dict[str, dict] = {
    "python-312": {"files": {f"{PY}": (PYTHON_312, 0o755)}},
    "java-17": {"files": {"/usr/bin/java": (JAVA_17, 0o755)}},
    "broken-deps": {"files": dist_info("dcs-needs-more", "dcs-test-absent>=1", "numpy<1")},
    "no-sudoers": {"files": {"/etc/sudoers": ("Defaults env_reset\n", 0o440)}},
    "bad-pyspark": {"env": {"PYSPARK_PYTHON": "/usr/bin/python9"}},
    "no-locale": {"env": {"LANG": "", "LC_ALL": ""}},
    "debian": {"os_release": ("debian", "12")},
    "ubuntu-24": {"os_release": ("ubuntu", "24.04")},
    "fuse": {"files": {"/usr/bin/fusermount": ("#!/bin/sh\nexit 0\n", 0o755)}},
}


@pytest.mark.parametrize(
    ("variant", "expected", "row", "words"),
    [
        ("python-312", {"python_version": "fail"}, "python_version", ("Python 3.11", "DBR 15.4 LTS runs Python 3.11")),
        ("java-17", {"java_version": "warn"}, "java_version", ("JDK 8", "Java 17")),
        (
            "broken-deps",
            {"dependencies": "fail"},
            "dependencies",
            ("dcs-test-absent>=1, which is not installed", "numpy<1, but 2.4.6 is installed", "Pin compatible"),
        ),
        ("no-sudoers", {"sudo_works": "fail"}, "sudo_works", ("`sudo -n true` fails for root", "NOPASSWD")),
        ("bad-pyspark", {"pyspark_python": "fail"}, "pyspark_python", ("/usr/bin/python9", "ENV PYSPARK_PYTHON")),
        ("no-locale", {"locale": "warn"}, "locale", ("LANG=(unset)", "ENV LANG=C.UTF-8")),
        ("debian", {"os": "warn", "os_version": "gone"}, "os", ("DOCKER_INVALID_OS_EXCEPTION", "doctor.waive")),
        ("ubuntu-24", {"os_version": "warn"}, "os_version", ("Ubuntu 24.04", "ubuntu:22.04")),
        ("fuse", {"fuse": "pass"}, "fuse", ("/usr/bin/fusermount",)),
    ],
)
def test_a_variant_changes_exactly_its_row(
    python_variant, realistic_base, doctor, reference, variant, expected, row, words
):
    image = python_variant(f"rows-{variant}", parent=realistic_base, **VARIANTS[variant])
    rows = doctor(image)
    assert changed(reference, rows) == expected
    shown = f"{rows[row].detail} {rows[row].fix}"
    assert all(word in shown for word in words), shown


def test_a_real_pip_uninstall_of_ipykernel_fails_the_notebook_row(
    engine, realistic_base, build_image, doctor, reference
):
    image = build_image(
        "realistic-no-ipykernel",
        f"FROM {realistic_base}\nRUN {PY} -m pip uninstall -y -q ipykernel\n",
        network_mode="none",
    )
    rows = doctor(image)
    assert changed(reference, rows) == {"notebook": "fail"}
    assert "ipykernel not installed" in rows["notebook"].detail and "Add ipykernel" in rows["notebook"].fix


def test_no_libraries_user_warns(engine, python_variant, realistic_base, doctor, reference):
    passwd = run_script(engine, realistic_base, "cat /etc/passwd").stdout
    kept = "".join(line + "\n" for line in passwd.splitlines() if not line.startswith("libraries:"))
    rows = doctor(python_variant("rows-no-libraries", parent=realistic_base, files={"/etc/passwd": kept}))
    assert changed(reference, rows) == {"libraries_user": "warn"}
    assert "useradd libraries" in rows["libraries_user"].fix


def test_the_import_smoke_test_imports_the_entry_s_requirements(python_variant, realistic_base, doctor):
    good = doctor(realistic_base, pip=["pandas", "pyarrow>=15", "PyYAML"])["imports"]
    assert good.status == "pass" and good.detail == "imported pandas, pyarrow, yaml"

    files = {
        **dist_info("dcs-bad-import", top_level="dcs_bad_import"),
        f"{SITE}/dcs_bad_import.py": "raise ImportError('libdcs.so.1: cannot open shared object file')\n",
    }
    image = python_variant("rows-bad-import", parent=realistic_base, files=files)
    bad = doctor(image, pip=["pandas", "dcs-bad-import==1.0"])
    assert changed(doctor(image, pip=["pandas"]), bad) == {"imports": "fail"}
    assert "dcs-bad-import (dcs_bad_import): ImportError: libdcs.so.1" in bad["imports"].detail
    assert doctor(realistic_base, pip=["dcs-not-there"])["imports"].detail == (
        "dcs-not-there: not installed in /databricks/python3"
    )


def test_alpine_fixes_say_apk_add(make_base, services):
    base = local("rows/alpine:3.20")
    make_base(base, os_id="alpine", os_version="3.20.0", apt=False, apk=True, sudo=False, iproute2=False)
    report = Builder(services).doctor(base)
    fixes = {c.name: c.fix for c in report.checks if c.fix}
    assert fixes["sudo"] == "apk add sudo" and fixes["iproute2"] == "apk add iproute2"
    assert not any("apt-get" in fix for fix in fixes.values()), fixes


def test_an_own_cuda_base_is_checked_as_a_gpu_image(python_variant, realistic_base, doctor):
    cuda = "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"
    image = python_variant(
        "rows-cuda",
        parent=realistic_base,
        env={"CUDA_VERSION": "11.8.0"},
        files={"/usr/local/cuda/version.json": '{"cuda": {"version": "11.8.0"}}'},
    )
    assert doctor(image, base=cuda)["gpu"].status == "pass"
    without = doctor(realistic_base, base=cuda)["gpu"]
    assert without.status == "warn" and "no CUDA" in without.detail
    assert "gpu" not in doctor(image)  # a CPU base: no GPU row


INIT = "/opt/dcs/init-scripts"
FAILING = "#!/bin/bash\necho installing the agent\necho 'E: Unable to locate package dcs-agent' >&2\nexit 3\n"


def test_baked_init_scripts_run_with_bash_as_root_and_a_failure_shows_its_last_lines(
    python_variant, realistic_base, doctor, reference
):
    ok = {f"{INIT}/10-ok.sh": ('#!/bin/bash\n[ "$(id -u)" = 0 ] && [ "$DB_IS_DRIVER" = TRUE ] && echo ready\n', 0o755)}
    good = doctor(python_variant("rows-init-ok", parent=realistic_base, files=ok))
    assert changed(reference, good) == {}
    assert good["init_scripts"].detail == f"1 ran with bash as root: {INIT}/10-ok.sh"

    files = {**ok, f"{INIT}/20-agent.sh": (FAILING, 0o644), f"{INIT}/30-never.sh": ("touch /tmp/ran\n", 0o755)}
    bad = doctor(python_variant("rows-init-fail", parent=realistic_base, files=files))
    assert changed(reference, bad) == {"init_scripts": "fail"}
    detail = bad["init_scripts"].detail
    assert detail.startswith(f"{INIT}/20-agent.sh failed (exit code 3): installing the agent | E: Unable to locate")
    assert "30-never" not in detail and "INIT_SCRIPT_FAILURE" in bad["init_scripts"].fix


def test_a_launch_file_init_script_runs_too_and_a_hanging_one_times_out(
    python_variant, realistic_base, services, tmp_path
):
    image = python_variant(
        "rows-init-launch",
        parent=realistic_base,
        files={"/usr/local/bin/setup.sh": "echo setting up\nexit 1\n", "/usr/local/bin/hang.sh": "sleep 600\n"},
    )
    spec = image_from_dict({"name": "rows", "base": TARGET, "repository": local("rows/image")})
    report, _ = Builder(services).probe(image, spec, launch_scripts=("/usr/local/bin/setup.sh",))
    row = next(c for c in report.checks if c.name == "init_scripts")
    assert (row.status, row.detail) == ("fail", "/usr/local/bin/setup.sh failed (exit code 1): setting up")

    environ = {"DCS_DB": str(tmp_path / "t.db"), "DCS_INIT_SCRIPT_TIMEOUT": "5"}
    if os.environ.get("DOCKER_HOST"):
        environ["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    quick = build_services(load_config(environ))
    started = time.monotonic()
    report, _ = Builder(quick).probe(image, spec, launch_scripts=("/usr/local/bin/hang.sh",))
    row = next(c for c in report.checks if c.name == "init_scripts")
    assert (row.status, row.detail) == ("fail", "/usr/local/bin/hang.sh did not finish within 5 s")
    assert time.monotonic() - started < 30


def test_an_image_over_its_size_budget_warns_and_suggests_a_preloaded_pool(realistic_base, doctor, reference):
    rows = doctor(realistic_base, doctor={"size_budget_mb": 1})
    assert changed(reference, rows) == {"size": "warn"}
    assert "layers (budget 1.0 MB)" in rows["size"].detail and "preloaded_docker_images" in rows["size"].fix
    assert reference["size"].status == "pass" and "budget 6.0 GB" in reference["size"].detail


def test_a_launch_whose_file_init_script_fails_in_the_image_is_refused(
    engine, python_variant, make_base, push_base, registry, tmp_path
):
    stub = local("rows/launch-stub:1")
    make_base(stub)
    script = "#!/bin/bash\necho fetching the agent\necho 'curl: (6) Could not resolve host' >&2\nexit 6\n"
    image = python_variant("rows-launch-script", parent=stub, files={"/opt/team/setup.sh": (script, 0o755)})
    digest = push_base(image, registry, "dcs-tests/rows-launch", "b1")
    db = str(tmp_path / "launch.db")
    store = Store(db)
    secret = "{{secrets/dcs/reg}}"
    store.add_registry(RegistrySpec("reg", registry.host, "u", "DCS_SECRET_REG", cluster_password_secret=secret))
    store.add_image(
        image_from_dict({"name": "rows-launch", "base": TARGET, "repository": f"{registry.host}/dcs-tests/rows-launch"})
    )
    build = store.create_build("rows-launch", requester="cli", source="cli", push=True)
    store.update_build(build.id, status="succeeded", pushed_digest=digest, tags=["b1", "latest"])
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCS_", "DATABRICKS_"))}
    env["DCS_DB"] = db
    args = ["launch", "rows-launch", "runtime=15.4.x-scala2.12", "node_type=m5d.large"]
    run = lambda *more: subprocess.run(  # noqa: E731
        [*dcs_command(), *args, *more, "--user", "a@example.com", "--dry-run", "--offline", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    refused = run("init_script=file:/opt/team/setup.sh")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error.startswith("init_scripts: 'file:/opt/team/setup.sh' /opt/team/setup.sh failed (exit code 6)")
    assert "fetching the agent | curl: (6) Could not resolve host" in error and "INIT_SCRIPT_FAILURE" in error
    fine = run("init_script=/Volumes/main/ops/init.sh")  # not in the image: nothing to run here
    assert fine.returncode == 0, fine.stdout + fine.stderr
