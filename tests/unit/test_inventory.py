"""Reading the package inventory out of the probe's output; its JSON form."""

from __future__ import annotations

from bot.domain.doctor import parse_probe
from bot.domain.inventory import PackageInventory, human_size, parse_inventory

OUTPUT = "\n".join(
    [
        "bin.bash=/bin/bash",
        'java.version=openjdk version "17.0.10" 2024-01-16 LTS',
        "python.version=Python 3.12.3",
        'os.PRETTY_NAME="Ubuntu 24.04 LTS"',
        "inv\tdeb\tbash\t5.2.21-2ubuntu4\tii ",
        "inv\tdeb\tlibc6:amd64\t2.39-0ubuntu8\tii ",
        "inv\tdeb\told-config\t1.0\trc ",
        "inv\tpy\tipykernel\t6.29.5",
        "inv\tpy\tnumpy\t1.26.4",
        "inv\tpy\tnumpy\t1.21.0",  # shadowed by the first on sys.path
        "probe=done",
    ]
)


def test_parses_dpkg_python_and_versions():
    inv = parse_inventory(OUTPUT, parse_probe(OUTPUT), {"Size": 1_234_000_000})
    assert inv.os_packages == {"bash": "5.2.21-2ubuntu4", "libc6:amd64": "2.39-0ubuntu8"}
    assert inv.python_packages == {"ipykernel": "6.29.5", "numpy": "1.26.4"}
    assert (inv.python_version, inv.python_minor, inv.java_version) == ("3.12.3", "3.12", "17.0.10")
    assert inv.os_release == "Ubuntu 24.04 LTS"
    assert inv.summary() == ("Ubuntu 24.04 LTS, Python 3.12.3, Java 17.0.10, 2 OS packages, 2 Python packages, 1.2 GB")


def test_apk_names_and_versions_are_split_at_the_version():
    out = "inv\tapk\tmusl-1.2.5-r0\ninv\tapk\tpy3-setuptools-70.3.0-r0\ninv\tapk\tbusybox\n"
    assert parse_inventory(out, {}, {}).os_packages == {
        "musl": "1.2.5-r0",
        "py3-setuptools": "70.3.0-r0",
        "busybox": "",
    }


def test_inventory_lines_are_not_probe_facts():
    assert "inv" not in " ".join(parse_probe(OUTPUT))


def test_json_round_trip_and_nothing_known():
    inv = parse_inventory(OUTPUT, parse_probe(OUTPUT), {"Size": 5})
    assert PackageInventory.from_json(inv.to_json()) == inv
    empty = parse_inventory("", {}, {})
    assert empty == PackageInventory() and empty.summary().startswith("OS unknown, no runtime Python, no Java")


def test_human_size():
    assert [human_size(n) for n in (999, 1500, 2_500_000, 12_300_000_000)] == ["999 B", "2 KB", "2.5 MB", "12.3 GB"]
