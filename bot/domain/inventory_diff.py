"""What changed inside an image between two builds, from their package inventories (bot/domain/inventory.py). Pure.

`diff_inventories(old, new)` compares OS packages, Python packages (added, removed, version changed), the Python
and Java versions, the OS release and the size. `summary()` is the one line a notice starts with, e.g.
"python 3.11.0rc1 → 3.11.11 · 14 OS packages updated (openssl 3.0.2-0ubuntu1.15 → 3.0.2-0ubuntu1.16, …) · pip
unchanged"; `lines()` is the full list (a thread, `dcs diff`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.domain.inventory import PackageInventory, human_size

# Named first in a summary: what security fixes and runtime breakages usually come from.
NOTABLE = (
    "openssl",
    "libssl3",
    "libssl1.1",
    "libc6",
    "openjdk-8-jdk-headless",
    "openjdk-17-jdk-headless",
    "python3",
    "curl",
    "libcurl4",
    "zlib1g",
    "ca-certificates",
    "sudo",
    "pip",
    "setuptools",
    "numpy",
    "pandas",
    "pyarrow",
)
NAMED_IN_SUMMARY = 1
SIZE_NOTICE = 0.01  # a size change below 1 % is not worth a word


@dataclass(frozen=True)
class PackageChanges:
    """One package family (OS or Python): added and removed packages with versions, changed ones old → new."""

    added: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": dict(sorted(self.added.items())),
            "removed": dict(sorted(self.removed.items())),
            "changed": {k: {"old": o, "new": n} for k, (o, n) in sorted(self.changed.items())},
        }


@dataclass(frozen=True)
class InventoryDiff:
    os: PackageChanges
    python: PackageChanges
    python_version: tuple[str | None, str | None] | None = None  # (old, new) when it changed
    java_version: tuple[str | None, str | None] | None = None
    os_release: tuple[str | None, str | None] | None = None
    size: tuple[int | None, int | None] | None = None  # when it changed by SIZE_NOTICE or more

    @property
    def empty(self) -> bool:
        return (
            self.os.empty
            and self.python.empty
            and not (self.python_version or self.java_version or self.os_release or self.size)
        )

    def summary(self) -> str:
        """One line: versions that moved, OS packages, pip, size; "nothing changed inside" when so."""
        if self.empty:
            return "nothing changed inside (same packages, same versions)"
        parts = []
        if self.python_version:
            parts.append(f"python {_v(self.python_version[0])} → {_v(self.python_version[1])}")
        if self.java_version:
            parts.append(f"java {_v(self.java_version[0])} → {_v(self.java_version[1])}")
        if self.os_release:
            parts.append(f"OS {_v(self.os_release[0])} → {_v(self.os_release[1])}")
        parts.append(_family(self.os, "OS packages"))
        parts.append(_family(self.python, "pip"))
        if self.size:
            parts.append(f"size {_size(self.size[0])} → {_size(self.size[1])}")
        return " · ".join(parts)

    def lines(self) -> list[str]:
        """Every change, one a line, grouped (plain text; each surface adds its own markup)."""
        out: list[str] = []
        for label, pair in (
            ("Python", self.python_version),
            ("Java", self.java_version),
            ("OS release", self.os_release),
        ):
            if pair:
                out.append(f"{label}: {_v(pair[0])} → {_v(pair[1])}")
        if self.size:
            out.append(f"Size: {_size(self.size[0])} → {_size(self.size[1])}")
        for title, changes in (("OS packages", self.os), ("Python packages", self.python)):
            if changes.empty:
                out.append(f"{title}: unchanged")
                continue
            out.append(f"{title}:")
            out.extend(f"  ~ {n} {o} → {v}" for n, (o, v) in sorted(changes.changed.items()))
            out.extend(f"  + {n} {v}" for n, v in sorted(changes.added.items()))
            out.extend(f"  - {n} {v}" for n, v in sorted(changes.removed.items()))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "python_version": list(self.python_version) if self.python_version else None,
            "java_version": list(self.java_version) if self.java_version else None,
            "os_release": list(self.os_release) if self.os_release else None,
            "size_bytes": list(self.size) if self.size else None,
            "os_packages": self.os.to_dict(),
            "python_packages": self.python.to_dict(),
        }


def diff_packages(old: dict[str, str], new: dict[str, str], *, fold_case: bool = False) -> PackageChanges:
    """Python distribution names compare case- and separator-insensitively (PEP 503); dpkg names exactly."""

    def key(name: str) -> str:
        return name.lower().replace("_", "-").replace(".", "-") if fold_case else name

    old_by = {key(n): (n, v) for n, v in old.items()}
    new_by = {key(n): (n, v) for n, v in new.items()}
    added = {new_by[k][0]: new_by[k][1] for k in new_by.keys() - old_by.keys()}
    removed = {old_by[k][0]: old_by[k][1] for k in old_by.keys() - new_by.keys()}
    changed = {
        new_by[k][0]: (old_by[k][1], new_by[k][1])
        for k in new_by.keys() & old_by.keys()
        if old_by[k][1] != new_by[k][1]
    }
    return PackageChanges(added, removed, changed)


def diff_inventories(old: PackageInventory, new: PackageInventory) -> InventoryDiff:
    size = None
    if old.size_bytes != new.size_bytes:
        if old.size_bytes is None or new.size_bytes is None:
            size = (old.size_bytes, new.size_bytes)
        elif abs(new.size_bytes - old.size_bytes) >= SIZE_NOTICE * max(old.size_bytes, 1):
            size = (old.size_bytes, new.size_bytes)
    return InventoryDiff(
        os=diff_packages(old.os_packages, new.os_packages),
        python=diff_packages(old.python_packages, new.python_packages, fold_case=True),
        python_version=_pair(old.python_version, new.python_version),
        java_version=_pair(old.java_version, new.java_version),
        os_release=_pair(old.os_release, new.os_release),
        size=size,
    )


def _pair(old: str | None, new: str | None) -> tuple[str | None, str | None] | None:
    return (old, new) if old != new else None


def _v(value: str | None) -> str:
    return value if value else "none"


def _size(value: int | None) -> str:
    return human_size(value) if value is not None else "unknown"


def _notable_first(names: list[str]) -> list[str]:
    rank = {n: i for i, n in enumerate(NOTABLE)}
    return sorted(names, key=lambda n: (rank.get(n.lower(), len(NOTABLE)), n.lower()))


def _family(changes: PackageChanges, label: str) -> str:
    """`14 OS packages updated (openssl a → b, …), 1 added (jq)` / `pip: 2 updated (…)` / `pip unchanged`."""
    if changes.empty:
        return f"{label} unchanged"
    pieces = []
    for what, names in (
        ("updated", list(changes.changed)),
        ("added", list(changes.added)),
        ("removed", list(changes.removed)),
    ):
        if not names:
            continue
        names = _notable_first(names)
        if what == "updated":
            shown = [f"{n} {changes.changed[n][0]} → {changes.changed[n][1]}" for n in names[:NAMED_IN_SUMMARY]]
        else:
            shown = names[:NAMED_IN_SUMMARY]
        more = ", …" if len(names) > NAMED_IN_SUMMARY else ""
        pieces.append(f"{len(names)} {what} ({', '.join(shown)}{more})")
    if label == "pip":
        return "pip: " + ", ".join(pieces)
    first, *rest = pieces
    count, _, tail = first.partition(" ")
    noun = label.removesuffix("s") if count == "1" else label
    return ", ".join([f"{count} {noun} {tail}", *rest])
