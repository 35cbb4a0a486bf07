"""What changed between two package inventories (bot/domain/inventory_diff.py): the one-line summary and the list."""

from __future__ import annotations

import pytest

from bot.domain.inventory import PackageInventory
from bot.domain.inventory_diff import diff_inventories

OLD = PackageInventory(
    os_packages={f"lib{i}": "1.0" for i in range(12)} | {"openssl": "3.0.2-0ubuntu1.15", "jq": "1.6", "zlib1g": "1"},
    python_packages={"pandas": "2.2.1", "Requests": "2.31.0", "six": "1.16.0"},
    python_version="3.11.0rc1",
    java_version="1.8.0_392",
    os_release="Ubuntu 22.04.4 LTS",
    size_bytes=1_200_000_000,
)


def moved(**changes) -> PackageInventory:
    return PackageInventory(**{**OLD.to_dict(), **changes})


@pytest.mark.parametrize(
    ("new", "summary"),
    [
        (OLD, "nothing changed inside (same packages, same versions)"),
        (
            moved(
                python_version="3.11.11",
                os_packages={f"lib{i}": "1.1" for i in range(12)}
                | {"openssl": "3.0.2-0ubuntu1.16", "jq": "1.6", "zlib1g": "2"},
            ),
            "python 3.11.0rc1 → 3.11.11 · 14 OS packages updated (openssl 3.0.2-0ubuntu1.15 → 3.0.2-0ubuntu1.16, …)"
            " · pip unchanged",
        ),
        (
            moved(python_packages={"pandas": "2.2.2", "requests": "2.31.0", "pyarrow": "15.0.0"}),
            "OS packages unchanged · pip: 1 updated (pandas 2.2.1 → 2.2.2), 1 added (pyarrow), 1 removed (six)",
        ),
        (
            moved(os_packages={k: v for k, v in OLD.os_packages.items() if k != "jq"}, size_bytes=1_000_000_000),
            "1 OS package removed (jq) · pip unchanged · size 1.2 GB → 1.0 GB",
        ),
        (
            moved(size_bytes=1_200_000_100, java_version="17.0.9"),
            "java 1.8.0_392 → 17.0.9 · OS packages unchanged · pip unchanged",
        ),
    ],
)
def test_the_summary_says_what_moved_first(new, summary):
    assert diff_inventories(OLD, new).summary() == summary


def test_python_names_compare_like_pip_and_the_list_has_every_change():
    new = moved(
        python_packages={"pandas": "2.2.2", "requests": "2.31.0", "six": "1.16.0"},
        os_packages={**OLD.os_packages, "curl": "7.81.0"},
    )
    diff = diff_inventories(OLD, new)
    assert diff.python.changed == {"pandas": ("2.2.1", "2.2.2")}  # Requests == requests
    assert diff.lines() == [
        "OS packages:",
        "  + curl 7.81.0",
        "Python packages:",
        "  ~ pandas 2.2.1 → 2.2.2",
    ]
    data = diff.to_dict()
    assert data["os_packages"]["added"] == {"curl": "7.81.0"}
    assert data["python_packages"]["changed"] == {"pandas": {"old": "2.2.1", "new": "2.2.2"}}
    assert data["summary"] == diff.summary()
