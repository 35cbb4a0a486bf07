"""Wheels for tests: tiny ones made here, and real ones from PyPI kept in a local wheelhouse.

`make_wheel` writes a real pure-Python wheel (PEP 427): METADATA (core metadata 2.1), WHEEL, top_level.txt and a
RECORD whose sha256/size lines match the files, zipped with fixed timestamps in sorted order, so the same
arguments always give the same bytes (and the same sha256 in an index page).

`ensure_wheelhouse` fills a cache directory from a lock file (`name==version --hash=sha256:...` lines) with
`pip download --no-deps --require-hashes` for CPython 3.11 on manylinux x86-64 (the Python of the Debian base),
and does nothing when every locked file is already there, so runs after the first work offline.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ZIP_DATE = (2024, 1, 1, 0, 0, 0)
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


def normalize(name: str) -> str:
    """PEP 503 normalized project name: `Foo_Bar.baz` -> `foo-bar-baz`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _escape(name: str) -> str:
    """The project name as it appears in wheel file and .dist-info names."""
    return re.sub(r"[-_.]+", "_", name).lower()


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] | list[str] = (),
    module: str | None = None,
    source: str | None = None,
    files: dict[str, str | bytes] | None = None,
    requires_python: str | None = None,
) -> Path:
    """Write `{name}-{version}-py3-none-any.whl` into `dest` and return its path.

    `module` is the top-level module (default: the escaped project name); it defines `__version__` and
    `NAME`, plus `source` when given. `requires` are Requires-Dist lines (PEP 508, markers allowed). `files`
    adds more files by their path inside the wheel (e.g. `{"othermod/__init__.py": "..."}`).
    """
    if not _NAME.match(name):
        raise ValueError(f"not a valid project name: {name!r}")
    module = module or _escape(name)
    dist_info = f"{_escape(name)}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: dcs-bot test wheel"]
    if requires_python:
        metadata.append(f"Requires-Python: {requires_python}")
    metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
    body = f'"""dcs-bot test package {name} {version}."""\n\n__version__ = "{version}"\nNAME = "{name}"\n'
    contents: dict[str, bytes] = {f"{module}/__init__.py": (body + (source or "")).encode()}
    for path, data in (files or {}).items():
        contents[path] = data.encode() if isinstance(data, str) else data
    tops = sorted({path.split("/")[0].removesuffix(".py") for path in contents})
    contents[f"{dist_info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    contents[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: dcs-bot-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    contents[f"{dist_info}/top_level.txt"] = ("\n".join(tops) + "\n").encode()
    record = [f"{path},sha256={_urlsafe_digest(data)},{len(data)}" for path, data in sorted(contents.items())]
    record.append(f"{dist_info}/RECORD,,")
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()

    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{_escape(name)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # RECORD last, as pip and installers expect the .dist-info files at the end
        for entry in sorted(contents, key=lambda p: (p.endswith("/RECORD"), p)):
            info = zipfile.ZipInfo(entry, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, contents[entry])
    return path


def _urlsafe_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class LockedWheel:
    name: str
    version: str
    sha256: str


class WheelhouseUnavailable(Exception):
    """The locked wheels are not cached and could not be downloaded."""


def read_lock(path: Path) -> list[LockedWheel]:
    """`name==version --hash=sha256:HEX` lines; blank lines and `#` comments are ignored."""
    locked = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if match is None:
            raise ValueError(f"{path}:{number}: expected 'name==version --hash=sha256:HEX', got {line!r}")
        locked.append(LockedWheel(match[1], match[2], match[3]))
    return locked


def ensure_wheelhouse(lock: Path, cache: Path, *, timeout: float = 900) -> dict[Path, str]:
    """The wheel files of `lock`, downloaded into `cache` unless already there: {path: sha256}."""
    locked = read_lock(lock)
    wanted = {wheel.sha256 for wheel in locked}
    cache.mkdir(parents=True, exist_ok=True)
    have = _wheels_by_hash(cache, wanted)
    if wanted - have.keys():
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes"]
        command += ["--only-binary=:all:", f"--python-version={PYTHON_VERSION}", "--implementation=cp"]
        command += [f"--platform={platform}" for platform in PLATFORMS]
        command += ["--dest", str(cache), "-r", str(lock)]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            raise WheelhouseUnavailable(f"pip download -r {lock} failed:\n{exc.stderr[-2000:]}") from exc
        have = _wheels_by_hash(cache, wanted)
        if missing := wanted - have.keys():
            raise WheelhouseUnavailable(f"pip download left {len(missing)} locked wheels missing in {cache}")
    return {path: digest for digest, path in sorted(have.items(), key=lambda item: item[1])}


def _wheels_by_hash(cache: Path, wanted: set[str]) -> dict[str, Path]:
    """Cached wheels by sha256; the hash is remembered next to each wheel to keep warm runs fast."""
    found = {}
    for wheel in cache.glob("*.whl"):
        stamp = wheel.with_name(wheel.name + ".sha256")
        if stamp.exists() and stamp.stat().st_mtime >= wheel.stat().st_mtime:
            digest = stamp.read_text().strip()
        else:
            digest = sha256_file(wheel)
            stamp.write_text(digest + "\n")
        if digest in wanted:
            found[digest] = wheel
    return found
