"""What a built image contains: its OS packages, the runtime Python's distributions, Python and Java
versions, the OS release and the image size ("package inventory"). Pure.

The doctor's probe container prints it (`INVENTORY_PROBE`, part of the doctor's one probe script) as
tab-separated `inv` lines, so collecting it costs no extra container. Each successful build stores one;
`bot/domain/inventory_diff.py` tells what changed between two builds.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.domain.python_checks import PYTHON_PROBE

# A constant POSIX sh fragment (no user input reaches it); `find_bin` is defined by the doctor's probe.
# dpkg-query and apk print one package a line; the runtime Python (bot/domain/python_checks.py) lists what it
# can import (the first distribution of a name on sys.path wins, as for an import), then checks notebooks' needs.
INVENTORY_PROBE = r"""
if find_bin dpkg-query >/dev/null; then
  dpkg-query -W -f='inv\tdeb\t${Package}\t${Version}\t${db:Status-Abbrev}\n' 2>/dev/null
elif find_bin apk >/dev/null; then
  apk info -v 2>/dev/null | while read -r p; do printf 'inv\tapk\t%s\n' "$p"; done
fi
if [ -x /databricks/python3/bin/python ]; then
  printf 'python.version=%s\n' "$(/databricks/python3/bin/python -V 2>&1 | head -n 1)"
  /databricks/python3/bin/python - <<'DCS_PY' 2>/dev/null
@PYTHON_PROBE@
DCS_PY
fi
""".replace("@PYTHON_PROBE@", PYTHON_PROBE.strip())

_APK_NAME_VERSION = re.compile(r"^(.+?)-(\d[^-]*-r\d+)\Z")
_PYTHON_VERSION = re.compile(r"Python (\d+\.\d+(?:\.\d+)?\S*)")
_JAVA_VERSION = re.compile(r'version "([^"]+)"')


@dataclass(frozen=True)
class PackageInventory:
    os_packages: dict[str, str] = field(default_factory=dict)
    python_packages: dict[str, str] = field(default_factory=dict)
    python_version: str | None = None
    java_version: str | None = None
    os_release: str | None = None
    size_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["os_packages"] = dict(sorted(self.os_packages.items()))
        data["python_packages"] = dict(sorted(self.python_packages.items(), key=lambda kv: kv[0].lower()))
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PackageInventory:
        size = data.get("size_bytes")
        return cls(
            os_packages={str(k): str(v) for k, v in (data.get("os_packages") or {}).items()},
            python_packages={str(k): str(v) for k, v in (data.get("python_packages") or {}).items()},
            python_version=data.get("python_version"),
            java_version=data.get("java_version"),
            os_release=data.get("os_release"),
            size_bytes=int(size) if size is not None else None,
        )

    @classmethod
    def from_json(cls, text: str) -> PackageInventory:
        return cls.from_dict(json.loads(text))

    @property
    def python_minor(self) -> str | None:
        """`3.11` of `3.11.2`."""
        if not self.python_version:
            return None
        return ".".join(self.python_version.split(".")[:2])

    def summary(self) -> str:
        """One line for build messages and `dcs image show`: `Ubuntu 22.04.4 LTS, Python 3.11.2, Java 1.8.0_392,
        142 OS packages, 131 Python packages, 1.2 GB`."""
        parts = [
            self.os_release or "OS unknown",
            f"Python {self.python_version}" if self.python_version else "no runtime Python",
            f"Java {self.java_version}" if self.java_version else "no Java",
            f"{len(self.os_packages)} OS packages",
            f"{len(self.python_packages)} Python packages",
        ]
        if self.size_bytes is not None:
            parts.append(human_size(self.size_bytes))
        return ", ".join(parts)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def parse_inventory(output: str, facts: dict[str, str], inspect: dict[str, Any]) -> PackageInventory:
    """The inventory in the probe's output (`inv` lines), its facts (key=value lines) and the image's inspect."""
    os_packages: dict[str, str] = {}
    python_packages: dict[str, str] = {}
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0] != "inv":
            continue
        kind = parts[1]
        if kind == "deb" and len(parts) >= 4:
            status = parts[4].strip() if len(parts) > 4 else "ii"
            if status.startswith("i"):  # installed; `rc` rows are removed packages' leftover config
                os_packages[parts[2]] = parts[3]
        elif kind == "apk":
            match = _APK_NAME_VERSION.match(parts[2].strip())
            name, version = (match.group(1), match.group(2)) if match else (parts[2].strip(), "")
            if name:
                os_packages[name] = version
        elif kind == "py" and len(parts) >= 4:
            python_packages.setdefault(parts[2], parts[3])
    python = _PYTHON_VERSION.search(facts.get("python.version", ""))
    java = _JAVA_VERSION.search(facts.get("java.version", ""))
    pretty = facts.get("os.PRETTY_NAME") or " ".join(filter(None, (facts.get("os.ID"), facts.get("os.VERSION_ID"))))
    size = inspect.get("Size")
    return PackageInventory(
        os_packages=os_packages,
        python_packages=python_packages,
        python_version=python.group(1) if python else None,
        java_version=java.group(1) if java else None,
        os_release=pretty or None,
        size_bytes=int(size) if isinstance(size, int) else None,
    )
