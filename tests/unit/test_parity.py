"""The runtime parity table and the doctor's rows comparing an image with the runtime its base targets."""

from __future__ import annotations

import pytest

from bot.domain.bases import LTS_RUNTIMES, classify_base
from bot.domain.checks import FAIL, PASS, SKIP, WARN
from bot.domain.parity import PARITY, java_major, parity_checks, runtime_mismatch, target_for
from bot.domain.refs import parse_ref


def base(ref: str):
    return classify_base(parse_ref(ref))


def facts(os_version: str = "22.04", python: str = "Python 3.11.11", java: str = 'openjdk version "1.8.0_412"'):
    return {
        "os.ID": "ubuntu",
        "os.VERSION_ID": os_version,
        "venv.python": "yes",
        "python.version": python,
        "java.version": java,
    }


def rows(found: dict[str, str], ref: str = "databricksruntime/standard:15.4-LTS") -> dict[str, tuple[str, str, str]]:
    return {c.name: (c.status, c.detail, c.fix) for c in parity_checks(found, base(ref))}


def test_every_supported_lts_has_a_sourced_row():
    assert sorted(PARITY, key=lambda v: tuple(map(int, v.split(".")))) == list(LTS_RUNTIMES)
    for version, row in PARITY.items():
        assert f"release-{version}-LTS" in row.sources[0]
        assert row.sources[1].startswith("https://docs.databricks.com/release-notes/runtime")


@pytest.mark.parametrize(
    ("version", "ubuntu", "python", "jdk", "scala"),
    [
        ("15.4", ("22.04",), "3.11", 8, ("2.12",)),
        ("16.4", ("24.04",), "3.12", 17, ("2.12", "2.13")),
        ("17.3", ("24.04",), "3.12", 17, ("2.13",)),
        ("14.3", ("22.04",), "3.10", 8, ("2.12",)),
        ("12.2", ("20.04",), "3.9", 8, ("2.12",)),
    ],
)
def test_rows_as_the_release_branches_say(version, ubuntu, python, jdk, scala):
    row = PARITY[version]
    assert (row.ubuntu, row.python, row.jdk, row.scala) == (ubuntu, python, jdk, scala)


def test_a_matching_image_passes_every_row():
    assert {name: status for name, (status, _, _) in rows(facts()).items()} == {
        "runtime": PASS,
        "os_version": PASS,
        "python_version": PASS,
        "java_version": PASS,
    }


def test_python_3_12_on_a_15_4_base_fails_with_the_fix():
    status, detail, fix = rows(facts(python="Python 3.12.3"))["python_version"]
    assert status == FAIL and "DBR 15.4 LTS runs Python 3.11" in detail
    assert "Python 3.11" in fix and "3.12" in fix


def test_ubuntu_and_java_differences_warn():
    found = rows(facts(os_version="24.04", java='openjdk version "17.0.10" 2024-01-16'))
    assert found["os_version"][0] == WARN and "ubuntu:22.04" in found["os_version"][2]
    assert found["java_version"][0] == WARN and "JDK 8" in found["java_version"][2]
    assert found["python_version"][0] == PASS


def test_the_17_3_base_expects_java_17():
    found = rows(
        facts(os_version="24.04", python="Python 3.12.3", java='openjdk version "17.0.16"'),
        ref="databricksruntime/standard:17.3-LTS",
    )
    assert {k: v[0] for k, v in found.items()} == {
        "runtime": PASS,
        "os_version": PASS,
        "python_version": PASS,
        "java_version": PASS,
    }


def test_bases_without_a_runtime_are_not_compared():
    for ref in (
        "myacr.azurecr.io/team/base:1",
        "databricksruntime/gpu-venv:cuda11.8",
        "databricksruntime/standard:9.x",
    ):
        assert target_for(base(ref)) is None
        assert [(c.name, c.status) for c in parity_checks(facts(), base(ref))] == [("runtime", SKIP)]


def test_java_major():
    assert [java_major(v) for v in ("1.8.0_392", "17.0.10", "11", "x", None)] == [8, 17, 11, None, None]


def test_mismatch_names_both_runtimes():
    standard = base("databricksruntime/standard:15.4-LTS")
    assert runtime_mismatch(standard, 15, 4) is None
    text = runtime_mismatch(standard, 16, 4)
    assert text is not None and "made for DBR 15.4, not 16.4" in text and "Ubuntu 24.04" in text
    assert runtime_mismatch(base("databricksruntime/standard:9.x"), 9, 1) is None
    assert runtime_mismatch(base("myacr.azurecr.io/team/base:1"), 16, 4) is None
